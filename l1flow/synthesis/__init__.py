"""Synthesis jobs and their reports.

- :mod:`l1flow.synthesis.job`: the validated, content-hashed job and the
  runner interface (check / collect / run; cached by job hash, atomic results);
- :mod:`l1flow.synthesis.reports`: the one typed report and the parsers of
  Vitis HLS csynth XML, co-simulation reports and Vivado utilization reports;
- :mod:`l1flow.synthesis.vendor`: Vitis HLS / Vivado in batch (synthesis hosts);
- :mod:`l1flow.synthesis.yosys`: yosys ``synth_xilinx`` resource counts for open RTL;
- :mod:`l1flow.synthesis.cli`: ``l1flow synth run``, ``synth report``, ``gate``.
"""
