"""`l1flow verify`: firmware brought from a synthesis machine against its project's reference.

Self-contained: ``add_commands(sub)`` adds the command to any argparse
sub-parser set, so it moves with the CLI's layout.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from l1flow.errors import VerificationFailed
from l1flow.settings import settings


def _cmd_verify(args: argparse.Namespace) -> int:
    from l1flow.verify.brought import (
        SourceSpec,
        results_table,
        verify_project,
        write_results_json,
    )
    from l1flow.verify.project import read_project, resolve_project

    specs = [SourceSpec.parse(text) for text in args.against]
    with tempfile.TemporaryDirectory(prefix="l1flow-verify-project-") as scratch:
        folder = resolve_project(args.project, Path(scratch), args.workspace or settings().workspace, args.tracking_uri)
        project = read_project(folder)
        results, stimulus = verify_project(
            project, specs, events=args.events, seed=args.seed, stimulus_dir=args.stimulus, top=args.top,
            cache_dir=args.cache, threads=args.threads,
        )
    ports = ", ".join(f"{p.name}:{p.type}{list(p.shape)}" for p in project.input_ports)
    outs = ", ".join(f"{p.name}:{p.type}{list(p.shape)}" for p in project.output_ports)
    print(f"project {args.project} ({project.kind}, top {project.top}): inputs {ports}; outputs {outs}")
    print(results_table(results, args.examples))
    if args.json is not None:
        write_results_json(args.json, results, {**stimulus, "project": args.project})
    failed = [r.source for r in results if not r.report.passed]
    if failed:
        raise VerificationFailed(f"{len(failed)} of {len(results)} sources differ from the reference: {', '.join(failed)}")
    return 0


def add_commands(subparsers: Any) -> None:
    """Add `verify` to the `l1flow` command."""
    verify = subparsers.add_parser(
        "verify",
        help="bit-exact check of HLS Verilog, co-simulation or board results against an hls4ml/conifer project",
    )
    verify.add_argument(
        "project",
        help="hls4ml project folder (hls4ml_config.yml, firmware/), conifer project folder, a run's model "
        "RUN_DIR:MODEL, or a registry version NAME@ALIAS / NAME/VERSION",
    )
    verify.add_argument(
        "--against", action="append", default=[], metavar="KIND:PATH",
        help="verilog:DIR (syn/verilog, impl/verilog or a solution), cosim:DIR (sim/tv or a solution), "
        "board:FILE (board capture) or vectors:DIR (result folder); repeatable",
    )
    verify.add_argument("--events", type=int, default=10_000, help="generated stimulus events (default 10000)")
    verify.add_argument("--seed", type=int, default=12, help="seed of the generated stimulus (recorded)")
    verify.add_argument(
        "--stimulus", type=Path, default=None,
        help="instead of generated words: a vector folder, 'tb' (the project's tb_data inputs), a text file of "
        "input values (one event per line), or an HDF5/ROOT event file",
    )
    verify.add_argument("--top", default=None, help="top module / function name (default: the project's)")
    verify.add_argument("--json", type=Path, default=None, help="write one object per source to this file")
    verify.add_argument("--examples", type=int, default=5, help="mismatching events to print per source")
    verify.add_argument("--threads", type=int, default=None, help="simulator threads (default: all cores)")
    verify.add_argument("--cache", type=Path, default=None, help="build cache (default ~/.cache/l1flow/verilator)")
    verify.add_argument(
        "--workspace", type=Path, default=None,
        help="registry workspace for NAME@ALIAS (default: $L1FLOW_WORKSPACE, else work)",
    )
    verify.add_argument("--tracking-uri", default=None, help="MLflow tracking URI of the registry")
    verify.set_defaults(func=_cmd_verify)
