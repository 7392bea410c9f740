"""The `l1flow` command."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from l1flow.errors import L1flowError


def _cmd_run(args: argparse.Namespace) -> int:
    from flows.pipeline import run_pipeline

    # The library reports each stage's progress on the "l1flow" logger; Prefect prints it.
    logging.getLogger("l1flow").setLevel(logging.INFO)
    summary_path = run_pipeline(args.config, overrides=args.set, workspace=args.workspace)
    print(f"run folder: {summary_path.parent}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from l1flow.compare import compare_run_model

    comparison = compare_run_model(
        args.run, args.model, args.data, args.out or args.run / "compare", args.mapping, args.csim_events
    )
    print(comparison.to_text())
    return 0


def build_parser() -> argparse.ArgumentParser:
    from l1flow.conditions.cli import add_commands as add_conditions_commands
    from l1flow.registry.cli import add_commands as add_models_commands
    from l1flow.report.cli import add_commands as add_report_commands
    from l1flow.service.cli import add_commands as add_service_commands
    from l1flow.synthesis.cli import add_commands as add_synthesis_commands
    from l1flow.training.cli import add_commands as add_training_commands
    from l1flow.verify.cli import add_commands as add_verify_commands

    parser = argparse.ArgumentParser(
        prog="l1flow",
        description="Retrain, quantize, convert, synthesize and bit-exactly verify L1 trigger ML firmware.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the whole pipeline for one config (embedded: no server needed)")
    run.add_argument("config", type=Path, help="pipeline YAML, e.g. configs/default.yaml")
    run.add_argument("--workspace", type=Path, default=None, help="override the config's workspace folder")
    run.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override a config field, e.g. --set verify.emulation_events=200000 (repeatable)",
    )
    run.set_defaults(func=_cmd_run)

    compare = sub.add_parser(
        "compare", help="software vs bit-exact emulation (and C-sim) of a run's model on an HDF5 or ROOT file"
    )
    compare.add_argument("run", type=Path, help="run folder (holds summary.json)")
    compare.add_argument("model", help="model name in that run")
    compare.add_argument("data", type=Path, help="events: HDF5 (challenge layout) or ROOT file")
    compare.add_argument("--mapping", type=Path, default=None, help="ROOT branch mapping (YAML)")
    compare.add_argument("--csim-events", type=int, default=2000, help="events for the C-sim cross-check")
    compare.add_argument("--out", type=Path, default=None, help="output folder (default <run>/compare)")
    compare.set_defaults(func=_cmd_compare)

    add_conditions_commands(sub)
    add_models_commands(sub)
    add_report_commands(sub)
    add_service_commands(sub)
    add_synthesis_commands(sub)
    add_training_commands(sub)
    add_verify_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("l1flow: interrupted", file=sys.stderr)
        return 130
    except L1flowError as exc:
        if args.debug or os.environ.get("L1FLOW_DEBUG"):
            raise
        print(f"l1flow: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - the command reports every failure to the user
        if args.debug or os.environ.get("L1FLOW_DEBUG"):
            raise
        print(f"l1flow: error: {exc}", file=sys.stderr)
        print("(run with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
