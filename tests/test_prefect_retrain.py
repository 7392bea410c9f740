"""Event-driven retraining against a real Prefect server.

- the event `l1flow.conditions.changed` -> the retrain deployment's automation
  -> a flow run of that deployment with the event's config, tag and IOV;
- `l1flow serve` + a new conditions IOV, and no other command -> the watch flow
  emits the event -> a retrain run -> a synthesis job completed on the pool.
"""

from __future__ import annotations

import time
from pathlib import Path
from uuid import UUID

import pytest

# its asserts are rewritten even when this import comes before pytest loads it as a plugin
pytest.register_assert_rewrite("prefect_fixtures")
from prefect_fixtures import REPO_ROOT, PrefectServer, wait_for  # noqa: E402

from l1flow.service.watch import ConditionsChange

# one Prefect server for the whole session, whichever modules use it
pytest_plugins = ["prefect_fixtures"]
pytestmark = pytest.mark.slow

TINY_RETRAIN = "tests/prefect_fixtures.py:tiny_retrain"


def _runs_of(deployment_name: str) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(deployment_name)
        return client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[UUID(str(deployment.id))]))
        )


def test_conditions_event_starts_retrain_with_event_parameters(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    from l1flow.flows.deployments import control_deployments
    from l1flow.flows.watch import announce

    config = tmp_path / "pipeline.json"
    config.write_text("{}")
    _, retrain = control_deployments(
        config_path=str(config),
        conditions_db=str(tmp_path / "conditions.sqlite"),
        conditions_tag="EventTest_v1",
        retrain_entrypoint=TINY_RETRAIN,
        source=REPO_ROOT,
    )
    retrain.apply()
    assert _runs_of("tiny_retrain/retrain") == []

    change = ConditionsChange(
        tag="EventTest_v1",
        first_run=381200,
        last_run=None,
        reason="calibration.jet changed by 0.08 (tolerance 0.02)",
        config_path=str(config),
        conditions_db="/data/conditions.sqlite",
        payload={"mean_pileup": 60.0},
        changes=["calibration.jet"],
    )
    announce(change)
    runs = wait_for(lambda: _runs_of("tiny_retrain/retrain"), timeout=60, what="the automation to start a retrain")
    assert len(runs) == 1  # type: ignore[arg-type]
    assert runs[0].parameters == {  # type: ignore[index]
        "config_path": str(config),
        "overrides": [
            "conditions.tag=EventTest_v1",
            "conditions.run=381200",
            "conditions.store=/data/conditions.sqlite",
        ],
        "trigger": change.to_payload(),  # the whole payload, as a dict: iov.first_run is still an int
    }
    # an event for another resource kind does not start a retrain
    from prefect.events import emit_event

    emit_event(event="l1flow.conditions.changed", resource={"prefect.resource.id": "something.else"}, payload={})
    announce(change)  # the same change again: a second, distinct run (events are not deduplicated)
    wait_for(lambda: len(_runs_of("tiny_retrain/retrain")) >= 2, timeout=60, what="the second retrain run")
    time.sleep(5)  # give a wrongly matched event time to show up as a third run
    runs = _runs_of("tiny_retrain/retrain")
    assert len(runs) == 2
    assert {run.parameters["trigger"]["iov"]["first_run"] for run in runs} == {381200}


def test_retrain_flow_without_event_parameters_is_refused(tmp_path: Path) -> None:
    from l1flow.flows.deployments import control_deployments

    with pytest.raises(ValueError, match="lacks parameter"):
        control_deployments(
            config_path="x.yaml",
            conditions_db="c.sqlite",
            conditions_tag="T",
            retrain_entrypoint="flows/synthesize.py:synthesize",
            source=REPO_ROOT,
        )
