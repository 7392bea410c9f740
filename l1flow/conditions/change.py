"""Decide whether a model must be retrained because the conditions changed.

Every field of two payloads is compared against a tolerance; the decision's
reason names each field that moved, by how much, and the tolerance::

    retrain: calibration.jet changed by +5.0% (1 -> 1.05, tolerance 2.0%);
    mean_pileup changed by +10 (50 -> 60, tolerance 5)
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from l1flow.conditions.payload import ConditionsPayload


class ChangeTolerances(BaseModel):
    """How far each condition may move before a retrain is due."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    calibration_relative: float = Field(0.02, ge=0, le=1, description="relative change of any pT scale")
    mean_pileup: float = Field(5.0, ge=0, description="absolute change of the mean number of vertices")
    noise_level: float = Field(0.5, ge=0, description="absolute change of the noise RMS, GeV")
    threshold_gev: float = Field(1.0, ge=0, description="absolute change of any pT threshold, GeV")
    masked_regions: int = Field(0, ge=0, description="dead grid regions added or removed")
    masked_boxes: int = Field(0, ge=0, description="masked eta-phi boxes added or removed")


@dataclass(frozen=True)
class FieldChange:
    """One field that differs between two payloads."""

    field: str
    old: object
    new: object
    amount: float  # signed change in the field's unit (relative for scales; count for masks)
    tolerance: float
    unit: str  # "relative", "GeV", "vertices", "regions", "boxes"
    exceeds: bool

    def describe(self) -> str:
        if self.unit == "relative":
            size = f"{self.amount:+.1%}"
            tol = f"{self.tolerance:.1%}"
        elif self.unit in ("regions", "boxes"):
            size = f"{int(self.amount)} {self.unit} added or removed"
            return f"{self.field}: {size} (tolerance {int(self.tolerance)})"
        else:
            size = f"{self.amount:+g}" + (f" {self.unit}" if self.unit == "GeV" else "")
            tol = f"{self.tolerance:g}" + (f" {self.unit}" if self.unit == "GeV" else "")
        return f"{self.field} changed by {size} ({self.old:g} -> {self.new:g}, tolerance {tol})"


@dataclass(frozen=True)
class ChangeDecision:
    retrain: bool
    reason: str
    changes: list[FieldChange]

    @property
    def exceeding(self) -> list[FieldChange]:
        return [c for c in self.changes if c.exceeds]


def payload_changes(old: ConditionsPayload, new: ConditionsPayload, tolerances: ChangeTolerances) -> list[FieldChange]:
    """Every field that differs between ``old`` and ``new``, with its tolerance."""
    changes: list[FieldChange] = []
    for kind in ("egamma", "muon", "jet", "met"):
        a, b = getattr(old.calibration, kind), getattr(new.calibration, kind)
        if a != b:
            rel = b / a - 1.0
            changes.append(FieldChange(f"calibration.{kind}", a, b, rel, tolerances.calibration_relative,
                                       "relative", abs(rel) > tolerances.calibration_relative))
    if old.mean_pileup != new.mean_pileup:
        d = new.mean_pileup - old.mean_pileup
        changes.append(FieldChange("mean_pileup", old.mean_pileup, new.mean_pileup, d, tolerances.mean_pileup,
                                   "vertices", abs(d) > tolerances.mean_pileup))
    if old.noise_level != new.noise_level:
        d = new.noise_level - old.noise_level
        changes.append(FieldChange("noise_level", old.noise_level, new.noise_level, d, tolerances.noise_level,
                                   "GeV", abs(d) > tolerances.noise_level))
    for kind in ("egamma", "muon", "jet"):
        a, b = getattr(old.thresholds, kind), getattr(new.thresholds, kind)
        if a != b:
            changes.append(FieldChange(f"thresholds.{kind}", a, b, b - a, tolerances.threshold_gev, "GeV",
                                       abs(b - a) > tolerances.threshold_gev))
    regions = set(old.masked_regions) ^ set(new.masked_regions)
    if regions:
        changes.append(FieldChange("masked_regions", list(old.masked_regions), list(new.masked_regions),
                                   float(len(regions)), float(tolerances.masked_regions), "regions",
                                   len(regions) > tolerances.masked_regions))
    boxes = set(old.masked_boxes) ^ set(new.masked_boxes)
    if boxes:
        changes.append(FieldChange("masked_boxes", len(old.masked_boxes), len(new.masked_boxes), float(len(boxes)),
                                   float(tolerances.masked_boxes), "boxes", len(boxes) > tolerances.masked_boxes))
    return changes


def decide_retrain(
    trained: ConditionsPayload, current: ConditionsPayload, tolerances: ChangeTolerances | None = None
) -> ChangeDecision:
    """Retrain when any field moved beyond its tolerance; the reason names fields and amounts."""
    tolerances = tolerances or ChangeTolerances()
    changes = payload_changes(trained, current, tolerances)
    exceeding = [c for c in changes if c.exceeds]
    if exceeding:
        reason = "retrain: " + "; ".join(c.describe() for c in exceeding)
    elif changes:
        reason = "keep: changes within tolerance: " + "; ".join(c.describe() for c in changes)
    else:
        reason = "keep: conditions unchanged"
    return ChangeDecision(bool(exceeding), reason, changes)
