"""Hardware-in-the-loop speed: the AE's RTL and the BDT's RTL, each against its reference.

- AE: the 57-32-16-3-16-32-57 QKeras autoencoder's da4ml RTL on Verilator
  (l1flow's streaming harness), side by side with da4ml's own
  ``VerilogModel.predict`` (bench_nn_rtl.py);
- BDT: 100 trees of depth 4 through conifer's VHDL, as Verilog on Verilator
  against GHDL on the VHDL itself; GHDL is timed on a subset
  (``--ghdl-events``) because it runs at a few hundred events per second
  (bench_bdt_rtl.py).

Mismatches are counted against l1flow's bit-exact emulators on every event.
The last line printed is one JSON object.

    .venv/bin/python benchmarks/hardware.py [--events 200000] [--ghdl-events 2000]
"""

from __future__ import annotations

import argparse
import json
import os

import bench_bdt_rtl
import bench_nn_rtl


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="events through each RTL simulation")
    parser.add_argument("--ghdl-events", type=int, default=2_000, help="BDT events GHDL is timed on")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    ae = bench_nn_rtl.measure(bench_nn_rtl.parser().parse_args(
        ["--events", str(args.events), "--threads", str(args.threads)]))
    bdt = bench_bdt_rtl.measure(bench_bdt_rtl.parser().parse_args(
        ["--events", str(args.events), "--ghdl-events", str(args.ghdl_events), "--trees", "100", "--depth", "4"]))
    print(json.dumps({
        "events": args.events,
        "ae_rtl_events_per_s": ae["ae_rtl_events_per_s"],
        "ae_rtl_mismatches": ae["ae_rtl_mismatches"],
        "ae_rtl_events_per_s_vs_da4ml_predict": ae.get("speedup_vs_da4ml_predict"),
        "bdt_rtl_events_per_s": bdt["bdt_rtl_events_per_s"],
        "bdt_rtl_speedup_vs_ghdl": bdt["bdt_rtl_speedup_vs_ghdl"],
        "bdt_rtl_mismatches": bdt["bdt_rtl_mismatches"],
        "ghdl_events": args.ghdl_events,
        "ghdl_mismatches": bdt["ghdl_mismatches"],
        "bdt_trees": 100,
        "bdt_depth": 4,
        "threads": args.threads,
        "load_average": round(os.getloadavg()[0], 1),
    }))


if __name__ == "__main__":
    main()
