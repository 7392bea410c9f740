"""Charts the report draws itself: this run against the previous production version.

The pipeline's own plots (ROC curves, score distributions, residuals) are
embedded as they are; these charts add the comparison that only the report
can make, because it is the one place that sees both summaries.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def comparison_chart(
    title: str,
    ylabel: str,
    current: dict[str, float],
    previous: dict[str, float] | None,
    current_label: str,
    previous_label: str,
) -> bytes:
    """PNG bytes of grouped bars per signal: this run, and the previous production if known."""
    signals = sorted(set(current) | set(previous or {}))
    x = np.arange(len(signals))
    width = 0.38 if previous else 0.6
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(signals) + 2), 3.0), dpi=90)
    now = [current.get(s, np.nan) for s in signals]
    ax.bar(x - (width / 2 if previous else 0), now, width, label=current_label, color="#1f77b4")
    if previous:
        before = [previous.get(s, np.nan) for s in signals]
        ax.bar(x + width / 2, before, width, label=previous_label, color="#aaaaaa")
    for xi, value in zip(x, now):
        if not np.isnan(value):
            ax.annotate(f"{value:.3g}", (xi - (width / 2 if previous else 0), value), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, signals, rotation=20 if len(signals) > 4 else 0)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    finite = [v for v in now + (before if previous else []) if not np.isnan(v)]
    if finite:
        ax.set_ylim(0, max(finite) * 1.18 or 1.0)  # room for the value labels
    # Below the axes, so it never hides a bar or its label.
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
