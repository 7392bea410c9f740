"""Command-line verbs for trained models: inspect one, score one on generated events."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _info(args: argparse.Namespace) -> int:
    from l1flow.training.model import TrainedModel

    model = TrainedModel.load(Path(args.folder))
    info: dict[str, Any] = {
        "name": model.name,
        "kind": model.kind,
        "framework": model.framework,
        "weights_sha256": model.weights_hash(),
        "train_seconds": model.train_seconds,
        "input_shifts": model.preprocessing.shifts,
        "input_quantizer": model.preprocessing.quantizer.model_dump(),
        "final_losses": {k: v[-1] for k, v in model.history.items() if v},
        "metadata": model.metadata,
    }
    print(json.dumps(info, indent=2))
    return 0


def _score(args: argparse.Namespace) -> int:
    from l1flow.conditions.payload import ConditionsPayload
    from l1flow.data.generator import generate_events
    from l1flow.training.metrics import trigger_metrics
    from l1flow.training.model import TrainedModel

    model = TrainedModel.load(Path(args.folder))
    sample = generate_events(ConditionsPayload(), args.background, args.signal, seed=args.seed)
    metrics = trigger_metrics(model.score(sample), sample, working_point_khz=args.rate_khz,
                              crossing_rate_mhz=args.crossing_rate_mhz)
    print(json.dumps(metrics, indent=2))
    return 0


def add_commands(subparsers: Any) -> None:
    """Add ``model-info`` and ``model-score`` to the ``l1flow`` command."""
    info = subparsers.add_parser("model-info", help="show a saved trained model (kind, weights hash, losses)")
    info.add_argument("folder", help="folder written by TrainedModel.save (e.g. a run's models/<name>)")
    info.set_defaults(func=_info)

    score = subparsers.add_parser(
        "model-score", help="AUC and efficiency at a fixed rate of a saved model on generated nominal events"
    )
    score.add_argument("folder", help="folder written by TrainedModel.save")
    score.add_argument("--background", type=int, default=100_000, help="background events (default 100000)")
    score.add_argument("--signal", type=int, default=5_000, help="events per signal (default 5000)")
    score.add_argument("--seed", type=int, default=12345, help="generator seed (default 12345)")
    score.add_argument("--rate-khz", type=float, default=1.0, help="working point in kHz (default 1)")
    score.add_argument("--crossing-rate-mhz", type=float, default=28.61, help="crossing rate (default 28.61)")
    score.set_defaults(func=_score)
