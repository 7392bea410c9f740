"""BDT RTL simulation: Verilator (ghdl synth Verilog) against GHDL on conifer's VHDL.

One xgboost BDT (default 100 trees of depth 4) is converted with conifer's
VHDL backend; the same input words go through GHDL (timed on a subset,
``--ghdl-events``, default 2,000: it runs at a few hundred events per
second), through Verilator (all ``--events``, default 200,000) and through
the l1flow emulator. Mismatches are counted on every event each simulator
ran. Build times are printed; the Verilator build is cached by RTL hash, so
a second run reuses it when ``--cache`` points at the same folder.

    .venv/bin/python benchmarks/bench_bdt_rtl.py [--events N] [--ghdl-events M] [--cache DIR]

The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

import l1flow  # noqa: F401  (sets the toolchain environment)
from l1flow.firmware.bdt_emulator import BDTEmulator
from l1flow.firmware.conifer_project import convert_xgboost
from l1flow.firmware.forest import FirmwareForest
from l1flow.hardware.ghdl import GHDLSource
from l1flow.hardware.verilator_bdt import VerilatorBDTSource


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--ghdl-events", type=int, default=2_000)
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--precision", default="ap_fixed<18,8>")
    parser.add_argument("--cache", type=Path, default=None, help="Verilator build cache folder to reuse")
    parser.add_argument("--seed", type=int, default=7)
    return parser


def measure(args: argparse.Namespace) -> dict[str, object]:
    """Print the comparison; return its numbers."""
    import xgboost as xgb

    rng = np.random.default_rng(args.seed)
    x_train = rng.normal(0, 2, size=(20_000, args.features))
    y_train = x_train[:, 0] + x_train[:, 1] ** 2 - x_train[:, 2] * x_train[:, 3] + rng.normal(0, 1, len(x_train)) > 1
    booster = xgb.train(
        {"max_depth": args.depth, "objective": "binary:logistic", "eta": 0.2, "nthread": 2},
        xgb.DMatrix(x_train, y_train.astype(int)),
        args.trees,
    )
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-bdt-rtl-") as tmp:
        project = Path(tmp) / "vhdl"
        start = time.perf_counter()
        model = convert_xgboost(
            booster, project, backend="vhdl", input_precision=args.precision,
            threshold_precision=args.precision, score_precision=args.precision,
            part="xcvu9p-flgb2104-2L-e", clock_period_ns=5.0,
        )
        timings["conifer_vhdl_s"] = time.perf_counter() - start
        emulator = BDTEmulator(FirmwareForest.from_conifer(model))
        words = emulator.quantize_inputs(rng.normal(0, 3, size=(args.events, args.features)))
        expected = emulator.predict_words(words)

        ghdl = GHDLSource(project)
        ghdl.write()
        start = time.perf_counter()
        ghdl.compile()
        timings["ghdl_compile_s"] = time.perf_counter() - start
        start = time.perf_counter()
        ghdl_out = ghdl.run(words[: args.ghdl_events])
        ghdl_s = time.perf_counter() - start

        verilator = VerilatorBDTSource(project, cache_dir=args.cache)
        start = time.perf_counter()
        verilator.write()
        timings["ghdl_synth_s"] = time.perf_counter() - start
        start = time.perf_counter()
        verilator.compile()
        timings["verilator_build_s"] = time.perf_counter() - start
        start = time.perf_counter()
        verilator_out = verilator.run(words)
        verilator_s = time.perf_counter() - start
        verilog_mb = verilator.verilog_path.stat().st_size / 1e6

    ghdl_rate = args.ghdl_events / ghdl_s
    verilator_rate = args.events / verilator_s
    ghdl_mismatches = int(np.count_nonzero(np.any(ghdl_out != expected[: args.ghdl_events], axis=1)))
    verilator_mismatches = int(np.count_nonzero(np.any(verilator_out != expected, axis=1)))
    verilator_vs_ghdl = int(np.count_nonzero(np.any(verilator_out[: args.ghdl_events] != ghdl_out, axis=1)))
    print(f"forest: {args.trees} trees, depth {args.depth}, {args.features} features, {args.precision}")
    print(", ".join(f"{k} {v:.1f}" for k, v in timings.items())
          + f" (Verilog {verilog_mb:.1f} MB)")
    print(f"GHDL: {ghdl_rate:,.0f} events/s (timed on {args.ghdl_events} events, files in and out included)")
    print(f"Verilator: {verilator_rate:,.0f} events/s (on {args.events} events, files in and out included)")
    print(f"speed-up {verilator_rate / ghdl_rate:,.0f}x; mismatching events: Verilator vs emulator "
          f"{verilator_mismatches}/{args.events}, GHDL vs emulator {ghdl_mismatches}/{args.ghdl_events}, "
          f"Verilator vs GHDL {verilator_vs_ghdl}/{args.ghdl_events}")
    return {
        "events": args.events,
        "ghdl_events": args.ghdl_events,
        "trees": args.trees,
        "depth": args.depth,
        "bdt_rtl_events_per_s": round(verilator_rate),
        "ghdl_events_per_s": round(ghdl_rate, 1),
        "bdt_rtl_speedup_vs_ghdl": round(verilator_rate / ghdl_rate, 1),
        "bdt_rtl_mismatches": verilator_mismatches,
        "ghdl_mismatches": ghdl_mismatches,
        "verilator_vs_ghdl_mismatches": verilator_vs_ghdl,
        **{k: round(v, 1) for k, v in timings.items()},
    }


if __name__ == "__main__":
    print(json.dumps(measure(parser().parse_args())))
