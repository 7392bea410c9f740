"""Trigger metrics: ROC AUC per signal, efficiency at a fixed rate, decision agreement.

An event fires the trigger when its score is strictly above the threshold.
The rate of a threshold is the background false-positive rate times the
effective bunch-crossing rate (28.61 MHz for CMS), so a working point in kHz
fixes the allowed fraction of background events:
``fpr = rate_khz / (crossing_rate_mhz * 1000)``.

Everything returned is a plain dict / list of floats, ready for summary.json.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from l1flow.data.sample import EventSample
from l1flow.errors import BadInputError

DEFAULT_CROSSING_RATE_MHZ = 28.61


class MetricsError(BadInputError):
    """Scores or labels cannot give the requested metric."""


def _scores(values: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).ravel()
    if array.size == 0:
        raise MetricsError(f"{what}: no scores")
    if not np.all(np.isfinite(array)):
        raise MetricsError(f"{what}: {int((~np.isfinite(array)).sum())} score(s) are NaN or infinite")
    return array


def roc_auc(background_scores: np.ndarray, signal_scores: np.ndarray) -> float:
    """Area under the ROC curve: P(signal score > background score), ties counted half."""
    background = _scores(background_scores, "background")
    signal = _scores(signal_scores, "signal")
    both = np.concatenate([background, signal])
    order = np.argsort(both, kind="mergesort")
    ranks = np.empty(both.size, dtype=np.float64)
    sorted_values = both[order]
    # Average ranks over ties (1-based).
    _, first, counts = np.unique(sorted_values, return_index=True, return_counts=True)
    average = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(average, counts)
    signal_rank_sum = ranks[background.size:].sum()
    u = signal_rank_sum - signal.size * (signal.size + 1) / 2.0
    return float(u / (signal.size * background.size))


def allowed_fraction(rate_khz: float, crossing_rate_mhz: float = DEFAULT_CROSSING_RATE_MHZ) -> float:
    if rate_khz <= 0 or crossing_rate_mhz <= 0:
        raise MetricsError(f"rates must be positive; got rate {rate_khz} kHz, crossing rate {crossing_rate_mhz} MHz")
    fraction = rate_khz / (crossing_rate_mhz * 1000.0)
    if fraction > 1.0:
        raise MetricsError(f"a rate of {rate_khz} kHz exceeds the crossing rate of {crossing_rate_mhz} MHz")
    return fraction


def threshold_at_rate(background_scores: np.ndarray, rate_khz: float,
                      crossing_rate_mhz: float = DEFAULT_CROSSING_RATE_MHZ) -> float:
    """Lowest threshold whose rate (fraction of background strictly above it x crossing rate) is <= rate_khz.

    With N background events at most floor(fpr * N) may pass; the threshold is
    the score of the next one down. Fewer pass when scores tie at it.
    """
    background = np.sort(_scores(background_scores, "background"))
    allowed = int(np.floor(allowed_fraction(rate_khz, crossing_rate_mhz) * background.size))
    if allowed >= background.size:
        return float(np.nextafter(background[0], -np.inf))
    return float(background[background.size - 1 - allowed])


def rate_khz_of(background_scores: np.ndarray, threshold: float,
                crossing_rate_mhz: float = DEFAULT_CROSSING_RATE_MHZ) -> float:
    background = _scores(background_scores, "background")
    return float(np.mean(background > threshold) * crossing_rate_mhz * 1000.0)


def efficiency(signal_scores: np.ndarray, threshold: float) -> float:
    return float(np.mean(_scores(signal_scores, "signal") > threshold))


def efficiency_vs_rate(background_scores: np.ndarray, signal_scores: np.ndarray, rates_khz: np.ndarray | list[float],
                       crossing_rate_mhz: float = DEFAULT_CROSSING_RATE_MHZ) -> dict[str, list[float]]:
    """Signal efficiency at each rate in ``rates_khz``: {"rate_khz": [...], "efficiency": [...]}."""
    rates = [float(r) for r in rates_khz]
    effs = [efficiency(signal_scores, threshold_at_rate(background_scores, r, crossing_rate_mhz)) for r in rates]
    return {"rate_khz": rates, "efficiency": effs}


def default_rate_grid(crossing_rate_mhz: float = DEFAULT_CROSSING_RATE_MHZ, n_background: int = 100_000) -> list[float]:
    """Log-spaced rates from about one background event per sample to 10% of the crossing rate."""
    lowest = crossing_rate_mhz * 1000.0 / max(n_background, 1)
    return [float(r) for r in np.geomspace(lowest, crossing_rate_mhz * 100.0, 40)]


def trigger_metrics(scores: np.ndarray, sample: EventSample, *, working_point_khz: float,
                    crossing_rate_mhz: float = DEFAULT_CROSSING_RATE_MHZ) -> dict[str, Any]:
    """AUC and efficiency at the working point per signal class of ``sample``.

    ``{"auc": {sig: x}, "threshold": t, "efficiency_at_rate": {sig: e},
    "working_point_khz": k, "crossing_rate_mhz": c, "rate_khz": achieved}``
    """
    scores = _scores(scores, "scores")
    if scores.size != len(sample):
        raise MetricsError(f"{scores.size} scores for a sample of {len(sample)} events")
    background = scores[~sample.is_signal()]
    if background.size == 0:
        raise MetricsError("the sample has no background events; the rate cannot be measured")
    threshold = threshold_at_rate(background, working_point_khz, crossing_rate_mhz)
    auc: dict[str, float] = {}
    eff: dict[str, float] = {}
    for name in sample.classes[1:]:
        signal = scores[sample.class_mask(name)]
        if signal.size == 0:
            continue
        auc[name] = roc_auc(background, signal)
        eff[name] = efficiency(signal, threshold)
    return {
        "auc": auc,
        "threshold": threshold,
        "efficiency_at_rate": eff,
        "working_point_khz": float(working_point_khz),
        "crossing_rate_mhz": float(crossing_rate_mhz),
        "rate_khz": rate_khz_of(background, threshold, crossing_rate_mhz),
        "background_events": int(background.size),
    }


def compare_with_previous(current: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    """Side by side per signal: {"auc": {sig: {"current", "previous", "change"}}, "efficiency_at_rate": {...}}.

    ``previous`` (the production model's :func:`trigger_metrics` on the same
    events) may be None, when there is no production model yet; then only the
    current figures appear, with previous = None.
    """
    table: dict[str, Any] = {}
    for metric in ("auc", "efficiency_at_rate"):
        rows: dict[str, dict[str, float | None]] = {}
        for signal, value in current[metric].items():
            old = None if previous is None else previous.get(metric, {}).get(signal)
            rows[signal] = {
                "current": float(value),
                "previous": None if old is None else float(old),
                "change": None if old is None else float(value) - float(old),
            }
        table[metric] = rows
    table["threshold"] = {"current": current["threshold"], "previous": None if previous is None else previous["threshold"]}
    table["working_point_khz"] = current["working_point_khz"]
    return table


def decision_agreement(software_scores: np.ndarray, firmware_scores: np.ndarray, threshold: float) -> float:
    """Fraction of events whose trigger decision (score > threshold) is the same in software and firmware."""
    software = _scores(software_scores, "software")
    firmware = _scores(firmware_scores, "firmware")
    if software.size != firmware.size:
        raise MetricsError(f"{software.size} software scores but {firmware.size} firmware scores")
    return float(np.mean((software > threshold) == (firmware > threshold)))
