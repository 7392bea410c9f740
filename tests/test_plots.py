"""Plots: the ROC points are right and every PNG is written whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from l1flow.data.sample import EventSample
from l1flow.training.metrics import roc_auc
from l1flow.training.plots import model_plots, roc_points

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _sample() -> tuple[EventSample, np.ndarray]:
    rng = np.random.default_rng(3)
    labels = np.r_[np.zeros(5000, dtype=np.int64), np.ones(500, dtype=np.int64), np.full(500, 2)]
    scores = np.r_[rng.exponential(1.0, 5000), rng.exponential(3.0, 500), rng.exponential(1.5, 500)]
    objects = np.zeros((labels.size, 19, 3), dtype=np.float32)
    return EventSample(objects=objects, labels=labels, classes=("background", "wide", "narrow")), scores


def test_roc_points_integrate_to_the_auc() -> None:
    sample, scores = _sample()
    background, signal = scores[sample.labels == 0], scores[sample.labels == 1]
    fpr, tpr = roc_points(background, signal)
    assert fpr[0] == 0.0 and tpr[0] == 0.0 and fpr[-1] == 1.0 and tpr[-1] == 1.0
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert np.trapz(tpr, fpr) == pytest.approx(roc_auc(background, signal), abs=1e-9)


def test_model_plots_write_every_png(tmp_path: Path) -> None:
    sample, scores = _sample()
    history = {"loss": [1.0, 0.5, 0.4], "val_loss": [1.1, 0.6, 0.5]}
    files = model_plots("ae", scores, sample, tmp_path / "plots", history=history, previous_scores=scores * 0.9,
                        working_point_khz=1000.0)
    assert set(files) == {"roc", "efficiency_vs_rate", "scores", "loss"}
    for path in files.values():
        data = Path(path).read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 5000
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == sorted(Path(p).name for p in files.values())
    without_history = model_plots("bdt", scores, sample, tmp_path / "other")
    assert "loss" not in without_history


def test_model_plots_refuse_scores_of_another_sample(tmp_path: Path) -> None:
    sample, scores = _sample()
    with pytest.raises(ValueError, match="scores for a sample of"):
        model_plots("ae", scores[:10], sample, tmp_path)
    assert not tmp_path.joinpath("ae_roc.png").exists()
