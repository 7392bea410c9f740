"""Synthesis on a work pool, against a real Prefect server and real process workers.

- submit -> a worker of `fpga-synthesis-open` runs yosys on a tiny RTL design -> reports fetched;
- a second identical submit returns the cached result without running yosys again
  (counted by a yosys wrapper on the worker's PATH);
- SIGKILL of the worker mid-job -> the run is requeued, completes on a new worker,
  and nothing was published as done in between.

Both scenarios run twice: on the session's SQLite server, and on the production
setup (PostgreSQL, API authentication, every command and worker passing the
credential from a file).
"""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

# its asserts are rewritten even when this import comes before pytest loads it as a plugin
pytest.register_assert_rewrite("prefect_fixtures")
from prefect_fixtures import (  # noqa: E402
    REPO_ROOT,
    PrefectServer,
    counting_yosys,
    l1flow_command,
    tiny_rtl_job,
    wait_for,
    yosys_calls,
)

from l1flow.artifacts import ArtifactStore
from l1flow.service.synthesis import MEMORY_LIMIT_NAME, result_ref

# one Prefect server for the whole session, whichever modules use it
pytest_plugins = ["prefect_fixtures"]
pytestmark = pytest.mark.slow

OPEN_POOL = "fpga-synthesis-open"
# the scenarios on each database the docs describe (see prefect_fixtures.prefect_server)
ON_EACH_DATABASE = pytest.mark.parametrize("prefect_server", ["sqlite", "postgresql"], indirect=True)


def _cli(server: PrefectServer, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        l1flow_command(*args), env=server.env(), capture_output=True, text=True, timeout=240, cwd=REPO_ROOT
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture
def registered(prefect_server: PrefectServer) -> PrefectServer:
    from l1flow.flows.deployments import register_synthesis

    registration = register_synthesis(source=REPO_ROOT, memory_slots_gb=8, lost_after=timedelta(seconds=45))
    assert f"synthesize/{OPEN_POOL}" in registration.deployments
    return prefect_server


def test_pools_and_memory_limit_are_created(registered: PrefectServer) -> None:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name(MEMORY_LIMIT_NAME)
        assert limit.limit == 8
        pools = {pool.name: pool.type for pool in client.read_work_pools()}
    assert pools["fpga-synthesis"] == "process"
    assert pools[OPEN_POOL] == "process"


def test_vendor_worker_refuses_without_vendor_tools(registered: PrefectServer) -> None:
    result = _cli(registered, "worker", "--pool", "fpga-synthesis", check=False)
    assert result.returncode == 1
    assert "refusing to start a worker for pool 'fpga-synthesis'" in result.stderr
    assert "'vitis_hls' was not found" in result.stderr


@ON_EACH_DATABASE
def test_submit_runs_yosys_on_worker_then_cached(
    registered: PrefectServer, worker_factory, tmp_path: Path
) -> None:
    count_file = tmp_path / "yosys-calls.txt"
    worker_factory(OPEN_POOL, extra_env=counting_yosys(tmp_path / "bin", count_file))
    job_file = tiny_rtl_job(tmp_path / "job", width=8)
    store_url = str(tmp_path / "store")
    refused_run_id = None
    if registered.database == "sqlite":
        # the flow's memory-limit refusals do not depend on the database: checked once, on SQLite
        refused_run_id = _check_memory_limit_refusals(registered, job_file, store_url, count_file)
    _check_submit_fetch_and_cache(registered, job_file, store_url, count_file, tmp_path, refused_run_id)


def _check_memory_limit_refusals(registered: PrefectServer, job_file: Path, store_url: str, count_file: Path) -> str:
    """Refused jobs fail at once without running yosys; returns the id of the run refused for a missing limit."""
    # a job declaring more memory than the whole limit would wait for ever: it fails at once
    big_job = job_file.with_name("job-big.json")
    big_job.write_text(json.dumps({**json.loads(job_file.read_text()), "memory_gb": 9}))
    too_big = _cli(registered, "synth", "submit", str(big_job), "--store", store_url, "--wait", "180", "--json",
                   check=False)
    assert too_big.returncode == 1
    assert "declares 9 GB (memory_gb) but the limit 'fpga-synthesis-memory' has only 8" in (
        json.loads(too_big.stdout)["message"]
    )
    assert yosys_calls(count_file) == 0

    # without the memory limit the job must not run unlimited: it fails before the tool starts
    from prefect.client.orchestration import get_client

    from l1flow.flows.deployments import ensure_memory_limit

    with get_client(sync_client=True) as client:
        client.delete_global_concurrency_limit_by_name(MEMORY_LIMIT_NAME)
    try:
        refused = _cli(registered, "synth", "submit", str(job_file), "--store", store_url, "--wait", "180",
                       "--json", check=False)
    finally:
        assert ensure_memory_limit(8) is True
    refused_run = json.loads(refused.stdout)
    assert refused.returncode == 1
    assert refused_run["state_type"] == "FAILED"
    assert f"concurrency limit '{MEMORY_LIMIT_NAME}' does not exist" in refused_run["message"]
    assert yosys_calls(count_file) == 0
    return str(refused_run["flow_run_id"])


def _check_submit_fetch_and_cache(
    registered: PrefectServer, job_file: Path, store_url: str, count_file: Path, tmp_path: Path,
    refused_run_id: str | None,
) -> None:
    """Submit -> the worker runs yosys once -> fetch the report; the same job again is the cached result."""
    # after a refusal, the same job is a new run (the failed one is not reused), which completes
    first = json.loads(_cli(registered, "synth", "submit", str(job_file), "--store", store_url,
                            "--wait", "180", "--json").stdout)
    assert first["flow_run_id"] != refused_run_id
    assert first["cached"] is False
    assert first["state_type"] == "COMPLETED", first
    assert yosys_calls(count_file) == 1

    fetched = json.loads(_cli(registered, "synth", "fetch", first["job_hash"], "--dest",
                              str(tmp_path / "fetched"), "--store", store_url, "--json").stdout)
    report = fetched["report"]
    assert report["tool"] == "yosys"
    assert report["job_hash"] == first["job_hash"]
    assert report["latency_min_cycles"] == 1
    # an 8-bit adder with a 9-bit registered sum: 9 flip-flops, a handful of LUTs
    assert report["resources"]["ff"] == 9
    assert 1 <= report["resources"]["lut"] <= 20
    folder = Path(fetched["folder"])
    assert (folder / "logs" / "yosys.log").is_file()
    assert (folder / "project" / "rtl" / "acc.v").is_file()

    second = json.loads(_cli(registered, "synth", "submit", str(job_file), "--store", store_url,
                             "--json").stdout)
    assert second["cached"] is True
    assert second["job_hash"] == first["job_hash"]
    assert second["report"]["resources"] == report["resources"]
    assert yosys_calls(count_file) == 1  # yosys did not run again

    status = json.loads(_cli(registered, "synth", "status", first["flow_run_id"], "--json").stdout)
    assert status["state_type"] == "COMPLETED"
    assert status["job_hash"] == first["job_hash"]


@ON_EACH_DATABASE
def test_worker_killed_mid_job_is_recovered_on_a_new_worker(
    registered: PrefectServer, worker_factory, tmp_path: Path
) -> None:
    from l1flow.flows.synthesis_client import status

    # worker A's yosys hangs (a long synthesis); worker B's runs at once
    calls_a, calls_b = tmp_path / "calls-a.txt", tmp_path / "calls-b.txt"
    worker_a = worker_factory(OPEN_POOL, extra_env=counting_yosys(tmp_path / "bin-a", calls_a, delay_s=600), name="a")
    job_file = tiny_rtl_job(tmp_path / "job", width=12)
    store_url = str(tmp_path / "store")
    store = ArtifactStore(store_url)
    submitted = json.loads(_cli(registered, "synth", "submit", str(job_file), "--store", store_url, "--json").stdout)
    run_id, job_hash = submitted["flow_run_id"], submitted["job_hash"]

    wait_for(lambda: yosys_calls(calls_a) == 1, timeout=120, what="worker A to start yosys")
    assert status(run_id).state_type == "RUNNING"
    worker_a.kill_hard()
    assert worker_a.descendants() == []

    # the killed attempt published nothing that looks done: only the staged project is complete
    assert store.get_ref(result_ref(job_hash)) is None
    done = list((tmp_path / "store" / "objects").rglob("*.done"))
    assert len(done) == 1
    assert status(run_id).state_type == "RUNNING"  # Prefect cannot know yet

    worker_factory(OPEN_POOL, extra_env=counting_yosys(tmp_path / "bin-b", calls_b), name="b")
    final = wait_for(
        lambda: (s := status(run_id)).final and s, timeout=240, what="the requeued run to finish on worker B"
    )
    assert final.state_type == "COMPLETED", final  # type: ignore[union-attr]
    assert final.run_count >= 2  # type: ignore[union-attr]
    assert yosys_calls(calls_a) == 1 and yosys_calls(calls_b) == 1
    digest = store.get_ref(result_ref(job_hash))
    assert digest is not None and store.exists(digest)
    out = store.get_tree(digest, tmp_path / "result")
    report = json.loads((out / "report.json").read_text())
    assert report["job_hash"] == job_hash
    assert report["resources"]["ff"] == 13
