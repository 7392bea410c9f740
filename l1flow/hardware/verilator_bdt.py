"""conifer's VHDL BDT turned into Verilog by ``ghdl synth`` and simulated by Verilator.

The same RTL that GHDL simulates, compiled to a C++ model: a harness
(firmware_templates/verilator_bdt/) streams one event per clock from a word
file and writes the output words as the valid signal brings them out, with
no Python per event. It is built like every Verilated design in l1flow
(cached by a content hash of the Verilog without ghdl's source-path comments,
the harness and the build settings), so a rebuild happens only when the RTL
changed.
"""

from __future__ import annotations

import math
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from l1flow.fileio import write_text_atomic
from l1flow.firmware.vectors import read_words, write_words
from l1flow.hardware.base import HardwareSource, RTLTool
from l1flow.hardware.ghdl import (
    GHDL_STD,
    HardwareRunError,
    analyse_bdt_library,
    check_word_range,
    read_conifer_vhdl_project,
)
from l1flow.hardware.verilator import RTLBuildError, build_verilated_harness
from l1flow.synthesis.job import SynthesisJob
from l1flow.templates import template_path
from l1flow.toolchain import require_executable

HARNESS = template_path("verilator_bdt", "bdt_harness.cpp")
TOP = "BDTTop"
VERILOG_DIR = "verilog"
BUILD_DIR = "verilator_build"
# its own GHDL library folder, so a GHDLSource on the same project keeps its own
SYNTH_WORKDIR = "ghdl_synth_work"



def _strip_comments(text: str) -> str:
    stripped = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    return re.sub(r"//[^\n]*", "", stripped)


class VerilatorBDTSource(HardwareSource):
    """conifer VHDL -> ghdl synth Verilog -> Verilator, one event per clock.

    ``cache_dir`` holds the built simulators by content hash (default: the
    project's ``verilator_build/``); share one across projects to reuse builds.
    """

    source = "verilator"

    def __init__(self, project_dir: Path, cache_dir: Path | None = None, build_jobs: int = 2) -> None:
        super().__init__(project_dir)
        self.project = read_conifer_vhdl_project(self.project_dir)
        if self.project.word_width > 64:
            raise ValueError(f"{self.project_dir}: {self.project.word_width}-bit words do not fit int64")
        self.cache_dir = Path(cache_dir) if cache_dir is not None else self.project_dir / BUILD_DIR
        self.build_jobs = build_jobs
        self.simulator: Path | None = None

    @property
    def verilog_path(self) -> Path:
        return self.project_dir / VERILOG_DIR / f"{TOP}.v"

    def write(self) -> None:
        """Analyse the VHDL and write ``verilog/BDTTop.v`` with ``ghdl synth``."""
        ghdl = require_executable("ghdl", "turning the conifer VHDL into Verilog (ghdl synth)",
                                  "Install Debian's 'ghdl' package.")
        workdir = analyse_bdt_library(self.project, ghdl, SYNTH_WORKDIR)
        command = [ghdl, "synth", GHDL_STD, "--work=BDT", "--out=verilog", TOP]
        completed = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
        (workdir / "synth.log").write_text(completed.stderr)
        if completed.returncode != 0 or f"module {TOP}" not in completed.stdout:
            raise HardwareRunError(
                f"`{' '.join(command)}` in {workdir} failed (exit {completed.returncode}):\n"
                f"{completed.stderr[-3000:]}"
            )
        self.verilog_path.parent.mkdir(exist_ok=True)
        # ghdl writes source paths into comments: without them the same forest
        # gives the same file (and build and synthesis cache keys) in any folder.
        write_text_atomic(self.verilog_path, _strip_comments(completed.stdout))

    def _defines(self) -> list[str]:
        return [
            f"-DN_FEATURES={self.project.n_features}",
            f"-DN_CLASSES={self.project.n_classes}",
            f"-DWORD_WIDTH={self.project.word_width}",
        ]

    def compile(self) -> None:
        """Build the simulator, or reuse the cached build of identical RTL."""
        if not self.verilog_path.exists():
            self.write()
        config = "".join(f"#define {d.removeprefix('-D').replace('=', ' ', 1)}\n" for d in self._defines())
        try:
            self.simulator = build_verilated_harness(
                {f"{TOP}.v": self.verilog_path.read_text()},
                TOP,
                HARNESS,
                {"bdt_config.h": config},
                cache_dir=self.cache_dir,
                jobs=self.build_jobs,
                what=f"the BDT RTL {self.verilog_path}",
            )
        except RTLBuildError as error:
            raise HardwareRunError(str(error)) from error

    def synthesis_job(
        self, tool: RTLTool, part: str, clock_period_ns: float, timeout_s: float
    ) -> SynthesisJob:
        """yosys: the Verilog simulated here; Vivado: conifer's VHDL project it came from.

        conifer's VHDL pipeline takes 1 + depth + ceil(log2(trees)) clocks at II = 1
        (conifer/backends/vhdl/writer.py); yosys and Vivado synthesis do not time it.
        """
        common: dict[str, Any] = dict(
            project_dir=self.project_dir,
            tool=tool,
            part=part,
            clock_period_ns=clock_period_ns,
            top=TOP,
            latency_cycles=1 + self.project.max_depth + math.ceil(math.log2(max(self.project.n_trees, 1))),
            ii_cycles=1,
            timeout_s=timeout_s,
        )
        if tool == "yosys":
            if not self.verilog_path.exists():
                raise HardwareRunError(f"{self.verilog_path}: missing; call write() first")
            return SynthesisJob(
                project_kind="rtl", steps=("synth",), rtl_files=(Path(VERILOG_DIR) / f"{TOP}.v",), **common
            )
        return SynthesisJob(project_kind="conifer", steps=("vsynth",), **common)

    def run(self, input_words: np.ndarray) -> np.ndarray:
        if self.simulator is None:
            raise RuntimeError("VerilatorBDTSource.compile() must run before run()")
        words = np.asarray(input_words, dtype=np.int64)
        if words.ndim != 2 or words.shape[1] != self.project.n_features:
            raise ValueError(
                f"input words have shape {words.shape}; this BDT takes (events, {self.project.n_features})"
            )
        check_word_range(words, self.project.word_width, "input words")
        with tempfile.TemporaryDirectory(prefix="l1flow-verilator-") as tmp:
            inputs = Path(tmp) / "inputs.txt"
            outputs = Path(tmp) / "outputs.txt"
            write_words(inputs, words)
            completed = subprocess.run(
                [str(self.simulator), str(inputs), str(outputs)], capture_output=True, text=True
            )
            if completed.returncode != 0:
                raise HardwareRunError(
                    f"the Verilator BDT simulation {self.simulator} failed (exit {completed.returncode}): "
                    f"{completed.stderr[-2000:]}"
                )
            result = read_words(outputs, self.project.n_classes)
        if len(result) != len(words):
            raise HardwareRunError(f"Verilator wrote {len(result)} output events for {len(words)} input events")
        return result
