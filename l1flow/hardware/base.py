"""The one interface every source of hardware results implements.

Like conifer's backends, each source is a small class with the same verbs:

- ``write()``   lay out the project it simulates or reads (RTL, harness, files);
- ``compile()`` build the simulator (a no-op for imported results);
- ``run(input_words)`` return output words for the given input words;
- ``synthesis_job(tool, ...)`` the RTL it simulates as a synthesis job, for
  sources that simulate synthesizable RTL (None for the others).

``simulate`` is shared: it runs a saved stimulus set and returns (and saves)
the result set in the test-vector format, so every source, whether an RTL
simulator, a vendor co-simulation or a board capture, is compared the same way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np

from l1flow.firmware.vectors import VectorSet
from l1flow.synthesis.job import SynthesisJob

#: synthesis tools that take a source's RTL as it is (Vitis HLS starts from C++ instead)
RTLTool = Literal["yosys", "vivado"]


class HardwareSource(ABC):
    """A producer of hardware output words for given input words."""

    #: short name recorded as the result's ``source`` (e.g. "ghdl", "verilator")
    source: ClassVar[str]

    def __init__(self, project_dir: Path) -> None:
        self.project_dir = Path(project_dir)
        #: clock cycles from input to output that the last ``run`` observed; None where not measured
        self.measured_latency_cycles: int | None = None

    @abstractmethod
    def write(self) -> None:
        """Write the files the simulator needs into ``project_dir``."""

    @abstractmethod
    def compile(self) -> None:
        """Build the simulator; raise ToolMissingError naming a missing tool."""

    @abstractmethod
    def run(self, input_words: np.ndarray) -> np.ndarray:
        """Output words (events, outputs) for input words (events, inputs)."""

    def synthesis_job(
        self, tool: RTLTool, part: str, clock_period_ns: float, timeout_s: float
    ) -> SynthesisJob | None:
        """The RTL this source simulates, as a job for ``tool``; None if it simulates none.

        Call after ``write()``: the job hashes the files it names.
        """
        return None

    def simulate(self, stimulus: VectorSet, result_dir: Path | None = None) -> VectorSet:
        """Run a saved stimulus set; return its result set, saved if a folder is given."""
        if stimulus.input_words is None:
            raise ValueError("the stimulus set has no input words")
        output_words = np.asarray(self.run(stimulus.input_words), dtype=np.int64)
        result = stimulus.result(output_words, source=self.source)
        if result_dir is not None:
            result.save(result_dir)
        return result
