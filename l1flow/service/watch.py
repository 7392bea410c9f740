"""Whether the latest conditions call for a retraining: plain logic behind `watch_conditions`.

The baseline is what production was trained on, or the last change already
announced (so one new IOV is announced once, not at every scheduled look).
Without a baseline, the latest IOV itself is new: nothing was trained for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class WatchBaseline:
    """Conditions a model was trained on (or last announced): tag, IOV start, payload."""

    tag: str
    since_run: int
    payload: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"tag": self.tag, "since_run": self.since_run, "payload": self.payload}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WatchBaseline:
        return cls(tag=str(data["tag"]), since_run=int(data["since_run"]), payload=dict(data["payload"]))


@dataclass(frozen=True)
class ConditionsChange:
    """A change worth a retraining: the new IOV, why, and what the retrain run needs."""

    tag: str
    since_run: int
    until_run: int | None
    reason: str
    config_path: str
    payload: dict[str, Any]
    changes: list[str] = field(default_factory=list)
    drifted_features: list[str] = field(default_factory=list)

    def to_payload(self) -> dict[str, Any]:
        """The event payload (the retrain trigger reads tag, iov, config_path, reason)."""
        return {
            "tag": self.tag,
            "iov": {"since_run": self.since_run, "until_run": self.until_run},
            "reason": self.reason,
            "config_path": self.config_path,
            "changes": self.changes,
            "drifted_features": self.drifted_features,
            "conditions": self.payload,
        }

    def baseline(self) -> WatchBaseline:
        return WatchBaseline(tag=self.tag, since_run=self.since_run, payload=self.payload)


@dataclass(frozen=True)
class WatchOutcome:
    change: ConditionsChange | None
    explanation: str


def decide(
    conditions_db: str | Path,
    tag: str,
    config_path: str,
    baseline: WatchBaseline | None,
    reference_sample: str | Path | None = None,
    recent_sample: str | Path | None = None,
) -> WatchOutcome:
    """Read the latest IOV of ``tag`` and decide, with change and drift detection."""
    from l1flow.conditions import ConditionsStore, decide_retrain

    if (reference_sample is None) != (recent_sample is None):
        raise ValueError("drift detection needs both reference_sample and recent_sample, or neither")
    db = Path(conditions_db)
    if not db.is_file():
        raise FileNotFoundError(f"conditions store {db} does not exist; create it with `l1flow conditions`")
    store = ConditionsStore(db)
    latest = store.latest(tag)
    if latest is None:
        return WatchOutcome(None, f"tag {tag!r} has no IOV yet in {db}: nothing to compare")
    current = latest.payload
    current_dict = current.to_dict()
    drifted: list[str] = []
    drift_text = ""
    if reference_sample is not None and recent_sample is not None:
        report = _drift(Path(reference_sample), Path(recent_sample))
        drifted = list(report.drifted_features) if report.drifted else []
        drift_text = report.summary()
    if baseline is None:
        reason = f"no model trained for {tag} yet; latest IOV starts at run {latest.since_run}"
        return WatchOutcome(_change(tag, latest, config_path, reason, [], drifted), reason)
    if baseline.since_run == latest.since_run and baseline.payload == current_dict and not drifted:
        return WatchOutcome(None, f"{tag}: IOV from run {latest.since_run} already trained for or announced")
    from l1flow.conditions.payload import ConditionsPayload

    decision = decide_retrain(ConditionsPayload.model_validate(baseline.payload), current)
    if decision.retrain or drifted:
        reasons = [decision.reason] if decision.retrain else []
        if drifted:
            reasons.append(f"input drift: {drift_text}")
        reason = "; ".join(reasons)
        changes = [str(change) for change in decision.changes]
        return WatchOutcome(_change(tag, latest, config_path, reason, changes, drifted), reason)
    return WatchOutcome(None, f"{tag}: IOV from run {latest.since_run} within tolerances ({decision.reason})")


def _change(
    tag: str, latest: Any, config_path: str, reason: str, changes: list[str], drifted: list[str]
) -> ConditionsChange:
    return ConditionsChange(
        tag=tag,
        since_run=int(latest.since_run),
        until_run=None if latest.until_run is None else int(latest.until_run),
        reason=reason,
        config_path=config_path,
        payload=latest.payload.to_dict(),
        changes=changes,
        drifted_features=drifted,
    )


def _drift(reference: Path, recent: Path) -> Any:
    from l1flow.conditions.drift import detect_drift
    from l1flow.data.layout import FEATURE_NAMES
    from l1flow.data.sample import EventSample

    return detect_drift(EventSample.load(reference).features(), EventSample.load(recent).features(), FEATURE_NAMES)
