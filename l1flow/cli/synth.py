"""``l1flow synth run | report | submit | status | fetch``: synthesis jobs.

- ``synth run JOB --workdir DIR``: run a synthesis job on this machine
  (yosys here; Vitis/Vivado on a synthesis host) and print its report; the
  result is cached under ``DIR/<job_hash>/``. (Queuing jobs on the synthesis
  pools is ``l1flow synth submit``.)
- ``synth report FILE...``: read vendor/yosys report files (csynth XML,
  cosim report, Vivado utilization, yosys stat JSON) into one report.
- ``synth submit | status | fetch``: queue a job on the synthesis pools of a
  Prefect server, follow it, fetch its result from the artifact store.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from l1flow.cli.service import ServiceError, print_result, require_server
from l1flow.service.synthesis import default_store_url
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


def _load_job(args: argparse.Namespace, bundle_root: Path | None) -> Any:
    """The job file's job, its project folder resolved (in a model version's bundle if given)."""
    from l1flow.synthesis.job import SynthesisJob

    path = Path(args.job)
    if not path.is_file():
        raise ServiceError(f"job file {path} does not exist; write one with `SynthesisJob.to_yaml()`")
    job = SynthesisJob.load(path)
    project = Path(args.project) if args.project else job.project_dir
    if bundle_root is not None:
        if project.is_absolute():
            raise ServiceError(
                f"{path}: project_dir {project} must be relative to the model's firmware bundle "
                "(e.g. firmware/hls4ml) when --model is given"
            )
        project = bundle_root / project
    elif not project.is_absolute():
        # a relative project folder is relative to the job file, as a user reading it expects
        project = (path.parent / project).resolve()
    return job.model_copy(update={"project_dir": project})


def _fetch_bundle(args: argparse.Namespace, dest: Path) -> Path:
    """Download a registered model version's firmware bundle; return its folder."""
    from l1flow.registry.store import ModelRegistry

    if args.registry is None:
        raise ServiceError("--model needs --registry (the workspace folder of the model registry)")
    registry = ModelRegistry(Path(args.registry), tracking_uri=args.tracking_uri)
    version: int | str = int(args.version) if args.version.isdigit() else args.version
    return registry.fetch(args.model, version, dest).folder


def _cmd_synth_submit(args: argparse.Namespace) -> int:
    require_server()
    from l1flow.artifacts import ArtifactStore
    from l1flow.flows.synthesis_client import submit, wait

    store = ArtifactStore(args.store)
    with tempfile.TemporaryDirectory(prefix="l1flow-bundle-") as tmp:
        bundle_root = _fetch_bundle(args, Path(tmp)) if args.model else None
        job = _load_job(args, bundle_root)
        # the project is in the store once submit returns; the bundle copy can go
        submission = submit(job, store)
    if submission.cached:
        assert submission.outcome is not None
        print_result(
            args,
            {"job_hash": submission.job_hash, "cached": True, "result": submission.outcome.result_digest,
             "report": submission.outcome.report},
            f"job {submission.job_hash}: already synthesized (cached); "
            f"`l1flow synth fetch {submission.job_hash} --dest DIR` gets the reports",
        )
        return 0
    data: dict[str, Any] = {
        "job_hash": submission.job_hash,
        "cached": False,
        "flow_run_id": submission.flow_run_id,
        "deployment": submission.deployment,
    }
    if args.wait is None:
        print_result(args, data, f"job {submission.job_hash}: queued as flow run {submission.flow_run_id} "
               f"on {submission.deployment}")
        return 0
    assert submission.flow_run_id is not None
    final = wait(submission.flow_run_id, timeout_s=args.wait)
    data.update({"state": final.state, "state_type": final.state_type, "message": final.message})
    print_result(args, data, f"job {submission.job_hash}: flow run {final.flow_run_id} is {final.state}")
    return 0 if final.state_type == "COMPLETED" else 1


def _cmd_synth_status(args: argparse.Namespace) -> int:
    require_server()
    from l1flow.flows.synthesis_client import status, wait

    current = wait(args.flow_run_id, timeout_s=args.wait) if args.wait else status(args.flow_run_id)
    data = {
        "flow_run_id": current.flow_run_id,
        "job_hash": current.job_hash,
        "state": current.state,
        "state_type": current.state_type,
        "message": current.message,
        "run_count": current.run_count,
    }
    text = f"flow run {current.flow_run_id} (job {current.job_hash}): {current.state}"
    if current.message:
        text += f" - {current.message}"
    print_result(args, data, text)
    return 0 if current.state_type not in ("FAILED", "CRASHED", "CANCELLED") else 1


def _cmd_synth_fetch(args: argparse.Namespace) -> int:
    from l1flow.artifacts import ArtifactStore
    from l1flow.service.synthesis import fetch_result

    folder = fetch_result(ArtifactStore(args.store), args.job_hash, Path(args.dest))
    report = json.loads((folder / "report.json").read_text())
    print_result(
        args,
        {"job_hash": args.job_hash, "folder": str(folder), "report": report},
        f"job {args.job_hash}: result in {folder} (report.json, logs/, project/)",
    )
    return 0


def add_commands(subparsers: Any) -> None:
    """Add ``synth`` and its actions."""
    synth = subparsers.add_parser(
        "synth", help="synthesis jobs: run here, or submit to the pools, follow them and fetch reports"
    )
    synth_actions = synth.add_subparsers(dest="synth_command", required=True, metavar="ACTION")
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


    submit = synth_actions.add_parser("submit", help="queue a synthesis job (or return its cached result)")
    submit.add_argument("job", help="synthesis job file (.yaml or .json, as SynthesisJob.to_yaml writes)")
    submit.add_argument("--project", default=None, help="firmware project folder (overrides the job's project_dir)")
    submit.add_argument(
        "--model", default=None,
        help="synthesize a registered model version: the job's project_dir is then a path inside its firmware bundle",
    )
    submit.add_argument("--version", default="candidate", help="version number or alias of --model")
    submit.add_argument("--registry", default=None, help="workspace folder of the model registry (with --model)")
    submit.add_argument("--tracking-uri", default=None, help="MLflow tracking URI, if not the embedded store")
    submit.add_argument("--store", default=default_store_url(), help="artifact store URL shared with the workers")
    submit.add_argument("--wait", type=float, default=None, metavar="SECONDS", help="wait up to SECONDS for it")
    submit.add_argument("--json", action="store_true", help="print one JSON line")
    submit.set_defaults(func=_cmd_synth_submit)

    status = synth_actions.add_parser("status", help="state of a submitted synthesis run")
    status.add_argument("flow_run_id")
    status.add_argument("--wait", type=float, default=None, metavar="SECONDS", help="wait up to SECONDS for it to end")
    status.add_argument("--json", action="store_true", help="print one JSON line")
    status.set_defaults(func=_cmd_synth_status)

    fetch = synth_actions.add_parser("fetch", help="download a finished job's reports, logs and outputs")
    fetch.add_argument("job_hash")
    fetch.add_argument("--dest", required=True, help="new folder to unpack the result into")
    fetch.add_argument("--store", default=default_store_url(), help="artifact store URL shared with the workers")
    fetch.add_argument("--json", action="store_true", help="print one JSON line")
    fetch.set_defaults(func=_cmd_synth_fetch)
