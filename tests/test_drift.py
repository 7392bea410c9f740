"""Drift detection: PSI and exact KS per feature, thresholds, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ks_2samp

from l1flow.conditions.drift import DriftInputError, DriftThresholds, detect_drift

NAMES = ["gauss", "padded", "integer", "same"]


def _samples(shift: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)

    def one(n: int, shift: float) -> np.ndarray:
        padded = rng.exponential(30, n) * (rng.random(n) < 0.3 + shift)  # mostly zeros, like padded objects
        return np.column_stack([
            rng.normal(shift, 1.0, n), padded, rng.integers(0, 5 + int(shift * 10), n), rng.normal(0, 1, n)
        ]).astype(np.float32)

    return one(40_000, 0.0), one(35_000, shift)


def _psi(ref: np.ndarray, rec: np.ndarray, bins: int = 10) -> float:
    """Textbook PSI: bins split at the reference's inner deciles (slow reference implementation)."""
    inner = np.quantile(ref, np.arange(1, bins) / bins, method="inverted_cdf")
    p = np.bincount(np.searchsorted(inner, ref, side="left"), minlength=len(inner) + 1) / len(ref)
    q = np.bincount(np.searchsorted(inner, rec, side="left"), minlength=len(inner) + 1) / len(rec)
    keep = (p > 0) | (q > 0)
    p, q = np.maximum(p[keep], 1e-4), np.maximum(q[keep], 1e-4)
    return float(np.sum((q - p) * np.log(q / p)))


def test_ks_is_exact_against_scipy_and_psi_matches_the_textbook_formula() -> None:
    ref, rec = _samples(shift=0.1)
    report = detect_drift(ref, rec, NAMES)
    for j, feature in enumerate(report.features):
        assert feature.ks == pytest.approx(ks_2samp(ref[:, j], rec[:, j]).statistic, abs=1e-9), feature.name
        assert feature.psi == pytest.approx(_psi(ref[:, j], rec[:, j]), rel=1e-6, abs=1e-9), feature.name
    assert report.n_reference == 40_000 and report.n_recent == 35_000


def test_shifted_features_drift_and_unchanged_ones_do_not() -> None:
    ref, rec = _samples(shift=0.1)
    report = detect_drift(ref, rec, NAMES, DriftThresholds(psi=0.1, ks=0.03))
    assert report.drifted
    assert report.drifted_features == ["gauss", "padded", "integer"]
    same = next(f for f in report.features if f.name == "same")
    assert same.ks < 0.015 and same.psi < 0.005 and not same.drifted
    assert "drift in 3 feature(s): gauss (PSI" in report.summary()


def test_identical_distributions_do_not_drift() -> None:
    ref, rec = _samples(shift=0.0, seed=1)
    report = detect_drift(ref, rec, NAMES)
    assert not report.drifted and report.drifted_features == []
    assert max(f.ks for f in report.features) < 0.02
    assert report.summary().startswith("no drift")


def test_min_drifted_features_sets_the_sample_verdict() -> None:
    ref, rec = _samples(shift=0.1)
    strict = DriftThresholds(psi=0.1, ks=0.03, min_drifted_features=4)
    report = detect_drift(ref, rec, NAMES, strict)
    assert len(report.drifted_features) == 3 and not report.drifted


def test_a_one_event_flip_is_seen_in_ks() -> None:
    ref = np.zeros((1000, 1), dtype=np.float32)
    rec = ref.copy()
    rec[0, 0] = 1.0
    report = detect_drift(ref, rec, ["x"])
    assert report.features[0].ks == pytest.approx(0.001)


@pytest.mark.parametrize(
    ("reference", "recent", "names", "message"),
    [
        (np.zeros((10, 3)), np.zeros((10, 2)), ["a", "b", "c"], "recent sample has 2 features but 3 feature names"),
        (np.zeros(10), np.zeros((10, 1)), ["a"], r"reference sample: expected a 2-D"),
        (np.zeros((1, 1)), np.zeros((10, 1)), ["a"], "reference sample: need at least 2 events"),
        (np.zeros((10, 2)), np.zeros((10, 2)), ["a", "a"], "feature_names repeat"),
    ],
)
def test_bad_shapes_are_refused(reference, recent, names, message) -> None:
    with pytest.raises(DriftInputError, match=message):
        detect_drift(reference, recent, names)


def test_nan_and_inf_are_refused_naming_the_feature() -> None:
    ref, rec = _samples(shift=0.0)
    rec[5, 2] = np.inf
    rec[7, 1] = np.nan
    with pytest.raises(DriftInputError, match="recent sample: NaN or infinite values in feature.s. padded, integer"):
        detect_drift(ref, rec, NAMES)
