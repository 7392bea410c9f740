"""Synthesis jobs and their reports.

- :mod:`l1flow.synthesis.job`: the validated, content-hashed job and the
  runner interface (check / collect / run; cached by job hash, atomic results);
- :mod:`l1flow.synthesis.reports`: the one typed report and the parsers of
  Vitis HLS csynth XML, co-simulation reports and Vivado utilization reports;
- :mod:`l1flow.synthesis.vendor`: Vitis HLS / Vivado in batch (synthesis hosts);
- :mod:`l1flow.synthesis.yosys`: yosys ``synth_xilinx`` resource counts for open RTL;
"""

from __future__ import annotations

from l1flow.synthesis.job import SynthesisRunner


def runner_for(tool: str) -> SynthesisRunner:
    """The runner of ``tool``: yosys, or the vendor runner for vitis_hls / vivado."""
    from l1flow.synthesis.vendor import VendorRunner
    from l1flow.synthesis.yosys import YosysRunner

    for runner_class in (YosysRunner, VendorRunner):
        if tool in runner_class.tools:
            return runner_class()
    raise ValueError(f"no synthesis runner for tool {tool!r} (known: yosys, vitis_hls, vivado)")
