"""The `synthesize` flow, run by workers on the synthesis machines.

A submitter (``l1flow synth submit``, or the pipeline) puts the firmware
project in the shared artifact store and creates a run of the ``synthesize``
deployment of the pool that has the job's tool. The worker that picks it up:

1. fetches the project by its digest (checked on unpacking);
2. returns the stored result at once if this job hash was synthesized before;
3. holds slots of the global ``fpga-synthesis-memory`` limit, one per GB the
   job declares, strictly (a missing limit is an error, never skipped);
4. runs the tool (the runner enforces the job's time-out), retrying a
   transient failure with exponential back-off;
5. publishes the result folder to the store and only then points the ref
   ``synthesis/<job hash>`` at it, so a worker killed mid-job leaves no result
   that looks done.

The flow computes nothing itself: the runners live in :mod:`l1flow.synthesis`.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import State, TaskRun
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectNotFound
from prefect.tasks import Task, exponential_backoff

from l1flow.artifacts import ArtifactStore
from l1flow.service.synthesis import (
    MEMORY_LIMIT_NAME,
    SYNTHESIS_FLOW_TIMEOUT_S,
    MissingMemoryLimitError,
    SynthesisOutcome,
    publish_result,
    result_ref,
    stored_outcome,
)
from l1flow.synthesis import runner_for
from l1flow.synthesis.job import SynthesisError, SynthesisJob
from l1flow.toolchain import ToolMissingError


def _reserve_check(slots: int) -> None:
    """Fail at once, saying why, where waiting for the memory limit could never succeed."""
    with get_client(sync_client=True) as client:
        try:
            limit = client.read_global_concurrency_limit_by_name(MEMORY_LIMIT_NAME)
        except ObjectNotFound:
            raise MissingMemoryLimitError() from None
    if slots > limit.limit:
        raise SynthesisError(
            f"the job declares {slots} GB (memory_gb) but the limit '{MEMORY_LIMIT_NAME}' has only "
            f"{limit.limit} slots in all: it would wait for ever. Lower memory_gb or raise the limit "
            f"(`prefect gcl update {MEMORY_LIMIT_NAME} --limit {slots}`)"
        )


def _is_transient(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry only failures another attempt can fix (I/O, network), not a bad design or a missing tool."""
    try:
        state.result()
    except (SynthesisError, ToolMissingError, MissingMemoryLimitError, ValueError):
        return False
    except Exception:
        return True
    return False


@task(
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=30),
    retry_jitter_factor=0.5,
    retry_condition_fn=_is_transient,
    cache_policy=NO_CACHE,
)
def run_synthesis(job_data: dict[str, Any], project_digest: str, store_url: str) -> SynthesisOutcome:
    logger = get_run_logger()
    store = ArtifactStore(store_url)
    with tempfile.TemporaryDirectory(prefix="l1flow-synth-") as tmp:
        project_dir = store.get_tree(project_digest, Path(tmp) / "project")
        job = SynthesisJob.from_dict({**job_data, "project_dir": str(project_dir)}, where="flow parameter 'job'")
        cached = stored_outcome(store, job.job_hash())
        if cached is not None:
            logger.info("job %s was synthesized before; returning the stored result", cached.job_hash)
            return cached
        runner = runner_for(job.tool)
        runner.check(job)
        slots = max(1, math.ceil(job.memory_gb))
        _reserve_check(slots)
        logger.info("waiting for %d slot(s) of concurrency limit %r", slots, MEMORY_LIMIT_NAME)
        try:
            with concurrency(MEMORY_LIMIT_NAME, occupy=slots, strict=True):
                logger.info("running %s on %s (job %s)", job.tool, job.top, job.job_hash())
                # the runner leaves its finished result in work/<job hash>/ (report.json, logs, project)
                runner.run(job, Path(tmp) / "work")
        except ConcurrencySlotAcquisitionError as exc:
            if exc.__cause__ is None:  # strict=True: the limit was deleted since the check above
                raise MissingMemoryLimitError() from exc
            raise
        outcome = publish_result(store, job, Path(tmp) / "work" / job.job_hash())
        logger.info("published %s as %s", result_ref(outcome.job_hash), outcome.result_digest)
        return outcome


# No flow-level retries: the task retries what a new attempt can fix, and a run
# that lost its worker is requeued by the lost-worker automation (flows/deployments.py).
@flow(name="synthesize", timeout_seconds=SYNTHESIS_FLOW_TIMEOUT_S, persist_result=False)
def synthesize(job: dict[str, Any], project_digest: str, store_url: str, job_hash: str = "") -> dict[str, Any]:
    """Synthesize one job whose project is ``project_digest`` in the store at ``store_url``.

    ``job_hash`` is what the submitter computed; a different hash on the
    worker means the project changed in transit, and the run fails.
    """
    outcome = run_synthesis(job, project_digest, store_url)
    if job_hash and outcome.job_hash != job_hash:
        raise SynthesisError(
            f"the worker computed job hash {outcome.job_hash} but the submitter sent {job_hash}: "
            "the project or the job settings differ between the two machines (l1flow versions?)"
        )
    return outcome.to_dict()
