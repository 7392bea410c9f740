"""Whether the latest conditions call for a retraining: plain logic behind `watch_conditions`.

Three inputs:

- the latest IOV of the watched tag in the conditions store;
- what production was trained on: the registry's production version records
  the conditions tag and the first run of its IOV (lineage tags), read back
  from the conditions store;
- the last change already announced (kept by the flow), so one new IOV is
  announced once, not at every scheduled look while its retraining runs.

Without a production model the latest IOV is itself new: nothing was trained
for it. Drift between a reference and a recent sample, when both are given,
is a reason to retrain on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from l1flow.conditions.payload import ConditionsPayload


@dataclass(frozen=True)
class AnnouncedIov:
    """The IOV last announced for a tag, with its payload."""

    tag: str
    first_run: int
    payload: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"tag": self.tag, "first_run": self.first_run, "payload": self.payload}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnnouncedIov:
        return cls(tag=str(data["tag"]), first_run=int(data["first_run"]), payload=dict(data["payload"]))


@dataclass(frozen=True)
class TrainedConditions:
    """The conditions a model was trained on, and where that was read."""

    payload: ConditionsPayload
    source: str


@dataclass(frozen=True)
class ConditionsChange:
    """A change worth a retraining: the new IOV, why, and what the retrain run needs."""

    tag: str
    first_run: int
    last_run: int | None
    reason: str
    config_path: str
    conditions_db: str
    payload: dict[str, Any]
    changes: list[str] = field(default_factory=list)
    drifted_features: list[str] = field(default_factory=list)

    def to_payload(self) -> dict[str, Any]:
        """The event payload (the retrain trigger reads config_path, tag, iov, conditions_db)."""
        return {
            "tag": self.tag,
            "iov": {"first_run": self.first_run, "last_run": self.last_run},
            "reason": self.reason,
            "config_path": self.config_path,
            "conditions_db": self.conditions_db,
            "changes": self.changes,
            "drifted_features": self.drifted_features,
            "conditions": self.payload,
        }

    def announced(self) -> AnnouncedIov:
        return AnnouncedIov(tag=self.tag, first_run=self.first_run, payload=self.payload)


@dataclass(frozen=True)
class WatchOutcome:
    change: ConditionsChange | None
    explanation: str


def production_conditions(
    conditions_db: str | Path, registry_workspace: str | Path, model_name: str, tracking_uri: str | None = None
) -> TrainedConditions | None:
    """Conditions of the registry's production version of ``model_name``; None if there is none."""
    from l1flow.conditions.store import ConditionsStore
    from l1flow.registry.store import PRODUCTION, ModelRegistry, RegistryError

    registry = ModelRegistry(Path(registry_workspace), tracking_uri=tracking_uri)
    try:
        lineage = registry.show(model_name, PRODUCTION).lineage
    except RegistryError:
        return None
    tag = lineage.get("conditions.tag", "")
    first_run = lineage.get("conditions.iov.first_run", "")
    if not tag or not first_run.isdigit():
        raise ValueError(
            f"production version of {model_name} records no conditions (tag {tag!r}, first run {first_run!r}); "
            "register it from a pipeline run, or run the watch without the registry"
        )
    with ConditionsStore(Path(conditions_db)) as store:
        payload = store.get(tag, int(first_run))
    return TrainedConditions(payload, f"production {model_name} ({tag} from run {first_run})")


def decide(
    conditions_db: str | Path,
    tag: str,
    config_path: str,
    trained: TrainedConditions | None,
    announced: AnnouncedIov | None,
    reference_sample: str | Path | None = None,
    recent_sample: str | Path | None = None,
) -> WatchOutcome:
    """Read the latest IOV of ``tag`` and decide, with change and drift detection."""
    from l1flow.conditions.change import ChangeTolerances, decide_retrain
    from l1flow.conditions.store import ConditionsStore

    if (reference_sample is None) != (recent_sample is None):
        raise ValueError("drift detection needs both reference_sample and recent_sample, or neither")
    db = Path(conditions_db)
    if not db.is_file():
        raise FileNotFoundError(f"conditions store {db} does not exist; create it with `l1flow conditions add`")
    with ConditionsStore(db) as store:
        if tag not in store.tags():
            return WatchOutcome(None, f"tag {tag!r} has no IOV yet in {db}: nothing to compare")
        latest = store.latest(tag)
    current = latest.payload
    if announced is not None and announced.first_run == latest.first_run and announced.payload == current.to_dict():
        return WatchOutcome(None, f"{tag}: the IOV from run {latest.first_run} was already announced")
    drifted: list[str] = []
    reasons: list[str] = []
    changes: list[str] = []
    if reference_sample is not None and recent_sample is not None:
        report = _drift(Path(reference_sample), Path(recent_sample))
        if report.drifted:
            drifted = list(report.drifted_features)
            reasons.append(f"input drift: {report.summary()}")
    if trained is None:
        reasons.insert(0, f"no model trained for {tag} yet; the latest IOV starts at run {latest.first_run}")
        verdict = "nothing trained"
    else:
        decision = decide_retrain(trained.payload, current, ChangeTolerances())
        verdict = decision.reason
        if decision.retrain:
            reasons.insert(0, f"{decision.reason} (against {trained.source})")
            changes = [change.describe() for change in decision.exceeding]
    if not reasons:
        return WatchOutcome(None, f"{tag}: the IOV from run {latest.first_run} is within tolerances ({verdict})")
    change = ConditionsChange(
        tag=tag,
        first_run=int(latest.first_run),
        last_run=None if latest.last_run is None else int(latest.last_run),
        reason="; ".join(reasons),
        config_path=config_path,
        conditions_db=str(db.resolve()),
        payload=current.to_dict(),
        changes=changes,
        drifted_features=drifted,
    )
    return WatchOutcome(change, change.reason)


def _drift(reference: Path, recent: Path) -> Any:
    from l1flow.conditions.drift import detect_drift
    from l1flow.data.layout import FEATURE_NAMES
    from l1flow.data.sample import EventSample

    return detect_drift(EventSample.load(reference).features(), EventSample.load(recent).features(), FEATURE_NAMES)
