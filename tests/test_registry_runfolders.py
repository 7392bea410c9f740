"""Realistic pipeline run folders for the registry, bundle and report tests.

`make_run_folder` writes what the pipeline leaves behind: summary.json in the
agreed shape, PNG plots drawn with matplotlib from synthetic scores, a small
HLS project with RTL, a test-vector folder and a synthesis report. Numbers are
computed from the synthetic scores, not typed in, so the report shows
consistent curves and metrics.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from l1flow.records import RunSummary, write_summary  # noqa: E402

CROSSING_RATE_KHZ = 28_610.0
SIGNALS = ("haa4b", "htautau")


def _roc(background: np.ndarray, signal: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    thresholds = np.quantile(np.concatenate([background, signal]), np.linspace(0, 1, 201))[::-1]
    fpr = np.array([(background > t).mean() for t in thresholds])
    tpr = np.array([(signal > t).mean() for t in thresholds])
    auc = float(np.trapz(tpr, fpr))
    return fpr, tpr, auc


def _plot(path: Path, draw: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(4, 3), dpi=60)
    draw(ax)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def make_model(
    run_dir: Path,
    name: str,
    kind: str,
    seed: int,
    signal_shift: float = 1.5,
    mismatches: int = 0,
    resources: dict[str, Any] | None = None,
    latency: dict[str, Any] | None = None,
    working_point_khz: float = 100.0,
) -> dict[str, Any]:
    """One model's files and its summary block; `signal_shift` sets how well it separates."""
    rng = np.random.default_rng(seed)
    background = rng.exponential(1.0, 4000)
    signals = {s: rng.exponential(1.0 + signal_shift * (i + 1) * 0.5, 1000) for i, s in enumerate(SIGNALS)}
    threshold = float(np.quantile(background, 1 - working_point_khz / CROSSING_RATE_KHZ))
    auc: dict[str, float] = {}
    efficiency: dict[str, float] = {}
    curves = {}
    for signal, scores in signals.items():
        fpr, tpr, area = _roc(background, scores)
        curves[signal] = (fpr, tpr)
        auc[signal] = round(area, 6)
        efficiency[signal] = round(float((scores > threshold).mean()), 6)

    def roc(ax: Any) -> None:
        for signal, (fpr, tpr) in curves.items():
            ax.plot(fpr, tpr, label=signal)
        ax.set_xlabel("background efficiency")
        ax.set_ylabel("signal efficiency")
        ax.legend()

    def scores(ax: Any) -> None:
        ax.hist(background, bins=40, histtype="step", label="background", density=True)
        for signal, values in signals.items():
            ax.hist(values, bins=40, histtype="step", label=signal, density=True)
        ax.set_yscale("log")
        ax.legend()

    emulated = np.round(background * 256) / 256
    residual = emulated - background

    def residuals(ax: Any) -> None:
        ax.hist(residual, bins=40)
        ax.set_xlabel("emulation - software")

    plots = {"roc": f"plots/{name}_roc.png", "scores": f"plots/{name}_scores.png", "residuals": f"plots/{name}_residuals.png"}
    _plot(run_dir / plots["roc"], roc)
    _plot(run_dir / plots["scores"], scores)
    _plot(run_dir / plots["residuals"], residuals)

    firmware = run_dir / "firmware" / name
    (firmware / "firmware").mkdir(parents=True, exist_ok=True)
    (firmware / "firmware" / "myproject.cpp").write_text(
        f"// {name}: generated HLS top level\n#include \"myproject.h\"\nvoid myproject() {{ /* seed {seed} */ }}\n"
    )
    (firmware / "build_prj.tcl").write_text("open_project myproject_prj\nset_top myproject\n")
    (firmware / "rtl").mkdir(exist_ok=True)
    (firmware / "rtl" / "myproject.v").write_text(f"module myproject(input clk); // {name} v{seed}\nendmodule\n")
    binary = bytes(rng.integers(0, 256, 3000, dtype=np.uint8))
    (firmware / "weights.bin").write_bytes(binary)
    vectors = run_dir / "vectors" / name
    vectors.mkdir(parents=True, exist_ok=True)
    words = rng.integers(-512, 512, size=(50, 4))
    (vectors / "inputs.txt").write_text("\n".join(" ".join(str(w) for w in row) for row in words) + "\n")
    (vectors / "outputs.txt").write_text("\n".join(str(int(row.sum())) for row in words) + "\n")
    (vectors / "meta.json").write_text(json.dumps({"format": "l1flow-vectors/1", "events": 50}))
    reports = run_dir / "reports" / name
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "yosys_stat.txt").write_text(f"Number of cells: {(resources or {}).get('LUT', 0)}\n")
    model_dir = run_dir / "models" / name
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "model.json").write_text(json.dumps({"kind": kind, "seed": seed}))

    events = 2000
    gate = [
        {"source": "ghdl" if kind.startswith("bdt") else "verilator", "events": events, "mismatches": mismatches,
         "mismatched_events": mismatches, "passed": mismatches == 0, "events_per_s": 120000.0,
         "failures": [f"event {i}: output 0 differs" for i in range(mismatches)]},
    ]
    return {
        "kind": kind,
        "weights_hash": f"w{seed:08x}",
        "firmware_hash": f"f{seed:08x}",
        "metrics": {"auc": auc, "threshold": round(threshold, 6), "efficiency_at_rate": efficiency,
                    "working_point_khz": working_point_khz},
        "software_vs_emulation": {
            "events": events, "outputs_per_event": 1, "tolerance": 0.0,
            "max_abs_diff": float(np.abs(residual).max()), "mean_abs_diff": float(np.abs(residual).mean()),
            "fraction_differing": float((residual != 0).mean()),
            "abs_diff_quantiles": {q: float(np.quantile(np.abs(residual), float(q))) for q in ("0.5", "0.99", "1.0")},
        },
        "decision_agreement": 0.9995,
        "emulation_vs_hardware": gate,
        "resources": resources,
        "latency": latency,
        "plots": plots,
        "artifacts": {"model": f"models/{name}", "firmware": f"firmware/{name}", "vectors": f"vectors/{name}",
                      "reports": f"reports/{name}"},
    }


def make_run_folder(
    run_dir: Path,
    run_id: str = "run-0001",
    tag: str = "L1Calib_2026_v1",
    first_run: int = 390000,
    seed: int = 1,
    signal_shift: float = 1.5,
    mismatches: int = 0,
    resources: dict[str, Any] | None = None,
    latency: dict[str, Any] | None = None,
    models: tuple[tuple[str, str], ...] = (("ae", "dense_ae"),),
    unmeasured: bool = False,
) -> Path:
    """A complete run folder with one block per (name, kind) in `models`.

    `unmeasured` leaves resources and latency null, as when synthesis did not run.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    if resources is None and not unmeasured:
        resources = {"LUT": 41000, "FF": 9800, "DSP": 0, "BRAM": 0, "source": "yosys"}
    if latency is None and not unmeasured:
        latency = {"cycles": 4, "ns": 16.0}
    summary = {
        "run_id": run_id,
        "config_name": "axol1tl-like",
        "config_hash": "c0ffee12",
        "started": "2026-11-26T12:00:00+00:00",
        "wall_seconds": 812.5,
        "train_seconds": 95.25,
        "conditions": {"tag": tag, "iov": {"first_run": first_run, "last_run": None},
                       "trigger": {"retrain": True, "reason": f"new IOV {first_run} for tag {tag}"}},
        "dataset": {"hash": f"d{seed:06x}", "events": {"train": 20000, "test": 5000}},
        "tool_versions": {"hls4ml": "1.3.0", "conifer": "1.11", "tensorflow": "2.14.1", "xgboost": "3.1.3",
                          "ghdl": "2.0.0", "verilator": "5.048", "yosys": "0.23"},
        "models": {
            name: make_model(run_dir, name, kind, seed * 10 + i, signal_shift, mismatches, resources, latency)
            for i, (name, kind) in enumerate(models)
        },
    }
    # Written as the pipeline writes it today (l1flow-summary/2), mapped from the older shape above.
    write_summary(run_dir, RunSummary.from_dict(summary))
    return run_dir
