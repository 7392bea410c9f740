"""NNEmulator against hls4ml's compiled C++ (`hls_model.predict`), side by side.

A 57-32-16-3-16-32-57 QKeras autoencoder is trained briefly on L1-object-like
events (19 objects x (pT, eta, phi), pT-ordered and zero-padded), converted
with bit_exact=True, and both emulations run in this process on the same
events:

- `ae_events_per_s`: the fast emulator on all events (words in, words out);
- `hls4ml_events_per_s`: `hls_model.predict` timed on a subset (default
  20,000 events; printed), since it loops in Python;
- `ae_mismatches`: output words differing on ALL events (hls4ml is run on all
  of them for this count, which takes a while).

Prints text, then one JSON line last.

    .venv/bin/python benchmarks/bench_nn_emulator.py [--events 1000000] [--timing-subset 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

import l1flow  # noqa: F401  (sets the toolchain environment)
from l1flow.firmware.fixed import quantize
from l1flow.firmware.hls4ml_project import convert_keras
from l1flow.firmware.netgraph import FirmwareNet
from l1flow.firmware.nn_emulator import NNEmulator

# MET, 4 e/gamma, 4 muons, 10 jets; |eta| acceptance per group
GROUPS = [(1, 0.0, 0.05), (4, 3.0, 0.4), (4, 2.1, 0.3), (10, 4.0, 2.5)]


def l1_like_events(n: int, seed: int) -> np.ndarray:
    """(n, 57) float32: per object pT (GeV, log-scaled), eta, phi; zero-padded groups."""
    rng = np.random.default_rng(seed)
    parts = []
    for count, eta_max, mean_multiplicity in GROUPS:
        present = np.arange(count)[None, :] < rng.poisson(mean_multiplicity, (n, 1)).clip(max=count)
        if count == 1:
            present = np.ones((n, 1), dtype=bool)
        pt = -np.sort(-rng.exponential(15.0, (n, count)) - 5.0, axis=1)
        eta = rng.uniform(-eta_max, eta_max, (n, count)) if eta_max else np.zeros((n, count))
        phi = rng.uniform(-np.pi, np.pi, (n, count))
        obj = np.stack([np.log1p(pt), eta, phi], axis=-1) * present[..., None]
        parts.append(obj.reshape(n, count * 3))
    return np.concatenate(parts, axis=1).astype(np.float32)


def autoencoder() -> object:
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu
    from tensorflow.keras.layers import Input
    from tensorflow.keras.models import Model

    inp = Input((57,), name="objects")
    x = QActivation(quantized_bits(12, 4, alpha=1), name="q_in")(inp)
    sizes = [32, 16, 3, 16, 32, 57]
    for i, units in enumerate(sizes):
        x = QDense(units, kernel_quantizer=quantized_bits(8, 0, alpha=1),
                   bias_quantizer=quantized_bits(8, 2, alpha=1), name=f"dense{i}")(x)
        if i < len(sizes) - 1:
            x = QActivation(quantized_relu(10, 4), name=f"relu{i}")(x)
    return Model(inp, x, name="ae")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--timing-subset", type=int, default=20_000)
    parser.add_argument("--train-events", type=int, default=50_000)
    args = parser.parse_args()

    events = l1_like_events(args.events, seed=1)
    model = autoencoder()
    model.compile(optimizer="adam", loss="mse")
    train = l1_like_events(args.train_events, seed=2)
    start = time.perf_counter()
    model.fit(train, train, epochs=3, batch_size=512, verbose=0)
    print(f"trained the 57-32-16-3-16-32-57 AE on {len(train)} events in {time.perf_counter() - start:.1f} s")

    with tempfile.TemporaryDirectory(prefix="bench_nn_emulator_") as tmp:
        start = time.perf_counter()
        hls_model = convert_keras(model, Path(tmp) / "ae", part="xcvu9p-flgb2104-2L-e", clock_period_ns=6.25)
        print(f"hls4ml convert + compile: {time.perf_counter() - start:.1f} s")
        net = FirmwareNet.from_hls_model(hls_model)
        emulator = NNEmulator(net)
        x = events.astype(np.float64)
        input_words = emulator.quantize_inputs(x)
        emulator.predict_words(input_words[:20_000])  # numba compilation / warm-up

        start = time.perf_counter()
        words = emulator.predict_words(input_words)
        emu_seconds = time.perf_counter() - start
        ae_rate = len(x) / emu_seconds

        subset = x[: args.timing_subset]
        start = time.perf_counter()
        hls_model.predict(subset)
        hls_rate = len(subset) / (time.perf_counter() - start)

        start = time.perf_counter()
        hls_out = np.asarray(hls_model.predict(x)).reshape(len(x), -1)
        full_seconds = time.perf_counter() - start
        hls_words = quantize(hls_out, net.output.type)
        mismatched_words = int(np.count_nonzero(hls_words != words))
        mismatched_events = int(np.count_nonzero(np.any(hls_words != words, axis=1)))

    result = {
        "events": len(x),
        "ae_events_per_s": round(ae_rate),
        "hls4ml_events_per_s": round(hls_rate),
        "hls4ml_timing_events": len(subset),
        "ae_speedup_vs_hls4ml": round(ae_rate / hls_rate, 1),
        "ae_mismatches": mismatched_words,
        "ae_mismatched_events": mismatched_events,
        "mismatch_counted_on_events": len(x),
        "cores": os.cpu_count(),
    }
    print(f"fast emulator: {len(x)} events in {emu_seconds:.2f} s = {ae_rate:,.0f} events/s")
    print(f"hls4ml predict: {hls_rate:,.0f} events/s (timed on the first {len(subset)} events); "
          f"all {len(x)} events took {full_seconds:.1f} s for the mismatch count")
    print(f"speed-up: {ae_rate / hls_rate:.0f}x; differing output words on all {len(x)} events: {mismatched_words}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
