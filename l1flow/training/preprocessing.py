"""Model inputs from hardware integers: a power-of-two shift per feature type.

The firmware receives the detector's integers. A model input is that integer
divided by ``2**shift`` of its feature type (pT, eta, phi, region ET), so the
input word of the firmware's ``ap_fixed<bits, integer + 1>`` input port is the
hardware integer itself, or the integer with its lowest bits dropped when the
type has fewer fractional bits than the shift (like AXOL1TL's ``hwPt / 2``):

    word  = floor(hw / 2**drop)            drop  = max(0, shift - fractional)
    value = word * 2**-(shift - drop)       (exactly representable)

Values beyond the range of the input type saturate, as the firmware input
would. The shifts are chosen once, from the training sample: each feature type
enters at about unit scale, and either its largest training value fits in
``integer`` bits or larger values saturate (see :meth:`PowerOfTwoScaling.fit`);
they are saved with the model and
reused unchanged for every later sample (a new era's data is read with the
production model's scaling, never re-fitted silently).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from l1flow.training.specs import QuantizerSpec

OBJECT_GROUPS: tuple[str, ...] = ("pt", "eta", "phi")


def object_feature_groups(n_features: int) -> tuple[str, ...]:
    """Group of every column of the (N, 19 * 3) object features: objects in order, (pT, eta, phi) each."""
    if n_features % 3:
        raise ValueError(f"object features must be (pT, eta, phi) triples; got {n_features} columns")
    return tuple(OBJECT_GROUPS[i % 3] for i in range(n_features))


@dataclass(frozen=True)
class PowerOfTwoScaling:
    """Hardware integers -> exact firmware input values, one shift per feature group."""

    groups: tuple[str, ...]
    shifts: dict[str, int]
    quantizer: QuantizerSpec

    @classmethod
    def fit(cls, hardware: np.ndarray, groups: tuple[str, ...], quantizer: QuantizerSpec, *,
            saturate: bool = False) -> PowerOfTwoScaling:
        """One shift per group, from the training sample's hardware integers.

        The shift is the power of two nearest the RMS of the group's non-zero
        values, so every feature type enters the model (and the reconstruction
        MSE) at about unit scale. Unless ``saturate``, it is raised where needed
        so the largest |value| fits in ``quantizer.integer`` bits; with
        ``saturate``, values beyond the input type's range saturate, as a
        saturating hardware word does, which keeps a few very hard jets from
        dominating a reconstruction error.
        """
        hardware = _as_integers(hardware, len(groups))
        shifts: dict[str, int] = {}
        for group in dict.fromkeys(groups):
            values = hardware[:, [i for i, g in enumerate(groups) if g == group]]
            nonzero = values[values != 0].astype(np.float64)
            rms = float(np.sqrt(np.mean(nonzero**2))) if nonzero.size else 1.0
            to_unit = max(0, int(np.rint(np.log2(max(rms, 1.0)))))
            to_fit = 0 if saturate else int(np.abs(values).max(initial=0)).bit_length() - quantizer.integer
            shifts[group] = max(to_unit, to_fit)
        return cls(groups=tuple(groups), shifts=shifts, quantizer=quantizer)

    def column_shifts(self) -> np.ndarray:
        return np.array([self.shifts[g] for g in self.groups], dtype=np.int64)

    def words(self, hardware: np.ndarray) -> np.ndarray:
        """Raw input words (int64) of ``ap_fixed<bits, integer + 1>``, saturated to its range."""
        hardware = _as_integers(hardware, len(self.groups))
        q = self.quantizer
        drop = np.maximum(self.column_shifts() - q.fractional, 0)
        keep = self.column_shifts() - drop
        # Arithmetic right shift floors, as dropping wires does in firmware.
        words = (hardware >> drop) << (q.fractional - keep)
        return np.clip(words, -(1 << (q.bits - 1)), (1 << (q.bits - 1)) - 1)

    def apply(self, hardware: np.ndarray) -> np.ndarray:
        """Exact firmware input values (float64) of ``hardware`` integers."""
        return self.words(hardware).astype(np.float64) * 2.0 ** -self.quantizer.fractional

    def to_dict(self) -> dict[str, Any]:
        return {"groups": list(self.groups), "shifts": dict(self.shifts), "quantizer": self.quantizer.model_dump()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PowerOfTwoScaling:
        return cls(
            groups=tuple(data["groups"]),
            shifts={str(k): int(v) for k, v in data["shifts"].items()},
            quantizer=QuantizerSpec.model_validate(data["quantizer"]),
        )


def _as_integers(hardware: np.ndarray, n_columns: int) -> np.ndarray:
    array = np.asarray(hardware)
    if array.ndim != 2 or array.shape[1] != n_columns:
        raise ValueError(f"expected hardware integers of shape (N, {n_columns}); got {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"hardware features must be integers in hardware units; got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)
