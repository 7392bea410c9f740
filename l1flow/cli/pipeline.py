"""``l1flow run`` (the whole pipeline, embedded) and ``l1flow compare``."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

from l1flow.settings import settings


def _cmd_run(args: argparse.Namespace) -> int:
    from l1flow.config import check_runnable, load_config

    # --workspace, else $L1FLOW_WORKSPACE, else the config's `workspace` (default `work`):
    # the same folder `l1flow models` and `l1flow conditions` look in
    workspace = args.workspace or settings().workspace_override
    # The whole config is checked before Prefect and TensorFlow are imported (which takes
    # seconds): a bad field comes back at once. The flow checks it again for deployments.
    check_runnable(load_config(args.config, args.set), args.config, workspace)
    from l1flow.runguard import GUARDED_ENV, run_guarded

    if not os.environ.get(GUARDED_ENV):
        # the pipeline runs under a guard that ends its server and simulators even after a kill -9 of this process
        argv = [*(["--debug"] if args.debug else []), "run", str(args.config)]
        if args.workspace is not None:
            argv += ["--workspace", str(args.workspace)]
        for override in args.set:
            argv += ["--set", override]
        return run_guarded(argv)
    from l1flow.auth import prefect_client_credential

    # with PREFECT_API_URL set the run goes to that server, which may require the credential
    prefect_client_credential()
    from l1flow.flows.pipeline import run_pipeline
    from l1flow.pipeline.publish import registration_line
    from l1flow.records import read_summary

    # The library reports each stage's progress on the "l1flow" logger; Prefect prints it.
    logging.getLogger("l1flow").setLevel(logging.INFO)
    summary_path = run_pipeline(args.config, overrides=args.set, workspace=workspace)
    for entry in read_summary(summary_path).registry or []:
        print(registration_line(entry.name, entry.version, entry.matched_existing, entry.promoted, entry.verdict))
    print(f"run folder: {summary_path.parent}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from l1flow.compare import compare_run_model

    comparison = compare_run_model(
        args.run, args.model, args.data, args.out or args.run / "compare", args.mapping, args.csim_events
    )
    print(comparison.to_text())
    return 0


def _cmd_parts(args: argparse.Namespace) -> int:
    from l1flow.fpga_parts import format_parts

    print(format_parts())
    return 0


def add_commands(subparsers: Any) -> None:
    """Add ``run`` and ``compare``."""
    run = subparsers.add_parser("run", help="run the whole pipeline for one config (embedded: no server needed)")
    run.add_argument("config", type=Path, help="pipeline YAML, e.g. configs/default.yaml")
    run.add_argument(
        "--workspace", type=Path, default=None,
        help="workspace folder (default: $L1FLOW_WORKSPACE, else the config's `workspace`, `work` in the examples)",
    )
    run.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override a config field, e.g. --set verify.emulation_events=200000 (repeatable)",
    )
    run.set_defaults(func=_cmd_run)

    compare = subparsers.add_parser(
        "compare", help="software vs bit-exact emulation (and C-sim) of a run's model on an HDF5 or ROOT file"
    )
    compare.add_argument("run", type=Path, help="run folder (holds summary.json)")
    compare.add_argument("model", help="model name in that run")
    compare.add_argument("data", type=Path, help="events: HDF5 (challenge layout) or ROOT file")
    compare.add_argument("--mapping", type=Path, default=None, help="ROOT branch mapping (YAML)")
    compare.add_argument("--csim-events", type=int, default=2000, help="events for the C-sim cross-check")
    compare.add_argument("--out", type=Path, default=None, help="output folder (default <run>/compare)")
    compare.set_defaults(func=_cmd_compare)

    parts = subparsers.add_parser("parts", help="the FPGA parts firmware.part accepts (and where they are used)")
    parts.set_defaults(func=_cmd_parts)
