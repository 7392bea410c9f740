"""PNG plots of one model: ROC curves, efficiency vs rate, score distributions, loss curves, residuals.

Matplotlib's Agg backend (no display). Every file is written under a
temporary name and renamed, so a plot is either complete or absent. The
previous production model's curves, when given, are drawn dashed beside the
new model's.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from l1flow.data.sample import EventSample  # noqa: E402
from l1flow.fileio import atomic_path
from l1flow.training.metrics import (  # noqa: E402
    DEFAULT_CROSSING_RATE_MHZ,
    default_rate_grid,
    efficiency_vs_rate,
    threshold_at_rate,
)


def _save(fig: plt.Figure, path: Path) -> Path:
    try:
        with atomic_path(path, suffix=".png") as temporary:
            fig.savefig(temporary, dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def roc_points(background: np.ndarray, signal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false-positive rate, true-positive rate) at every distinct threshold, from (1, 1) down."""
    thresholds = np.unique(np.concatenate([background, signal]))[::-1]
    b = np.sort(background)
    s = np.sort(signal)
    fpr = 1.0 - np.searchsorted(b, thresholds, side="right") / max(b.size, 1)
    tpr = 1.0 - np.searchsorted(s, thresholds, side="right") / max(s.size, 1)
    return np.r_[0.0, fpr, 1.0], np.r_[0.0, tpr, 1.0]


def _per_signal(scores: np.ndarray, sample: EventSample) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    background = scores[~sample.is_signal()]
    signals = {name: scores[sample.class_mask(name)] for name in sample.classes[1:]}
    return background, {k: v for k, v in signals.items() if v.size}


def plot_roc(name: str, scores: np.ndarray, sample: EventSample, path: Path,
             previous_scores: np.ndarray | None = None) -> Path:
    fig, ax = plt.subplots(figsize=(6, 5))
    background, signals = _per_signal(scores, sample)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (signal, values) in enumerate(signals.items()):
        colour = colours[i % len(colours)]
        fpr, tpr = roc_points(background, values)
        ax.plot(fpr, tpr, color=colour, label=signal)
        if previous_scores is not None:
            old_background, old_signals = _per_signal(previous_scores, sample)
            fpr, tpr = roc_points(old_background, old_signals[signal])
            ax.plot(fpr, tpr, color=colour, linestyle="--", label=f"{signal} (production)")
    ax.set_xscale("log")
    ax.set_xlim(max(1.0 / max(background.size, 1), 1e-6), 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel("background false-positive rate")
    ax.set_ylabel("signal efficiency")
    ax.set_title(f"{name}: ROC")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_efficiency_vs_rate(name: str, scores: np.ndarray, sample: EventSample, path: Path, *,
                            crossing_rate_mhz: float = DEFAULT_CROSSING_RATE_MHZ,
                            working_point_khz: float | None = None,
                            previous_scores: np.ndarray | None = None) -> Path:
    fig, ax = plt.subplots(figsize=(6, 5))
    background, signals = _per_signal(scores, sample)
    rates = default_rate_grid(crossing_rate_mhz, background.size)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (signal, values) in enumerate(signals.items()):
        colour = colours[i % len(colours)]
        curve = efficiency_vs_rate(background, values, rates, crossing_rate_mhz)
        ax.plot(curve["rate_khz"], curve["efficiency"], color=colour, label=signal)
        if previous_scores is not None:
            old_background, old_signals = _per_signal(previous_scores, sample)
            curve = efficiency_vs_rate(old_background, old_signals[signal], rates, crossing_rate_mhz)
            ax.plot(curve["rate_khz"], curve["efficiency"], color=colour, linestyle="--",
                    label=f"{signal} (production)")
    if working_point_khz is not None:
        ax.axvline(working_point_khz, color="black", linewidth=0.8, linestyle=":",
                   label=f"working point {working_point_khz:g} kHz")
    ax.set_xscale("log")
    ax.set_xlabel(f"trigger rate [kHz] (crossing rate {crossing_rate_mhz:g} MHz)")
    ax.set_ylabel("signal efficiency")
    ax.set_ylim(0.0, 1.02)
    ax.set_title(f"{name}: efficiency vs rate")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_score_distributions(name: str, scores: np.ndarray, sample: EventSample, path: Path,
                             threshold: float | None = None) -> Path:
    fig, ax = plt.subplots(figsize=(6, 5))
    background, signals = _per_signal(scores, sample)
    low, high = np.percentile(scores, [0.0, 99.99]) if scores.size else (0.0, 1.0)
    bins = np.linspace(low, high if high > low else low + 1.0, 80).tolist()
    ax.hist(background, bins=bins, histtype="stepfilled", alpha=0.3, density=True, label="background", color="grey")
    for signal, values in signals.items():
        ax.hist(values, bins=bins, histtype="step", density=True, label=signal)
    if threshold is not None:
        ax.axvline(threshold, color="black", linewidth=0.8, linestyle=":", label="threshold at working point")
    ax.set_yscale("log")
    ax.set_xlabel("score")
    ax.set_ylabel("events (normalised)")
    ax.set_title(f"{name}: score distributions")
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_loss_curves(name: str, history: dict[str, list[float]], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, values in sorted(history.items()):
        if values:
            ax.plot(np.arange(1, len(values) + 1), values, marker="." if len(values) < 30 else None, label=key)
    ax.set_xlabel("epoch / boosting round")
    ax.set_ylabel("loss")
    if any(v and min(v) > 0 for v in history.values()):
        ax.set_yscale("log")
    ax.set_title(f"{name}: training")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_residuals(name: str, software: np.ndarray, emulated: np.ndarray, path: Path) -> Path:
    """Histogram of emulation - software over every output value (log scale)."""
    residual = (np.asarray(emulated, dtype=np.float64) - np.asarray(software, dtype=np.float64)).ravel()
    spread = float(np.abs(residual).max(initial=0.0))
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.hist(residual, bins=101, range=(-spread, spread) if spread > 0 else (-1.0, 1.0), log=True)
    ax.set_xlabel("firmware emulation - software (per output value)")
    ax.set_ylabel("values")
    ax.set_title(f"{name}: {np.count_nonzero(residual)} of {residual.size} output values differ")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def model_plots(name: str, scores: np.ndarray, sample: EventSample, folder: Path, *,
                history: dict[str, list[float]] | None = None, previous_scores: np.ndarray | None = None,
                crossing_rate_mhz: float = DEFAULT_CROSSING_RATE_MHZ,
                working_point_khz: float | None = None) -> dict[str, Path]:
    """Every plot of one model into ``folder``; returns {"roc": path, "efficiency_vs_rate": ..., ...}."""
    folder = Path(folder)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(sample),):
        raise ValueError(f"{scores.shape[0] if scores.ndim else 0} scores for a sample of {len(sample)} events")
    threshold = None
    if working_point_khz is not None:
        threshold = threshold_at_rate(scores[~sample.is_signal()], working_point_khz, crossing_rate_mhz)
    files = {
        "roc": plot_roc(name, scores, sample, folder / f"{name}_roc.png", previous_scores),
        "efficiency_vs_rate": plot_efficiency_vs_rate(
            name, scores, sample, folder / f"{name}_efficiency_vs_rate.png", crossing_rate_mhz=crossing_rate_mhz,
            working_point_khz=working_point_khz, previous_scores=previous_scores),
        "scores": plot_score_distributions(name, scores, sample, folder / f"{name}_scores.png", threshold),
    }
    if history:
        files["loss"] = plot_loss_curves(name, history, folder / f"{name}_loss.png")
    return files
