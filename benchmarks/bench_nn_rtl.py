"""Neural-net RTL simulation speed: l1flow's da4ml RTL on Verilator vs da4ml's own VerilogModel.predict.

A 57-32-16-3-16-32-57 QKeras autoencoder (bit-exact hls4ml conversion, ReLU
activations rounding half to even) is traced once; the same combinational
logic is simulated by

- l1flow: ``Da4mlRTLSource`` (streaming C++ harness, int64 words from a file,
  one Verilated model per thread), and
- the reference: ``da4ml.codegen.VerilogModel.predict`` (its ctypes binder),

on the same events, in this process. Mismatches are counted against
``NNEmulator`` (the bit-exact emulator). Build times are reported separately
from simulation times; builds are cached by content hash, so a second run
reuses them. Last line: one JSON object.

    .venv/bin/python benchmarks/bench_nn_rtl.py [--events 200000] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

import l1flow  # noqa: F401  (toolchain environment)

SHAPE = [57, 32, 16, 3, 16, 32, 57]


def build_model(seed: int):
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu
    from tensorflow.keras.layers import Input
    from tensorflow.keras.models import Model

    inp = Input((SHAPE[0],), name="x")
    x = QActivation(quantized_bits(14, 7, alpha=1), name="q_in")(inp)
    for i, units in enumerate(SHAPE[1:]):
        x = QDense(units, kernel_quantizer=quantized_bits(8, 1, alpha=1),
                   bias_quantizer=quantized_bits(8, 1, alpha=1), name=f"dense{i}")(x)
        if i < len(SHAPE) - 2:
            x = QActivation(quantized_relu(10, 4), name=f"relu{i}")(x)
    model = Model(inp, x, name="ae57")
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if layer.get_weights():
            layer.set_weights([rng.normal(0, 1.0 / np.sqrt(w.shape[0]), w.shape) for w in layer.get_weights()])
    return model


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--work", type=Path, default=None, help="project folder (default: a temporary one)")
    parser.add_argument("--skip-reference", action="store_true", help="do not build da4ml's own simulator")
    return parser


def measure(args: argparse.Namespace) -> dict[str, object]:
    """Print the comparison; return its numbers."""
    import hls4ml
    from da4ml.codegen import VerilogModel

    from l1flow.firmware.netgraph import FirmwareNet
    from l1flow.firmware.nn_emulator import NNEmulator
    from l1flow.hardware.da4ml_rtl import Da4mlRTLSource, trace_firmware_net
    from l1flow.hardware.verilator import default_cache_dir

    work = args.work or Path(tempfile.mkdtemp(prefix="bench_nn_rtl."))
    model = build_model(seed=11)
    config = hls4ml.utils.config_from_keras_model(model, granularity="name", backend="Vitis")
    hls_model = hls4ml.converters.convert_from_keras_model(
        model, hls_config=config, output_dir=str(work / "hls"), backend="Vitis", io_type="io_parallel",
        part="xcvu9p-flgb2104-2L-e", bit_exact=True,
    )
    net = FirmwareNet.from_hls_model(hls_model)
    rng = np.random.default_rng(5)
    x = rng.normal(0, 8.0, (args.events, SHAPE[0]))
    emulator = NNEmulator(net)
    words = emulator.quantize_inputs(x)
    t0 = time.perf_counter()
    expected = emulator.predict_words(words)
    emulator_s = time.perf_counter() - t0

    source = Da4mlRTLSource(net, work / "rtl", cache_dir=default_cache_dir(), threads=args.threads)
    t0 = time.perf_counter()
    source.write()
    write_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    source.compile()
    build_s = time.perf_counter() - t0
    source.run(words[:1000])  # warm the page cache for the executable
    cpu0 = _children_cpu()
    t0 = time.perf_counter()
    got = source.run(words)
    rtl_s = time.perf_counter() - t0
    rtl_cpu = _children_cpu() - cpu0
    mismatches = int(np.count_nonzero(np.any(got != expected, axis=1)))
    rtl_rate = args.events / rtl_s
    print(f"l1flow da4ml RTL (Verilator, {args.threads} threads): {rtl_rate:,.0f} events/s wall "
          f"({args.events} events in {rtl_s:.2f} s), {args.events / rtl_cpu:,.0f} events per CPU-second; "
          f"write {write_s:.1f} s, build {build_s:.1f} s; latency {source.latency_cycles} cycles, "
          f"da4ml estimate {source.estimated_luts:.0f} LUTs; load average {os.getloadavg()[0]:.1f}")
    print(f"NNEmulator: {args.events / emulator_s:,.0f} events/s; events differing from it: {mismatches}")

    result = {
        "events": args.events,
        "ae_rtl_events_per_s": round(rtl_rate),
        "ae_rtl_events_per_cpu_s": round(args.events / rtl_cpu),
        "ae_rtl_mismatches": mismatches,
        "ae_rtl_latency_cycles": source.latency_cycles,
        "ae_rtl_build_s": round(build_s, 1),
        "ae_rtl_write_s": round(write_s, 1),
        "emulator_events_per_s": round(args.events / emulator_s),
        "threads": args.threads,
        "load_average": round(os.getloadavg()[0], 1),
    }
    if not args.skip_reference:
        comb = trace_firmware_net(net)
        reference = VerilogModel(comb, "ae57", work / "da4ml_ref")
        t0 = time.perf_counter()
        reference.compile(nproc=args.threads)
        ref_build_s = time.perf_counter() - t0
        values = np.ldexp(words.astype(np.float64), -net.input.type.frac)
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        ref_out = reference.predict(values, n_threads=args.threads)
        ref_s = time.perf_counter() - t0
        ref_cpu = time.process_time() - cpu0
        ref_words = np.round(np.ldexp(np.asarray(ref_out, dtype=np.float64), net.output.type.frac)).astype(np.int64)
        ref_mismatches = int(np.count_nonzero(np.any(ref_words != expected, axis=1)))
        ref_rate = args.events / ref_s
        print(f"da4ml VerilogModel.predict (reference, {args.threads} threads): {ref_rate:,.0f} events/s wall, "
              f"{args.events / ref_cpu:,.0f} per CPU-second (build {ref_build_s:.1f} s); events differing from "
              f"the emulator: {ref_mismatches}")
        print(f"ratio l1flow / da4ml predict: {rtl_rate / ref_rate:.2f} wall, "
              f"{(args.events / rtl_cpu) / (args.events / ref_cpu):.2f} per CPU-second")
        result.update({
            "da4ml_predict_events_per_s": round(ref_rate),
            "da4ml_predict_mismatches": ref_mismatches,
            "da4ml_predict_build_s": round(ref_build_s, 1),
            "speedup_vs_da4ml_predict": round(rtl_rate / ref_rate, 2),
            "speedup_vs_da4ml_predict_cpu": round(ref_cpu / rtl_cpu, 2),
        })
    return result


if __name__ == "__main__":
    print(json.dumps(measure(parser().parse_args())))
