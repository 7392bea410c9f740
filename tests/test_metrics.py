"""Trigger metrics on hand-checkable numbers."""

from __future__ import annotations

import numpy as np
import pytest

from l1flow.data.sample import EventSample
from l1flow.training.metrics import (
    MetricsError,
    compare_with_previous,
    decision_agreement,
    efficiency_vs_rate,
    rate_khz_of,
    roc_auc,
    threshold_at_rate,
    trigger_metrics,
)


def test_auc_perfect_inverted_and_tied() -> None:
    assert roc_auc([0, 1, 2], [3, 4]) == 1.0
    assert roc_auc([3, 4], [0, 1, 2]) == 0.0
    assert roc_auc([1, 1], [1, 1, 1]) == 0.5
    # 2 of 4 background below the one signal, 1 tied: (2 + 0.5) / 4
    assert roc_auc([0, 1, 2, 3], [2]) == pytest.approx(0.625)


def test_auc_matches_sklearn_on_random_scores() -> None:
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(5)
    background = np.round(rng.normal(0, 1, 3000), 2)
    signal = np.round(rng.normal(0.7, 1, 500), 2)
    labels = np.r_[np.zeros(3000), np.ones(500)]
    expected = sklearn_metrics.roc_auc_score(labels, np.r_[background, signal])
    assert roc_auc(background, signal) == pytest.approx(expected, abs=1e-12)


def test_threshold_gives_the_working_point_rate() -> None:
    background = np.arange(100, dtype=float)
    # fpr 5% of 28.61 MHz = 1430.5 kHz: 5 of 100 events may pass
    threshold = threshold_at_rate(background, 1430.5, 28.61)
    assert threshold == 94.0
    assert int((background > threshold).sum()) == 5
    assert rate_khz_of(background, threshold, 28.61) == pytest.approx(1430.5)
    # just under 5%: only 4 may pass
    assert int((background > threshold_at_rate(background, 1430.0, 28.61)).sum()) == 4


def test_threshold_at_rate_on_large_sample_never_exceeds_the_rate() -> None:
    rng = np.random.default_rng(1)
    background = rng.exponential(1.0, 200_000)
    for rate in (0.5, 1.0, 10.0, 100.0):
        t = threshold_at_rate(background, rate)
        achieved = rate_khz_of(background, t)
        assert achieved <= rate
        assert achieved > rate - 28.61e3 / background.size  # within one event


def test_bad_rates_and_scores_are_refused() -> None:
    with pytest.raises(MetricsError, match="exceeds the crossing rate"):
        threshold_at_rate([1.0, 2.0], 40_000.0, 28.61)
    with pytest.raises(MetricsError, match="NaN"):
        roc_auc([1.0, np.nan], [2.0])
    with pytest.raises(MetricsError, match="software scores but"):
        decision_agreement([1.0, 2.0], [1.0], 0.5)


def test_decision_agreement_counts_flipped_decisions() -> None:
    software = np.array([0.1, 0.5, 0.9, 2.0])
    firmware = np.array([0.1, 0.51, 0.89, 2.0])
    assert decision_agreement(software, firmware, 0.505) == 0.75  # event 1 crosses the threshold
    assert decision_agreement(software, software, 0.505) == 1.0


def _toy_sample() -> tuple[EventSample, np.ndarray]:
    rng = np.random.default_rng(2)
    labels = np.r_[np.zeros(10_000, dtype=np.int64), np.ones(1000, dtype=np.int64), np.full(1000, 2)]
    scores = np.r_[rng.normal(0, 1, 10_000), rng.normal(3, 1, 1000), rng.normal(0, 1, 1000)]
    objects = np.zeros((labels.size, 19, 3), dtype=np.float32)
    return EventSample(objects=objects, labels=labels, classes=("background", "easy", "same")), scores


def test_trigger_metrics_per_signal_and_comparison() -> None:
    sample, scores = _toy_sample()
    current = trigger_metrics(scores, sample, working_point_khz=286.1, crossing_rate_mhz=28.61)  # fpr 1%
    assert set(current["auc"]) == {"easy", "same"}
    assert current["auc"]["easy"] > 0.97
    assert abs(current["auc"]["same"] - 0.5) < 0.03
    assert current["rate_khz"] <= 286.1
    # N(3,1) above the 99% quantile of N(0,1) (2.326): 75%
    assert current["efficiency_at_rate"]["easy"] == pytest.approx(0.75, abs=0.04)
    assert current["efficiency_at_rate"]["same"] == pytest.approx(0.01, abs=0.01)
    previous = trigger_metrics(scores * 0.5 + np.where(sample.labels == 1, -1.0, 0.0), sample, working_point_khz=286.1)
    table = compare_with_previous(current, previous)
    row = table["efficiency_at_rate"]["easy"]
    assert row["previous"] < row["current"]
    assert row["change"] == pytest.approx(row["current"] - row["previous"])
    first = compare_with_previous(current, None)
    assert first["auc"]["easy"]["previous"] is None


def test_efficiency_rises_with_rate() -> None:
    sample, scores = _toy_sample()
    background = scores[sample.labels == 0]
    curve = efficiency_vs_rate(background, scores[sample.labels == 1], [10.0, 100.0, 1000.0, 10_000.0])
    assert curve["rate_khz"] == [10.0, 100.0, 1000.0, 10_000.0]
    assert curve["efficiency"] == sorted(curve["efficiency"])
    assert curve["efficiency"][-1] > 0.99
