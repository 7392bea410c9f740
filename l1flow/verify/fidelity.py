"""Software vs emulation fidelity: how far the quantized firmware is from the float model.

The bit-exact gate asks whether hardware equals emulation; this module asks
how much quantization changed the answers relative to the software model
(QKeras / xgboost in floating point), in the units of the outputs. Whether
the trigger decision stays the same is l1flow.training.metrics.decision_agreement.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

QUANTILES = (0.5, 0.9, 0.99, 0.999, 1.0)


@dataclass(frozen=True)
class FidelityReport:
    """Differences between software and emulated outputs over ``events`` events.

    ``events_differing`` counts events where any output differs by more
    than ``tolerance`` (``fraction_differing`` is that over ``events``); ``abs_diff_quantiles`` maps a quantile (as text, e.g.
    "0.99") to that quantile of |software - emulation| over all output values.
    """

    events: int
    outputs_per_event: int
    tolerance: float
    max_abs_diff: float
    mean_abs_diff: float
    events_differing: int
    fraction_differing: float
    abs_diff_quantiles: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _as_events(values: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise ValueError(f"{name}: expected (events,) or (events, outputs), got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: {int(np.count_nonzero(~np.isfinite(array)))} values are NaN or infinite")
    return array


def compare_outputs(software: np.ndarray, emulation: np.ndarray, tolerance: float = 0.0) -> FidelityReport:
    """Compare software outputs with emulated outputs (real values, same shape)."""
    sw = _as_events(software, "software")
    em = _as_events(emulation, "emulation")
    if sw.shape != em.shape:
        raise ValueError(f"software outputs have shape {sw.shape}, emulation outputs {em.shape}")
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    events = sw.shape[0]
    if events == 0:
        raise ValueError("no events to compare")
    diff = np.abs(sw - em)
    differing = int(np.count_nonzero((diff > tolerance).any(axis=1)))
    quantiles = np.quantile(diff, QUANTILES)
    return FidelityReport(
        events=events,
        outputs_per_event=sw.shape[1],
        tolerance=float(tolerance),
        max_abs_diff=float(diff.max()),
        mean_abs_diff=float(diff.mean()),
        events_differing=differing,
        fraction_differing=differing / events,
        abs_diff_quantiles={f"{q:g}": float(v) for q, v in zip(QUANTILES, quantiles)},
    )
