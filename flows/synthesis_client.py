"""Submit synthesis jobs to the pool, follow them, fetch their results (the laptop side).

``submit`` never starts the tool when the store already holds the job's
result: it returns that result (``cached=True``) without creating a flow run.
Otherwise it stages the project in the store and creates a run of the pool's
``synthesize`` deployment with the job hash (and store) as idempotency key, so two
submissions of the same job while it is queued or running share one run; after
a failed attempt the next one is keyed by the failed run, so a resubmission
starts a new attempt (again shared by whoever resubmits).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.exceptions import ObjectNotFound

from l1flow.artifacts import ArtifactStore
from l1flow.errors import BadInputError
from l1flow.service.synthesis import SynthesisOutcome, pool_for_tool, stage_project, stored_outcome
from l1flow.synthesis.job import SynthesisJob


@dataclass(frozen=True)
class Submission:
    """What `synth submit` did: the job hash, and either a cached result or a flow run."""

    job_hash: str
    cached: bool
    flow_run_id: str | None = None
    deployment: str | None = None
    outcome: SynthesisOutcome | None = None


@dataclass(frozen=True)
class RunStatus:
    flow_run_id: str
    job_hash: str
    state: str
    state_type: str
    message: str | None
    run_count: int

    @property
    def final(self) -> bool:
        return self.state_type in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


def submit(job: SynthesisJob, store: ArtifactStore) -> Submission:
    """Return the stored result of ``job``, or queue a run of it on its pool."""
    job_hash = job.job_hash()
    cached = stored_outcome(store, job_hash)
    if cached is not None:
        return Submission(job_hash=job_hash, cached=True, outcome=cached)
    pool = pool_for_tool(job.tool)
    project_digest = stage_project(store, job)
    # the project folder is a path on this machine; the worker gets the files by digest
    job_data = {key: value for key, value in job.to_dict().items() if key != "project_dir"}
    parameters: dict[str, Any] = {
        "job": job_data,
        "project_digest": project_digest,
        "store_url": store.root_url,
        "job_hash": job_hash,
    }
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(pool.deployment_name)
        key = f"{job_hash}:{store.root_url}"
        while True:
            run = client.create_flow_run_from_deployment(
                deployment.id, parameters=parameters, idempotency_key=key, tags=["l1flow", "synthesis"]
            )
            if run.state is None or not run.state.is_final():
                break
            if run.state.is_completed():
                finished = stored_outcome(store, job_hash)
                if finished is not None:  # it completed while we were staging
                    return Submission(job_hash=job_hash, cached=True, outcome=finished)
            # that attempt failed (or its result is gone from the store): the next one is keyed
            # by it, so everyone resubmitting shares one new attempt
            key = f"{job_hash}:after-{run.id}"
    return Submission(job_hash=job_hash, cached=False, flow_run_id=str(run.id), deployment=pool.deployment_name)


def _status_of(run: FlowRun) -> RunStatus:
    state = run.state
    return RunStatus(
        flow_run_id=str(run.id),
        job_hash=str(run.parameters.get("job_hash", "")),
        state=(state.name or "Unknown") if state else "Unknown",
        state_type=state.type.value if state else "UNKNOWN",
        message=state.message if state else None,
        run_count=run.run_count,
    )


def status(flow_run_id: str) -> RunStatus:
    """State of a submitted synthesis run."""
    try:
        run_id = UUID(flow_run_id)
    except ValueError as exc:
        raise BadInputError(f"flow run id {flow_run_id!r} is not a UUID; `l1flow synth submit` prints it") from exc
    with get_client(sync_client=True) as client:
        try:
            return _status_of(client.read_flow_run(run_id))
        except ObjectNotFound as exc:
            raise BadInputError(
                f"no flow run {flow_run_id} on the Prefect server at {client.api_url}; "
                "check the id `l1flow synth submit` printed and PREFECT_API_URL"
            ) from exc


def wait(flow_run_id: str, timeout_s: float, poll_s: float = 2.0) -> RunStatus:
    """Poll a run until it is final or ``timeout_s`` has passed; return its last status."""
    deadline = time.monotonic() + timeout_s
    current = status(flow_run_id)
    while not current.final and time.monotonic() < deadline:
        time.sleep(poll_s)
        current = status(flow_run_id)
    return current
