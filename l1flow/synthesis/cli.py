"""`l1flow synth run`, `l1flow synth report` and `l1flow gate`.

- ``synth run JOB --workdir DIR``: run a synthesis job on this machine
  (yosys here; Vitis/Vivado on a synthesis host) and print its report; the
  result is cached under ``DIR/<job_hash>/``. (Queuing jobs on the synthesis
  pools is ``l1flow synth submit``.)
- ``synth report FILE...``: read vendor/yosys report files (csynth XML,
  cosim report, Vivado utilization, yosys stat JSON) into one report.
- ``gate EXPECTED RESULT``: the bit-exact gate on two vector folders; exit
  status 0 only if the result matches the emulation bit for bit.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from l1flow.synthesis import runner_for
from l1flow.synthesis.reports import (
    Resources,
    SynthesisReport,
    parse_cosim_rpt,
    parse_csynth_xml,
    parse_vivado_synth_rpt,
)


def format_report(report: SynthesisReport) -> str:
    """A few readable lines: latency, II, resources with utilisation."""
    lines = [f"tool {report.tool} {report.tool_version or ''}  part {report.part or '?'}  top {report.top or '?'}"]
    if report.latency_min_cycles is not None:
        ns = report.latency_max_ns
        lines.append(
            f"latency {report.latency_min_cycles}..{report.latency_max_cycles} cycles"
            + (f" ({ns:g} ns at {report.clock_target_ns:g} ns)" if ns is not None and report.clock_target_ns else "")
            + f", II {report.ii_min}..{report.ii_max}  [{report.latency_source}]"
        )
    fractions = report.utilisation()
    cells = []
    for name, value in report.resources.model_dump().items():
        if value is None:
            continue
        share = f" ({100 * fractions[name]:.2f}%)" if name in fractions else ""
        cells.append(f"{name.upper()} {value:g}{share}")
    lines.append(f"resources [{report.resource_stage}]: " + ", ".join(cells))
    return "\n".join(lines)


def read_report_files(paths: list[Path]) -> SynthesisReport:
    """Parse each file by its name and merge them in the order given."""
    from l1flow.synthesis.yosys import parse_yosys_stat_json, resources_from_cells

    report: SynthesisReport | None = None
    for path in paths:
        name = path.name
        if name.endswith("_csynth.xml"):
            part = parse_csynth_xml(path)
        elif name.endswith("_cosim.rpt"):
            part = parse_cosim_rpt(path)
        elif name.endswith(".rpt"):
            part = parse_vivado_synth_rpt(path)
        elif name.endswith(".json"):
            cells, version = parse_yosys_stat_json(path)
            resources = resources_from_cells(cells)
            part = SynthesisReport(
                tool="yosys",
                tool_version=version,
                resources=resources,
                resource_stage="yosys",
                available=Resources(),
                stages={"yosys": resources},
                primitives=cells,
                sources=[str(path)],
            )
        else:
            raise ValueError(
                f"{path}: unknown report kind (expected <top>_csynth.xml, <top>_cosim.rpt, a Vivado .rpt "
                "or yosys stat .json)"
            )
        report = part if report is None else report.merged(part)
    if report is None:
        raise ValueError("give at least one report file")
    return report


def _cmd_synthesize(args: argparse.Namespace) -> int:
    from l1flow.synthesis.job import SynthesisJob

    job = SynthesisJob.load(args.job)
    if args.project is not None:
        job = SynthesisJob.model_validate({**job.model_dump(), "project_dir": args.project})
    report = runner_for(job.tool).run(job, args.workdir)
    if args.json:
        print(json.dumps(report.to_summary(), sort_keys=True))
    else:
        print(format_report(report))
        print(f"result: {Path(args.workdir) / job.job_hash()}")
    return 0


def _cmd_synth_report(args: argparse.Namespace) -> int:
    report = read_report_files(list(args.files))
    print(json.dumps(report.to_summary(), sort_keys=True) if args.json else format_report(report))
    return 0


def _cmd_gate(args: argparse.Namespace) -> int:
    from l1flow.verify.gate import compare_folders

    report = compare_folders(args.expected, args.result, max_examples=args.examples)
    if args.markdown is not None:
        args.markdown.write_text(report.to_markdown())
    if args.json:
        print(json.dumps(report.to_dict(), sort_keys=True))
    else:
        print(report.to_markdown() if args.verbose else report.summary_line())
    return 0 if report.passed else 1


def add_synth_actions(synth_actions: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `run` and `report` to `l1flow synth` (beside submit/status/fetch, which go through Prefect)."""
    synthesize = synth_actions.add_parser(
        "run", help="run one synthesis job on this machine (cached by job hash) and print its report"
    )
    synthesize.add_argument("job", type=Path, help="synthesis job file (.yaml or .json)")
    synthesize.add_argument("--workdir", type=Path, required=True, help="results go to WORKDIR/<job_hash>/")
    synthesize.add_argument("--project", type=Path, default=None, help="override the job's project_dir")
    synthesize.add_argument("--json", action="store_true", help="print the report as one JSON line")
    synthesize.set_defaults(func=_cmd_synthesize)

    report = synth_actions.add_parser(
        "report", help="read csynth XML / cosim / Vivado utilization / yosys stat files into one report"
    )
    report.add_argument("files", type=Path, nargs="+", help="report files, earlier stages first")
    report.add_argument("--json", action="store_true", help="print the report as one JSON line")
    report.set_defaults(func=_cmd_synth_report)


def add_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `gate` to the `l1flow` command."""
    gate = subparsers.add_parser(
        "gate", help="bit-exact gate: compare a hardware result folder with the emulation's vector folder"
    )
    gate.add_argument("expected", type=Path, help="emulation vector folder (the stimulus set)")
    gate.add_argument("result", type=Path, help="hardware result folder answering it")
    gate.add_argument("--examples", type=int, default=10, help="how many mismatching events to list")
    gate.add_argument("--markdown", type=Path, default=None, help="also write the readable report here")
    gate.add_argument("--json", action="store_true", help="print the full report as one JSON line")
    gate.add_argument("--verbose", action="store_true", help="print the readable table, not one line")
    gate.set_defaults(func=_cmd_gate)
