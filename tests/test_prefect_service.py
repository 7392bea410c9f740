"""The plain service helpers (no server): pools, staging, publishing and the result cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

# its asserts are rewritten even when this import comes before pytest loads it as a plugin
pytest.register_assert_rewrite("prefect_fixtures")
from prefect_fixtures import tiny_rtl_job  # noqa: E402

from l1flow.artifacts import ArtifactStore
from l1flow.cli.service import worker_command
from l1flow.fileio import folder_manifest
from l1flow.service.synthesis import (
    check_pool_tools,
    fetch_result,
    pool_for_tool,
    publish_result,
    result_ref,
    stage_project,
    stored_outcome,
)
from l1flow.synthesis import runner_for
from l1flow.synthesis.job import SynthesisJob
from l1flow.toolchain import ToolMissingError


def _job(tmp_path: Path) -> SynthesisJob:
    job_file = tiny_rtl_job(tmp_path / "job", width=4)
    job = SynthesisJob.load(job_file)
    return job.model_copy(update={"project_dir": job_file.parent / "project"})


def test_jobs_go_to_the_pool_of_their_tool() -> None:
    assert pool_for_tool("yosys").name == "fpga-synthesis-open"
    assert pool_for_tool("vitis_hls").name == "fpga-synthesis"
    assert pool_for_tool("vivado").deployment_name == "synthesize/fpga-synthesis"
    with pytest.raises(ValueError, match="no synthesis pool runs tool 'quartus'"):
        pool_for_tool("quartus")


def test_worker_checks_the_pool_tools_here() -> None:
    assert check_pool_tools("fpga-synthesis-open").tools == ("yosys",)
    with pytest.raises(ToolMissingError, match="'vitis_hls' was not found"):
        check_pool_tools("fpga-synthesis")
    with pytest.raises(ValueError, match="unknown synthesis pool 'gpu'; known pools: fpga-synthesis"):
        check_pool_tools("gpu")
    command = worker_command("fpga-synthesis-open", "host-1", 2)
    assert command[1:] == [
        "-m", "prefect", "worker", "start", "--pool", "fpga-synthesis-open", "--type", "process",
        "--name", "host-1", "--limit", "2",
    ]


def test_staging_uploads_only_the_job_inputs(tmp_path: Path) -> None:
    job = _job(tmp_path)
    (job.project_dir / "scratch.log").write_text("not an input")
    store = ArtifactStore(tmp_path / "store")
    digest = stage_project(store, job)
    fetched = store.get_tree(digest, tmp_path / "fetched")
    assert [entry.path for entry in folder_manifest(fetched)] == ["rtl/acc.v"]
    # the job computed on the fetched copy has the same hash: same inputs, other place
    assert job.model_copy(update={"project_dir": fetched}).job_hash() == job.job_hash()


@pytest.mark.slow  # runs yosys
def test_published_result_is_found_by_job_hash(tmp_path: Path) -> None:
    job = _job(tmp_path)
    store = ArtifactStore(tmp_path / "store")
    assert stored_outcome(store, job.job_hash()) is None
    with pytest.raises(LookupError, match="no finished synthesis of job"):
        fetch_result(store, job.job_hash(), tmp_path / "nothing")

    report = runner_for("yosys").run(job, tmp_path / "work")
    outcome = publish_result(store, job, tmp_path / "work" / job.job_hash())
    assert store.get_ref(result_ref(job.job_hash())) == outcome.result_digest
    # a 4-bit adder with a registered 5-bit sum
    assert outcome.report["resources"]["ff"] == report.resources.ff == 5
    again = stored_outcome(store, job.job_hash())
    assert again is not None and again.report == outcome.report
    folder = fetch_result(store, job.job_hash(), tmp_path / "fetched")
    assert json.loads((folder / "report.json").read_text())["job_hash"] == job.job_hash()


def test_an_unfinished_result_is_never_published(tmp_path: Path) -> None:
    job = _job(tmp_path)
    store = ArtifactStore(tmp_path / "store")
    partial = tmp_path / "work" / job.job_hash()
    (partial / "logs").mkdir(parents=True)
    (partial / "logs" / "yosys.log").write_text("killed half way\n")
    with pytest.raises(FileNotFoundError, match="not a finished synthesis result"):
        publish_result(store, job, partial)
    assert store.get_ref(result_ref(job.job_hash())) is None
    assert not (tmp_path / "store" / "objects").exists()


@pytest.mark.slow  # records a version in a real MLflow store
def test_submit_for_a_model_version_takes_the_project_from_its_bundle(tmp_path: Path) -> None:
    """`synth submit --model ae --version 1`: project_dir is a path inside the version's firmware bundle."""
    import argparse

    from test_registry_runfolders import make_run_folder

    from l1flow.cli.service import ServiceError
    from l1flow.cli.synth import _fetch_bundle, _load_job
    from l1flow.registry.criteria import AcceptanceCriteria
    from l1flow.registry.store import ModelRegistry

    run_dir = make_run_folder(tmp_path / "run1")
    ModelRegistry(tmp_path / "ws").record_run(run_dir, AcceptanceCriteria())
    local = SynthesisJob(
        project_dir=run_dir / "firmware" / "ae", project_kind="rtl", tool="yosys", steps=("synth",),
        part="xc7vx690tffg1927-2", clock_period_ns=25.0, top="myproject", rtl_files=(Path("rtl/myproject.v"),),
    )
    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps({**local.to_dict(), "project_dir": "firmware"}))
    args = argparse.Namespace(job=str(job_file), project=None, model="ae", version="1",
                              registry=str(tmp_path / "ws"), tracking_uri=None)
    bundle = _fetch_bundle(args, tmp_path / "bundle")
    job = _load_job(args, bundle)
    assert job.project_dir == bundle / "firmware"
    assert job.job_hash() == local.job_hash()  # the registered firmware is the run's firmware

    job_file.write_text(json.dumps({**local.to_dict(), "project_dir": str(run_dir / "firmware" / "ae")}))
    with pytest.raises(ServiceError, match="must be relative to the model's firmware bundle"):
        _load_job(args, bundle)
