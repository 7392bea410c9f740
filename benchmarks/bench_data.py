"""Speed of the event generator and of drift detection, side by side with references.

- generator: l1flow's generate_events (57 inputs + hardware words, optionally the
  18 x 14 region grid) in events/s; the reference is the time numpy alone needs
  to draw the same number of standard normals per event as there are inputs
  (a floor no generator of 57 random inputs can beat), reported as a ratio.
- drift: detect_drift (PSI + exact KS on every feature) against scipy's
  ks_2samp looped over the features (KS only), on the same arrays.

Usage: .venv/bin/python benchmarks/bench_data.py [--events 1000000] [--drift-events 1000000]
The last line printed is one JSON object. Wall and CPU seconds are both given:
on a shared machine the wall time includes waiting for a core, the CPU time
does not (the drift's CPU time sums its threads).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from scipy.stats import ks_2samp

from l1flow.conditions.drift import detect_drift
from l1flow.conditions.payload import CalibrationScales, ConditionsPayload
from l1flow.data.generator import generate_events
from l1flow.data.layout import FEATURE_NAMES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--drift-events", type=int, default=1_000_000)
    parser.add_argument("--skip-scipy", action="store_true", help="do not time the scipy reference")
    args = parser.parse_args()
    n = args.events
    nominal = ConditionsPayload()

    generate_events(nominal, 1000, 0, seed=0)  # warm-up (imports, first allocations)
    started, cpu_started = time.perf_counter(), time.process_time()
    sample = generate_events(nominal, n, 0, seed=1, with_regions=False)
    words = sample.hardware_features()
    gen_seconds = time.perf_counter() - started
    gen_cpu = time.process_time() - cpu_started
    started = time.perf_counter()
    generate_events(nominal, n, 0, seed=2, with_regions=True).hardware_features()
    gen_regions_seconds = time.perf_counter() - started
    started = time.perf_counter()
    np.random.default_rng(0).standard_normal((n, len(FEATURE_NAMES)), dtype=np.float32)
    floor_seconds = time.perf_counter() - started
    print(f"generator: {n:,} events, 57 inputs + hardware words ({words.shape}): {gen_seconds:.2f} s wall "
          f"({gen_cpu:.2f} s CPU), {n / gen_seconds:,.0f} events/s")
    print(f"generator with the 18x14 region grid: {gen_regions_seconds:.2f} s, {n / gen_regions_seconds:,.0f} events/s")
    print(f"numpy floor (57 normals per event): {floor_seconds:.2f} s; generator / floor = {gen_seconds / floor_seconds:.1f}x")

    m = args.drift_events
    reference = generate_events(nominal, m, 0, seed=3, with_regions=False).features()
    shifted = ConditionsPayload(calibration=CalibrationScales(jet=1.05), mean_pileup=60)
    recent = generate_events(shifted, m, 0, seed=4, with_regions=False).features()
    detect_drift(reference[:2000], recent[:2000], FEATURE_NAMES)  # compile (numba caches it on disk)
    cpu_started = time.process_time()
    report = detect_drift(reference, recent, FEATURE_NAMES)
    drift_cpu = time.process_time() - cpu_started
    drift_seconds = report.seconds
    print(f"drift: {m:,} x 57 against {m:,} x 57: {drift_seconds:.2f} s wall ({drift_cpu:.2f} s CPU, all threads), "
          f"{len(report.drifted_features)} drifted features ({', '.join(report.drifted_features[:6])} ...)")
    result = {
        "generator_events_per_s": round(n / gen_seconds),
        "generator_cpu_seconds": round(gen_cpu, 3),
        "generator_events": n,
        "generator_with_regions_events_per_s": round(n / gen_regions_seconds),
        "generator_vs_numpy_floor": round(gen_seconds / floor_seconds, 2),
        "drift_seconds": round(drift_seconds, 3),
        "drift_cpu_seconds": round(drift_cpu, 3),
        "drift_shape": [m, 57, m, 57],
    }
    if not args.skip_scipy:
        started = time.perf_counter()
        scipy_ks = np.array([ks_2samp(reference[:, j], recent[:, j]).statistic for j in range(reference.shape[1])])
        scipy_seconds = time.perf_counter() - started
        ours = np.array([f.ks for f in report.features])
        print(f"scipy ks_2samp over 57 features: {scipy_seconds:.2f} s; l1flow / scipy = "
              f"{drift_seconds / scipy_seconds:.2f} (max |KS difference| {np.abs(ours - scipy_ks).max():.1e})")
        result["scipy_ks_seconds"] = round(scipy_seconds, 3)
        result["drift_vs_scipy"] = round(drift_seconds / scipy_seconds, 3)
        result["ks_max_abs_difference"] = float(np.abs(ours - scipy_ks).max())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
