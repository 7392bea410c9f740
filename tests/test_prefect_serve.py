"""`l1flow serve` + a new conditions IOV, and no other command -> retrain run -> synthesis on the pool.

A real server, `l1flow serve` and `l1flow worker --pool fpga-synthesis-open` as
subprocesses. The retrain deployment runs `tiny_retrain` (the pipeline's
parameters, a fraction of its run time), which submits the config's
synthesis job as the pipeline's synthesis step does.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from uuid import UUID

import pytest

# its asserts are rewritten even when this import comes before pytest loads it as a plugin
pytest.register_assert_rewrite("prefect_fixtures")
from prefect_fixtures import (  # noqa: E402
    REPO_ROOT,
    PrefectServer,
    counting_yosys,
    l1flow_command,
    stop_process,
    tiny_rtl_job,
    wait_for,
    yosys_calls,
)

from l1flow.conditions.payload import ConditionsPayload
from l1flow.conditions.store import ConditionsStore

# one Prefect server for the whole session, whichever modules use it
pytest_plugins = ["prefect_fixtures"]
pytestmark = pytest.mark.slow

TAG = "E2E_v1"


def _retrain_runs_for(tag: str) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("tiny_retrain/retrain")
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[UUID(str(deployment.id))]))
        )
    return [run for run in runs if (run.parameters.get("trigger") or {}).get("tag") == tag]


def _completed_watch_runs() -> int:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name("watch_conditions/watch")
        except ObjectNotFound:  # `serve` has not registered it yet
            return 0
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[UUID(str(deployment.id))]))
        )
    return sum(1 for run in runs if run.state is not None and run.state.is_completed())


def test_serve_then_new_iov_leads_to_retrain_and_synthesis(
    prefect_server: PrefectServer, worker_factory, tmp_path: Path
) -> None:
    from l1flow.flows.synthesis_client import status

    db = tmp_path / "conditions.sqlite"
    store = ConditionsStore(db)
    store.add("Other_v1", first_run=1, payload=ConditionsPayload())  # the store exists; TAG has no IOV yet
    job_file = tiny_rtl_job(tmp_path / "job", width=6)
    config = tmp_path / "pipeline.json"
    config.write_text(json.dumps({"synthesis_job": str(job_file), "store": str(tmp_path / "artifacts")}))
    calls = tmp_path / "yosys-calls.txt"
    worker_factory("fpga-synthesis-open", extra_env=counting_yosys(tmp_path / "bin", calls), name="e2e")

    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        serve = subprocess.Popen(
            l1flow_command(
                "serve", str(config), "--conditions-db", str(db), "--tag", TAG, "--watch-interval", "5",
                "--memory-gb", "8", "--source", str(REPO_ROOT),
                "--retrain-entrypoint", "tests/prefect_fixtures.py:tiny_retrain",
            ),
            env=prefect_server.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
            start_new_session=True,
        )
    try:
        # the watch is looking (and finds nothing to announce) before the IOV arrives
        wait_for(lambda: _completed_watch_runs() >= 1, timeout=120, what="a first look of the watch")
        assert _retrain_runs_for(TAG) == []

        store.add(TAG, first_run=400000, payload=ConditionsPayload(mean_pileup=62.0))

        record_path = tmp_path / f"retrained-{TAG}-400000.json"
        wait_for(record_path.exists, timeout=120, what="the retrain run started by the conditions event")
        record = json.loads(record_path.read_text())
        assert record["overrides"] == [f"conditions.tag={TAG}", "conditions.run=400000", f"conditions.store={db}"]
        assert record["trigger"]["iov"] == {"first_run": 400000, "last_run": None}
        assert record["trigger"]["conditions"]["mean_pileup"] == 62.0
        assert "no model trained" in record["trigger"]["reason"]

        final = wait_for(
            lambda: (s := status(record["synthesis_flow_run_id"])).final and s,
            timeout=180, what="the synthesis job on the pool",
        )
        assert final.state_type == "COMPLETED", final  # type: ignore[union-attr]
        assert yosys_calls(calls) == 1

        # a later look sees the same IOV and does not announce it again
        looks = _completed_watch_runs()
        wait_for(lambda: _completed_watch_runs() > looks, timeout=120, what="another look of the watch")
        assert len(_retrain_runs_for(TAG)) == 1
    finally:
        stop_process(serve)
    assert serve.returncode is not None, log_path.read_text()[-2000:]
