"""`l1flow report RUN_DIR`: write the run's self-contained HTML report.

The comparison comes from `--previous SUMMARY.json` (another run's summary) or,
with `--workspace`/`--tracking-uri`, from the registry's production versions
(excluding versions this run registered itself). `--criteria` (JSON or YAML,
the AcceptanceCriteria fields) adds budgets and the acceptance verdict.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from l1flow.records import Baseline, read_summary
from l1flow.registry.criteria import load_criteria
from l1flow.settings import settings


def _previous(args: argparse.Namespace, run_dir: Path) -> Baseline | None:
    if args.previous:
        return Baseline.of_run(read_summary(Path(args.previous)))
    if args.workspace or args.tracking_uri:
        from l1flow.registry.store import ModelRegistry

        summary = read_summary(run_dir)
        registry = ModelRegistry(workspace=Path(args.workspace or settings().workspace), tracking_uri=args.tracking_uri)
        return registry.production_summary(list(summary.models), before_run=summary.run_id)
    return None


def _report(args: argparse.Namespace) -> int:
    # the report imports matplotlib (seconds): only when this command runs, not for every `l1flow` command
    from l1flow.report.html import render_report

    run_dir = Path(args.run_dir)
    criteria = load_criteria(Path(args.criteria)) if args.criteria else None
    path = render_report(run_dir, _previous(args, run_dir), criteria, Path(args.output) if args.output else None)
    print(path)
    return 0


def add_commands(subparsers: Any) -> None:
    """Add `report` to the `l1flow` argument parser."""
    report = subparsers.add_parser("report", help="write a run's self-contained HTML report")
    report.add_argument("run_dir", help="pipeline run folder (holds summary.json)")
    source = report.add_mutually_exclusive_group()
    source.add_argument("--previous", help="summary.json of the run to compare with")
    source.add_argument("--workspace", help="compare with the production versions in this workspace's registry")
    report.add_argument("--tracking-uri", default=None, help="MLflow tracking URI for the comparison")
    report.add_argument("--criteria", help="acceptance criteria file (JSON or YAML) for budgets and verdicts")
    report.add_argument("--output", help="where to write the HTML (default: RUN_DIR/report.html)")
    report.set_defaults(func=_report)
