"""Synthesis as a shared service: pools, staging, cached results. Plain Python, no Prefect.

A job goes to the work pool whose machines have its tool:

- ``fpga-synthesis``      vendor hosts with ``vitis_hls`` and ``vivado``;
- ``fpga-synthesis-open`` hosts with ``yosys``.

What crosses machines goes through the :class:`~l1flow.artifacts.ArtifactStore`:
the submitter stages exactly the job's input files (``SynthesisJob.project_files``)
as one folder object; the worker publishes its result folder (``job.json``,
``report.json``, ``logs/``, ``project/`` with the tool's outputs) and then
sets the ref ``synthesis/<job hash>``. The job hash covers the settings and the
content of every input file, so an identical job finds that ref and is never
synthesized again.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from l1flow.artifacts import ArtifactStore
from l1flow.errors import L1flowError
from l1flow.settings import settings
from l1flow.synthesis.job import JOB_FILE, REPORT_FILE, SynthesisJob
from l1flow.synthesis.reports import SynthesisReport

#: global concurrency limit: one slot per GB of memory a running job declares
MEMORY_LIMIT_NAME = "fpga-synthesis-memory"
#: slots of that limit created by `l1flow serve` unless told otherwise
DEFAULT_MEMORY_SLOTS_GB = 64
#: outer bound on one synthesize flow run; each tool run has the job's own time-out
SYNTHESIS_FLOW_TIMEOUT_S = 48 * 3600
#: the deployment of the `synthesize` flow on every pool
SYNTHESIZE_FLOW_NAME = "synthesize"
#: where the store is, when neither the command line nor the config says


class MissingMemoryLimitError(L1flowError):
    """The global memory limit is not on the Prefect server: jobs must not run unlimited."""

    def __init__(self) -> None:
        super().__init__(
            f"the concurrency limit '{MEMORY_LIMIT_NAME}' does not exist on the Prefect server, so this job "
            f"cannot reserve its memory; run `l1flow serve` (creates it) or "
            f"`prefect gcl create {MEMORY_LIMIT_NAME} --limit <GB across the synthesis hosts>`, then resubmit"
        )


@dataclass(frozen=True)
class SynthesisPool:
    """A work pool of synthesis machines and the tools each of them must have."""

    name: str
    tools: tuple[str, ...]
    serves: tuple[str, ...]  # job `tool` values routed to this pool
    description: str

    @property
    def deployment_name(self) -> str:
        return f"{SYNTHESIZE_FLOW_NAME}/{self.name}"


SYNTHESIS_POOLS: dict[str, SynthesisPool] = {
    pool.name: pool
    for pool in (
        SynthesisPool(
            name="fpga-synthesis",
            tools=("vitis_hls", "vivado"),
            serves=("vitis_hls", "vivado"),
            description="Synthesis hosts with AMD/Xilinx Vitis HLS and Vivado",
        ),
        SynthesisPool(
            name="fpga-synthesis-open",
            tools=("yosys",),
            serves=("yosys",),
            description="Synthesis hosts with the open-source yosys",
        ),
    )
}


def pool_for_tool(tool: str) -> SynthesisPool:
    """The pool whose workers run jobs of ``tool``."""
    for pool in SYNTHESIS_POOLS.values():
        if tool in pool.serves:
            return pool
    raise ValueError(f"no synthesis pool runs tool {tool!r}; pools: {describe_pools()}")


def describe_pools() -> str:
    return "; ".join(f"{p.name} ({', '.join(p.tools)})" for p in SYNTHESIS_POOLS.values())


def check_pool_tools(pool_name: str) -> SynthesisPool:
    """Refuse a worker on a machine that lacks a tool its pool's jobs need."""
    pool = SYNTHESIS_POOLS.get(pool_name)
    if pool is None:
        raise ValueError(f"unknown synthesis pool {pool_name!r}; known pools: {describe_pools()}")
    # the runners' own look-ups, so a worker accepts exactly what its jobs will find
    from l1flow.synthesis.vendor import hls_command, vivado_command
    from l1flow.toolchain import yosys_command

    lookups = {"vitis_hls": lambda: hls_command("check"), "vivado": lambda: vivado_command("check"), "yosys": yosys_command}
    for tool in pool.tools:
        lookups[tool]()
    return pool


def default_store_url() -> str:
    """The artifact store: $L1FLOW_ARTIFACT_STORE, else ~/.l1flow/artifacts."""
    return settings().artifact_store


def result_ref(job_hash: str) -> str:
    return f"synthesis/{job_hash}"


@dataclass(frozen=True)
class SynthesisOutcome:
    """Where a finished job's result is: its hash, the result folder digest and the report."""

    job_hash: str
    result_digest: str
    report: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SynthesisOutcome:
        return cls(job_hash=data["job_hash"], result_digest=data["result_digest"], report=data["report"])


def _report_of(store: ArtifactStore, result_digest: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = store.get_tree(result_digest, Path(tmp) / "result")
        return SynthesisReport.model_validate_json((folder / REPORT_FILE).read_text()).to_summary()


def stored_outcome(store: ArtifactStore, job_hash: str) -> SynthesisOutcome | None:
    """The earlier result of ``job_hash``, or None if it was never completed."""
    digest = store.get_ref(result_ref(job_hash))
    if digest is None:
        return None
    return SynthesisOutcome(job_hash=job_hash, result_digest=digest, report=_report_of(store, digest))


def stage_project(store: ArtifactStore, job: SynthesisJob) -> str:
    """Put exactly the job's input files in the store; return the folder digest."""
    with tempfile.TemporaryDirectory(prefix="l1flow-stage-") as tmp:
        stage = Path(tmp) / "project"
        for rel in job.project_files():
            (stage / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(job.project_dir / rel, stage / rel)
        return store.put_tree(stage)


def publish_result(store: ArtifactStore, job: SynthesisJob, result_dir: Path) -> SynthesisOutcome:
    """Store a finished result folder, then point ``synthesis/<job hash>`` at it."""
    report_path = Path(result_dir) / REPORT_FILE
    if not report_path.is_file() or not (Path(result_dir) / JOB_FILE).is_file():
        raise FileNotFoundError(f"{result_dir} is not a finished synthesis result (no {REPORT_FILE} / {JOB_FILE})")
    digest = store.put_tree(result_dir)
    job_hash = job.job_hash()
    store.set_ref(result_ref(job_hash), digest)
    report = SynthesisReport.model_validate_json(report_path.read_text()).to_summary()
    return SynthesisOutcome(job_hash=job_hash, result_digest=digest, report=report)


def fetch_result(store: ArtifactStore, job_hash: str, dest: Path) -> Path:
    """Unpack the result folder of ``job_hash`` into ``dest`` (a new folder)."""
    digest = store.get_ref(result_ref(job_hash))
    if digest is None:
        raise LookupError(
            f"no finished synthesis of job {job_hash} in the store {store.root_url}; "
            "follow it with `l1flow synth status` and fetch it once it has completed"
        )
    return store.get_tree(digest, dest)
