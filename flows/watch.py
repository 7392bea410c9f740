"""The `watch_conditions` flow: on a schedule, decide whether the detector changed enough to retrain.

Each run reads the latest IOV of the watched tag from the conditions store and
the conditions production was trained on (the baseline), asks the library's
change detection (and drift detection, when a recent sample is given) whether
to retrain, and if so emits ``l1flow.conditions.changed`` with the reason and
the new IOV. The ``retrain`` deployment's trigger turns that event into a run
of the pipeline. The decision itself is plain library code
(:mod:`l1flow.service.watch`); this flow only reads, decides and announces.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.events import emit_event
from prefect.variables import Variable

from l1flow.conditions.payload import ConditionsPayload
from l1flow.service.watch import AnnouncedIov, ConditionsChange, TrainedConditions, decide, production_conditions

CONDITIONS_EVENT = "l1flow.conditions.changed"


def announced_variable(tag: str) -> str:
    """Prefect variable holding the last IOV announced for ``tag`` (variable names: lowercase, _)."""
    return "l1flow_watch_" + "".join(c if c.isalnum() else "_" for c in tag.lower())


def announce(change: ConditionsChange) -> str:
    """Emit the event the retrain deployment is triggered by; return the event id."""
    event = emit_event(
        event=CONDITIONS_EVENT,
        resource={
            "prefect.resource.id": f"l1flow.conditions.{change.tag}",
            "prefect.resource.name": change.tag,
            "l1flow.conditions.tag": change.tag,
            "l1flow.conditions.first_run": str(change.first_run),
        },
        payload=change.to_payload(),
    )
    if event is None:
        raise RuntimeError(
            f"could not emit {CONDITIONS_EVENT}: Prefect events are not configured (PREFECT_API_URL unset?)"
        )
    return str(event.id)


@flow(name="watch_conditions")
def watch_conditions(
    conditions_db: str,
    conditions_tag: str,
    config_path: str,
    registry_workspace: str | None = None,
    model_name: str | None = None,
    tracking_uri: str | None = None,
    reference_sample: str | None = None,
    recent_sample: str | None = None,
) -> dict[str, Any]:
    """Compare the latest IOV of ``conditions_tag`` with production's; announce a change.

    ``registry_workspace`` / ``model_name`` (/ ``tracking_uri``): where the
    production model's conditions are recorded; without them, the last
    announced IOV stands for what was trained. ``reference_sample`` /
    ``recent_sample``: HDF5 event samples (the training sample and a recent
    one) for drift detection; both or neither.
    """
    logger = get_run_logger()
    stored = Variable.get(announced_variable(conditions_tag), default=None)
    announced = AnnouncedIov.from_dict(stored) if stored else None
    trained = None
    if registry_workspace and model_name:
        trained = production_conditions(conditions_db, registry_workspace, model_name, tracking_uri)
    elif announced is not None:
        trained_payload = ConditionsPayload.model_validate(announced.payload)
        trained = TrainedConditions(trained_payload, f"the IOV announced from run {announced.first_run}")
    outcome = decide(
        conditions_db=conditions_db,
        tag=conditions_tag,
        config_path=config_path,
        trained=trained,
        announced=announced,
        reference_sample=reference_sample,
        recent_sample=recent_sample,
    )
    logger.info("%s", outcome.explanation)
    result: dict[str, Any] = {"retrain": outcome.change is not None, "explanation": outcome.explanation}
    if outcome.change is not None:
        result["event_id"] = announce(outcome.change)
        result["change"] = outcome.change.to_payload()
        # remember what was announced, so the next look does not announce it again
        Variable.set(announced_variable(conditions_tag), outcome.change.announced().to_dict(), overwrite=True)
        logger.info("emitted %s for %s from run %d", CONDITIONS_EVENT, outcome.change.tag, outcome.change.first_run)
    return result
