"""The detector conditions one interval of validity carries.

A payload is validated on construction; a bad field is refused with a message
naming the field, the allowed range and the value given::

    calibration.jet: must be within [0.5, 1.5] (relative pT scale), got 3.0

Use :func:`parse_payload` to turn a mapping (YAML, JSON, CLI) into a payload
with such a message, prefixed by where the data came from.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from l1flow.errors import BadInputError
from l1flow.geometry import N_REGIONS


class PayloadError(BadInputError):
    """A conditions payload has a missing, unknown or out-of-range field."""


def _bounded(lo: float, hi: float, what: str) -> AfterValidator:
    def check(value: float) -> float:
        if not math.isfinite(value) or not lo <= value <= hi:
            raise ValueError(f"must be within [{lo:g}, {hi:g}] ({what}), got {value!r}")
        return value

    return AfterValidator(check)


Scale = Annotated[float, _bounded(0.5, 1.5, "relative pT scale")]
Threshold = Annotated[float, _bounded(0.0, 200.0, "GeV")]
Eta = Annotated[float, _bounded(-5.0, 5.0, "pseudorapidity")]
Phi = Annotated[float, _bounded(-math.pi, math.pi, "rad")]

CALO_TYPES = ("egamma", "jet")
MASKABLE_TYPES = ("egamma", "muon", "jet")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CalibrationScales(_Strict):
    """Multiplicative pT response per object type (1.0 = calibrated)."""

    egamma: Scale = 1.0
    muon: Scale = 1.0
    jet: Scale = 1.0
    met: Scale = 1.0


class PtThresholds(_Strict):
    """Minimum reconstructed pT (GeV) for an object to be kept."""

    egamma: Threshold = 5.0
    muon: Threshold = 3.0
    jet: Threshold = 20.0


class EtaPhiBox(_Strict):
    """A masked eta-phi area: objects of ``types`` inside it are lost."""

    eta_min: Eta
    eta_max: Eta
    phi_min: Phi
    phi_max: Phi
    types: tuple[str, ...] = CALO_TYPES

    @model_validator(mode="after")
    def _ordered(self) -> EtaPhiBox:
        if self.eta_min >= self.eta_max:
            raise ValueError(f"eta_min ({self.eta_min}) must be below eta_max ({self.eta_max})")
        if self.phi_min >= self.phi_max:
            raise ValueError(f"phi_min ({self.phi_min}) must be below phi_max ({self.phi_max})")
        unknown = [t for t in self.types if t not in MASKABLE_TYPES]
        if unknown or not self.types:
            raise ValueError(f"types must be a non-empty subset of {list(MASKABLE_TYPES)}, got {list(self.types)}")
        return self


class ConditionsPayload(_Strict):
    """Detector conditions of one interval of validity.

    - ``calibration``: pT scale per object type, each within [0.5, 1.5].
    - ``mean_pileup``: mean number of primary vertices, within [0, 200].
    - ``masked_boxes``: eta-phi boxes where objects are lost.
    - ``masked_regions``: dead regions of the 18 x 14 grid (flat index
      iphi * 14 + ieta, 0..251): they read 0 and lose their calorimeter objects.
    - ``noise_level``: calorimeter noise, RMS GeV per region, within [0, 20].
    - ``thresholds``: object pT thresholds in GeV, each within [0, 200].
    """

    calibration: CalibrationScales = Field(default_factory=CalibrationScales)
    mean_pileup: Annotated[float, _bounded(0.0, 200.0, "mean number of primary vertices")] = 50.0
    masked_boxes: tuple[EtaPhiBox, ...] = ()
    masked_regions: tuple[int, ...] = ()
    noise_level: Annotated[float, _bounded(0.0, 20.0, "GeV RMS per region")] = 1.0
    thresholds: PtThresholds = Field(default_factory=PtThresholds)

    @model_validator(mode="after")
    def _regions_valid(self) -> ConditionsPayload:
        bad = [r for r in self.masked_regions if not 0 <= r < N_REGIONS]
        if bad:
            raise ValueError(f"masked_regions: indices must be within [0, {N_REGIONS - 1}], got {bad}")
        if len(set(self.masked_regions)) != len(self.masked_regions):
            raise ValueError("masked_regions: indices must not repeat")
        # canonical order, so equal conditions have equal hashes
        object.__setattr__(self, "masked_regions", tuple(sorted(self.masked_regions)))
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-ready dict (tuples as lists)."""
        return json.loads(self.model_dump_json())

    def content_hash(self) -> str:
        """sha256 of the canonical JSON form; equal conditions, equal hash."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def format_validation_error(exc: ValidationError) -> str:
    """One line per bad field: 'field.path: message'."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field; allowed fields are those of ConditionsPayload (see `l1flow conditions show`)"
        lines.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(lines)


def parse_payload(data: Mapping[str, Any] | Any, source: str = "payload") -> ConditionsPayload:
    """Validate a mapping into a payload; a PayloadError names ``source`` and each bad field."""
    if not isinstance(data, Mapping):
        raise PayloadError(f"{source}: a conditions payload must be a mapping of fields, got {type(data).__name__}")
    try:
        return ConditionsPayload.model_validate(dict(data))
    except ValidationError as exc:
        raise PayloadError(f"{source}: {format_validation_error(exc)}") from exc
