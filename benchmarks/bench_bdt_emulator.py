"""l1flow's BDT emulator against conifer's cpp backend, side by side in one process.

An xgboost BDT (default 100 trees of depth 4 on 16 features) is
converted with conifer's cpp backend; the same events (default 1,000,000, a
tenth of them with features set exactly on split thresholds, and values
beyond the input type's range) go through both. Mismatches are counted on
all events; conifer's speed is timed on a subset (``--reference-events``,
default 20,000) because it runs at a few thousand events per second.

    .venv/bin/python benchmarks/bench_bdt_emulator.py [--events N] [--trees T] [--depth D]

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

import l1flow  # noqa: F401  (sets the toolchain environment)
from l1flow.firmware.bdt_emulator import BDTEmulator
from l1flow.firmware.conifer_project import convert_xgboost
from l1flow.firmware.fixed import FixedType, quantize
from l1flow.firmware.forest import FirmwareForest


def make_events(rng: np.random.Generator, n: int, n_features: int) -> np.ndarray:
    x = rng.normal(0.0, 1.5, size=(n, n_features))
    x[:, ::3] = np.abs(x[:, ::3]) * 20  # pT-like features, some beyond the input range
    return x


def put_on_thresholds(rng: np.random.Generator, x: np.ndarray, model, fraction: float) -> int:
    """Set one feature of a `fraction` of events exactly to a split threshold."""
    splits = [(f, t) for per in model.trees for tree in per for f, t in zip(tree.feature, tree.threshold) if f >= 0]
    chosen = rng.choice(len(x), size=int(fraction * len(x)), replace=False)
    picks = rng.integers(0, len(splits), size=len(chosen))
    for event, pick in zip(chosen, picks):
        feature, threshold = splits[pick]
        x[event, feature] = threshold
    return len(chosen)


_MODEL = None  # the conifer model, shared with forked workers


def _conifer_scores(x: np.ndarray) -> np.ndarray:
    return _MODEL.decision_function(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--reference-events", type=int, default=20_000)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="processes running conifer for the mismatch count")
    parser.add_argument("--precision", default="ap_fixed<18,8>")
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()

    import xgboost as xgb

    rng = np.random.default_rng(args.seed)
    x_train = make_events(rng, 20_000, args.features)
    y_train = (x_train[:, 0] * 0.05 + x_train[:, 1] - 0.5 * x_train[:, 4] ** 2 + rng.normal(0, 1, len(x_train)) > 0)
    booster = xgb.train(
        {"max_depth": args.depth, "objective": "binary:logistic", "eta": 0.2, "nthread": 2},
        xgb.DMatrix(x_train, y_train.astype(int)),
        args.trees,
    )

    with tempfile.TemporaryDirectory(prefix="bench-bdt-") as tmp:
        start = time.perf_counter()
        model = convert_xgboost(
            booster, Path(tmp) / "cpp", backend="cpp", input_precision=args.precision,
            threshold_precision=args.precision, score_precision=args.precision,
            part="xcvu9p-flgb2104-2L-e", clock_period_ns=5.0,
        )
        compile_s = time.perf_counter() - start

        x = make_events(rng, args.events, args.features)
        on_threshold = put_on_thresholds(rng, x, model, 0.1)
        emulator = BDTEmulator(FirmwareForest.from_conifer(model))
        emulator.predict_words(emulator.quantize_inputs(x[:1000]))  # JIT warm-up

        start = time.perf_counter()
        words_in = emulator.quantize_inputs(x)
        quantize_s = time.perf_counter() - start
        start, cpu_start = time.perf_counter(), time.process_time()
        emulated = emulator.predict_words(words_in)
        emulate_s, emulate_cpu_s = time.perf_counter() - start, time.process_time() - cpu_start

        score_t = FixedType.parse(args.precision)
        start = time.perf_counter()
        reference_subset = model.decision_function(x[: args.reference_events])
        conifer_s = time.perf_counter() - start
        conifer_rate = args.reference_events / conifer_s

        # every event through conifer for the mismatch count (not timed), in
        # forked workers that inherit the compiled model
        global _MODEL
        _MODEL = model
        rest = [x[s : s + 50_000] for s in range(args.reference_events, args.events, 50_000)]
        with multiprocessing.get_context("fork").Pool(args.workers) as pool:
            parts = pool.map(_conifer_scores, rest)
        reference = np.concatenate([np.asarray(reference_subset).reshape(len(reference_subset), -1)]
                                   + [np.asarray(p).reshape(len(p), -1) for p in parts])
        reference_words = quantize(reference, score_t)
        mismatches = int(np.count_nonzero(np.any(reference_words != emulated, axis=1)))

    rate = args.events / emulate_s
    rate_with_quantize = args.events / (emulate_s + quantize_s)
    print(f"forest: {args.trees} trees, depth {args.depth}, {args.features} features, {args.precision}")
    print(f"conifer cpp compile: {compile_s:.1f} s")
    print(f"events: {args.events} ({on_threshold} with a feature exactly on a split threshold)")
    print(f"l1flow emulator (words in -> words out): {rate:,.0f} events/s "
          f"({args.events / emulate_cpu_s:,.0f} events per CPU-second over {numba.get_num_threads()} threads; "
          f"load average {os.getloadavg()[0]:.1f})")
    print(f"l1flow emulator incl. input quantization: {rate_with_quantize:,.0f} events/s")
    print(f"conifer cpp decision_function (timed on the first {args.reference_events} events): {conifer_rate:,.0f} events/s")
    print(f"speed-up: {rate / conifer_rate:,.0f}x; mismatching events (all {args.events}): {mismatches}")
    print(json.dumps({
        "events": args.events,
        "trees": args.trees,
        "depth": args.depth,
        "bdt_events_per_s": round(rate),
        "bdt_events_per_s_with_quantize": round(rate_with_quantize),
        "bdt_events_per_cpu_s": round(args.events / emulate_cpu_s),
        "load_average": round(os.getloadavg()[0], 1),
        "conifer_events_per_s": round(conifer_rate),
        "conifer_timed_events": args.reference_events,
        "bdt_speedup_vs_conifer": round(rate / conifer_rate, 1),
        "bdt_mismatches": mismatches,
        "events_on_thresholds": on_threshold,
    }))


if __name__ == "__main__":
    main()
