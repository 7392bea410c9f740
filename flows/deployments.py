"""Register l1flow's deployments, pools, limits and automations on a Prefect server.

``l1flow serve`` calls :func:`register_synthesis` and then serves the control
flows with :func:`serve_control_flows`:

- ``synthesize/<pool>``: one deployment of ``flows/synthesize.py:synthesize``
  per synthesis work pool (process type), run by ``l1flow worker --pool``
  on the synthesis machines;
- the global concurrency limit ``fpga-synthesis-memory`` (created if missing:
  the flow asks for it strictly, so a missing limit fails loudly);
- an automation that puts a synthesis run whose heartbeats stopped (worker
  killed, machine lost) back in the queue, so another worker completes it;
- ``watch_conditions/watch``: the conditions watcher on a cron schedule;
- ``<pipeline>/retrain``: the pipeline flow, started by the event
  ``l1flow.conditions.changed`` with the event's config, tag and IOV.

The watch and retrain deployments run in the ``serve`` process (Prefect's
runner: no pool, no worker) on the control host; only synthesis goes to pools.
Flows are deployed from source (this repository's folder, or a git URL the
workers can clone), never from a Docker image.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from prefect import Flow, serve
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, WorkPoolCreate
from prefect.client.schemas.objects import StateType
from prefect.deployments.runner import RunnerDeployment
from prefect.events import DeploymentEventTrigger
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.events.schemas.events import ResourceSpecification
from prefect.exceptions import ObjectNotFound

from l1flow.flows import FLOW_SOURCE, PIPELINE_ENTRYPOINT, SYNTHESIZE_ENTRYPOINT, WATCH_ENTRYPOINT
from l1flow.service.synthesis import (
    DEFAULT_MEMORY_SLOTS_GB,
    MEMORY_LIMIT_NAME,
    SYNTHESIS_POOLS,
    SYNTHESIZE_FLOW_NAME,
)

CONDITIONS_EVENT = "l1flow.conditions.changed"
LOST_WORKER_AUTOMATION = "l1flow: requeue synthesis runs that lost their worker"
#: heartbeats come every PREFECT_FLOWS_HEARTBEAT_FREQUENCY s (at least 30); two missed = lost
DEFAULT_LOST_AFTER = timedelta(seconds=75)

#: parameters of a retrain run of `flows/pipeline.py:l1flow_pipeline`, filled from the
#: `l1flow.conditions.changed` event: the config, overrides that point it at the new IOV
#: (config fields conditions.tag / run / store), and the whole payload as `trigger`
#: (a single-expression template keeps its JSON type: the payload arrives as a dict)
RETRAIN_PARAMETERS: dict[str, Any] = {
    "config_path": "{{ event.payload.config_path }}",
    "overrides": [
        "conditions.tag={{ event.payload.tag }}",
        "conditions.run={{ event.payload.iov.first_run }}",
        "conditions.store={{ event.payload.conditions_db }}",
    ],
    "trigger": "{{ event.payload }}",
}


def ensure_work_pool(name: str, description: str) -> bool:
    """Create the process work pool ``name`` if missing; True if it was created."""
    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
            return False
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=name, type="process", description=description))
            return True


def ensure_memory_limit(slots_gb: int = DEFAULT_MEMORY_SLOTS_GB) -> bool:
    """Create the global limit of synthesis memory if missing; True if it was created.

    An existing limit is left as the operator set it.
    """
    if slots_gb < 1:
        raise ValueError(f"the synthesis memory limit needs at least 1 GB of slots, got {slots_gb}")
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(MEMORY_LIMIT_NAME)
            return False
        except ObjectNotFound:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=MEMORY_LIMIT_NAME, limit=slots_gb))
            return True


def ensure_lost_worker_automation(lost_after: timedelta = DEFAULT_LOST_AFTER) -> None:
    """Requeue a `synthesize` run whose heartbeats stopped before it finished.

    Prefect's documented zombie detection (a proactive trigger on missing
    ``prefect.flow-run.heartbeat`` events), with the action "back to
    Scheduled (AwaitingRetry)" instead of "Crashed", so the next free worker
    of the pool runs it again. A result is only published when a run
    finishes, so the killed attempt left nothing that looks done.
    """
    automation = AutomationCore(
        name=LOST_WORKER_AUTOMATION,
        description="A synthesis worker stopped sending heartbeats: run the job again on another worker.",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={
                "prefect.flow-run.heartbeat",
                "prefect.flow-run.Completed",
                "prefect.flow-run.Failed",
                "prefect.flow-run.Cancelled",
                "prefect.flow-run.Crashed",
            },
            match=ResourceSpecification({"prefect.resource.id": "prefect.flow-run.*"}),
            match_related=ResourceSpecification(
                {"prefect.resource.role": "flow", "prefect.resource.name": SYNTHESIZE_FLOW_NAME}
            ),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=lost_after,
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.SCHEDULED,
                name="AwaitingRetry",
                message="Requeued by l1flow: the worker running it stopped sending heartbeats",
                force=True,
            )
        ],
    )
    with get_client(sync_client=True) as client:
        for existing in client.read_automations_by_name(LOST_WORKER_AUTOMATION):
            client.delete_automation(existing.id)
        client.create_automation(automation)


@dataclass(frozen=True)
class SynthesisRegistration:
    created_pools: list[str]
    created_limit: bool
    deployments: list[str]


def _flow_from_source(source: str | Path, entrypoint: str) -> Flow[..., Any]:
    """``Flow.from_source`` called from synchronous code, where it returns the flow itself."""
    flow = Flow.from_source(str(source), entrypoint=entrypoint)
    assert isinstance(flow, Flow), "Flow.from_source ran as a coroutine: call it outside an event loop"
    return flow


def register_synthesis(
    source: str | Path = FLOW_SOURCE,
    memory_slots_gb: int = DEFAULT_MEMORY_SLOTS_GB,
    lost_after: timedelta = DEFAULT_LOST_AFTER,
) -> SynthesisRegistration:
    """Pools, memory limit, lost-worker automation and one `synthesize` deployment per pool.

    ``source`` is where workers find the flow code: this repository's folder
    (shared or identical path on the synthesis hosts) or a git URL.
    """
    created = [name for name, pool in SYNTHESIS_POOLS.items() if ensure_work_pool(name, pool.description)]
    created_limit = ensure_memory_limit(memory_slots_gb)
    ensure_lost_worker_automation(lost_after)
    flow = _flow_from_source(source, SYNTHESIZE_ENTRYPOINT)
    names: list[str] = []
    for pool in SYNTHESIS_POOLS.values():
        flow.deploy(
            name=pool.name,
            work_pool_name=pool.name,
            build=False,
            push=False,
            description=f"Synthesize a firmware project with {', '.join(pool.serves)}",
            tags=["l1flow", "synthesis"],
            print_next_steps=False,
            ignore_warnings=True,  # "process pool without remote storage" is intended: workers share --source
        )
        names.append(pool.deployment_name)
    return SynthesisRegistration(created_pools=created, created_limit=created_limit, deployments=names)


def control_deployments(
    config_path: str,
    conditions_db: str,
    conditions_tag: str,
    watch_cron: str | None = "*/15 * * * *",
    watch_interval_s: float | None = None,
    retrain_entrypoint: str = PIPELINE_ENTRYPOINT,
    source: str | Path = FLOW_SOURCE,
    watch_parameters: dict[str, Any] | None = None,
) -> list[RunnerDeployment]:
    """The watch (scheduled) and retrain (event-triggered) deployments for `serve`.

    ``watch_interval_s`` replaces the cron schedule when given (tests, short loops).
    """
    root = Path(source)
    watch = _flow_from_source(root, WATCH_ENTRYPOINT)
    schedule: dict[str, Any] = {"interval": watch_interval_s} if watch_interval_s else {"cron": watch_cron}
    watch_deployment = watch.to_deployment(
        name="watch",
        parameters={
            "conditions_db": conditions_db,
            "conditions_tag": conditions_tag,
            "config_path": config_path,
            **(watch_parameters or {}),
        },
        description="Compare the latest conditions IOV with what production was trained on",
        concurrency_limit=1,  # two looks at once could both announce the same IOV
        tags=["l1flow", "conditions"],
        **schedule,
    )
    retrain = _flow_from_source(root, retrain_entrypoint)
    missing = set(RETRAIN_PARAMETERS) - set(retrain.parameters.properties)
    if missing:
        raise ValueError(
            f"the retrain flow {retrain_entrypoint} lacks parameter(s) {sorted(missing)}; it must accept "
            f"the new conditions from the event ({', '.join(RETRAIN_PARAMETERS)})"
        )
    retrain_deployment = retrain.to_deployment(
        name="retrain",
        parameters={"config_path": config_path},
        triggers=[
            DeploymentEventTrigger(
                name="l1flow: retrain when the conditions change",
                expect={CONDITIONS_EVENT},
                match={"prefect.resource.id": "l1flow.conditions.*"},
                parameters=copy.deepcopy(RETRAIN_PARAMETERS),
            )
        ],
        description="Retrain, convert and verify for new detector conditions",
        tags=["l1flow", "retrain"],
    )
    deployments = [watch_deployment, retrain_deployment]
    # to_deployment is sync-compatible too: called from synchronous code it returns the deployment
    assert all(isinstance(d, RunnerDeployment) for d in deployments)
    return [d for d in deployments if isinstance(d, RunnerDeployment)]


def serve_control_flows(deployments: list[RunnerDeployment], limit: int | None = None) -> None:
    """Run the control flows in this process until interrupted (blocks)."""
    serve(*deployments, limit=limit, print_starting_message=True)
