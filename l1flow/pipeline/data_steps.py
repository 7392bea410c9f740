"""Pipeline stages before firmware: conditions, dataset, training."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from l1flow.conditions.payload import ConditionsPayload
from l1flow.conditions.store import ConditionsStore
from l1flow.config import PipelineConfig
from l1flow.data.generator import SIGNALS, generate_events
from l1flow.data.reader import read_events
from l1flow.data.sample import EventSample
from l1flow.errors import BadInputError
from l1flow.fileio import folder_digest, sha256_file, sha256_json
from l1flow.pipeline.workspace import Workspace
from l1flow.training.model import TrainedModel
from l1flow.training.specs import BDTStudentSpec, CicadaSpec
from l1flow.training.train import train_model

log = logging.getLogger("l1flow")

# Bump when the generator's output for the same inputs changes.
DATASET_RECIPE = "l1flow-dataset/1"


@dataclass(frozen=True)
class ConditionsSnapshot:
    """The conditions a run uses: one IOV of one tag."""

    tag: str
    first_run: int
    last_run: int | None
    payload: ConditionsPayload
    store: Path

    def to_dict(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "iov": {"first_run": self.first_run, "last_run": self.last_run},
            "payload_hash": self.payload.content_hash(),
            "store": str(self.store),
        }


def resolve_conditions(config: PipelineConfig, workspace: Workspace) -> ConditionsSnapshot:
    """The IOV of the configured tag (latest, or the one holding `conditions.run`).

    The embedded default starts with an empty store; it is seeded with the
    nominal conditions as the tag's first IOV so a first run needs no setup.
    """
    path = Path(config.conditions.store or workspace.conditions_store)
    tag = config.conditions.tag
    with ConditionsStore(path) as store:
        if not store.has_tag(tag):
            log.info("conditions store %s has no tag %r: seeding it with nominal conditions from run 1", path, tag)
            store.add(tag, first_run=1, payload=ConditionsPayload())
        iov = store.iov(tag, config.conditions.run) if config.conditions.run else store.latest(tag)
    return ConditionsSnapshot(tag, iov.first_run, iov.last_run, iov.payload, path)


@dataclass
class Dataset:
    """Samples for one run, addressed by the hash of what produced them.

    - train / validation: for training (background, plus signals for BDTs);
    - test: background and every signal, for physics metrics;
    - emulation: a large mixed sample for the emulation and hardware checks.
    """

    key: str
    train: EventSample
    validation: EventSample
    test: EventSample
    emulation: EventSample

    def describe(self) -> dict[str, Any]:
        return {
            "hash": self.key,
            "events": {
                "train": len(self.train),
                "validation": len(self.validation),
                "test": len(self.test),
                "emulation": len(self.emulation),
            },
            "classes": list(self.test.classes),
            "source": self.test.metadata.get("source", "generator"),
        }


_SPLITS = ("train", "validation", "test", "emulation")


def prepare_dataset(config: PipelineConfig, conditions: ConditionsSnapshot, workspace: Workspace) -> Dataset:
    """Generate (or read) the run's samples, reusing them when nothing that made them changed."""
    data = config.data
    with_regions = any(isinstance(m, CicadaSpec) for m in config.models)
    source_hash = "generator" if data.source == "generator" else _source_digest(Path(data.source))
    key = sha256_json([
        DATASET_RECIPE,
        conditions.payload.content_hash(),
        data.model_dump(mode="json"),
        config.seed,
        config.verify.emulation_events,
        with_regions,
        source_hash,
    ])

    def build(folder: Path) -> None:
        for name, sample in _make_samples(config, conditions.payload, with_regions).items():
            sample.save(folder / f"{name}.npz")

    folder = workspace.cached("datasets", key, build)
    samples = {name: EventSample.load(folder / f"{name}.npz") for name in _SPLITS}
    return Dataset(key=key, **samples)


def _make_samples(config: PipelineConfig, payload: ConditionsPayload, with_regions: bool) -> dict[str, EventSample]:
    data = config.data
    seed = config.seed
    if data.source == "generator":
        signals = tuple(data.signals) if data.signals is not None else SIGNALS

        def gen(n_background: int, n_signal: int, offset: int) -> EventSample:
            return generate_events(
                payload, n_background, n_signal, seed * 1000 + offset, signals, with_regions=with_regions
            )

        # The emulation sample is 95% background, as the trigger sees it, and
        # 5% signal so the hardware also sees signal-like inputs.
        n_emulation = config.verify.emulation_events
        emulation_signal = n_emulation // (20 * len(signals)) if signals else 0
        return {
            "train": gen(data.train_background, data.train_signal, 1),
            "validation": gen(data.validation_background, data.validation_signal, 2),
            "test": gen(data.test_background, data.test_signal, 3),
            "emulation": gen(n_emulation - emulation_signal * len(signals), emulation_signal, 4),
        }
    sample = read_events(Path(data.source), data.mapping)
    return _split_file_sample(sample, seed)


def _split_file_sample(sample: EventSample, seed: int) -> dict[str, EventSample]:
    """Split events read from a file: 60% train, 10% validation, 30% test; all of it for emulation."""
    order = np.random.default_rng(seed).permutation(len(sample))
    a, b = int(0.6 * len(order)), int(0.7 * len(order))
    return {
        "train": sample.select(order[:a]),
        "validation": sample.select(order[a:b]),
        "test": sample.select(order[b:]),
        "emulation": sample,
    }


def _source_digest(path: Path) -> str:
    if not path.is_file():
        raise BadInputError(f"data.source: {path} is not a file; give an HDF5 or ROOT file, or 'generator'")
    return sha256_file(path)


def train_models(
    config: PipelineConfig,
    dataset: Dataset,
    workspace: Workspace,
    warm_start: dict[str, Path] | None = None,
) -> dict[str, TrainedModel]:
    """Train every model of the config (teachers before their students).

    A model is reused from the cache when its spec, data, seed and starting
    point are unchanged.
    """
    warm_start = warm_start or {}
    trained: dict[str, TrainedModel] = {}
    pending = list(config.models)
    names = {m.name for m in pending}
    for spec in pending:
        if isinstance(spec, BDTStudentSpec) and spec.teacher not in names:
            raise ValueError(f"models.{spec.name}.teacher: no model named {spec.teacher!r} in this config")
    while pending:
        ready = [s for s in pending if not isinstance(s, BDTStudentSpec) or s.teacher in trained]
        if not ready:
            raise ValueError("models: teacher/student references form a cycle")
        for spec in ready:
            pending.remove(spec)
            teacher = trained[spec.teacher] if isinstance(spec, BDTStudentSpec) else None
            start = warm_start.get(spec.name) if spec.warm_start else None
            key = sha256_json([
                spec.model_dump(mode="json"),
                dataset.key,
                config.seed,
                teacher.weights_hash() if teacher else None,
                folder_digest(start) if start else None,
            ])

            def build(folder: Path, spec: Any = spec, teacher: TrainedModel | None = teacher, start: Path | None = start) -> None:
                log.info("training %s (%s) on %d events", spec.name, spec.kind, len(dataset.train))
                model = train_model(
                    spec, dataset.train, dataset.validation, seed=config.seed,
                    warm_start_from=start, teacher=teacher,
                )
                log.info("trained %s in %.1f s", spec.name, model.train_seconds)
                model.save(folder / "model")

            folder = workspace.cached("models", key, build)
            trained[spec.name] = TrainedModel.load(folder / "model")
    return {spec.name: trained[spec.name] for spec in config.models}
