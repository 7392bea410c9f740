"""conifer's VHDL BDT simulated by GHDL, event words in and out as raw integers.

The project folder is the one conifer's VHDL backend writes (``firmware/``
with ``Constants.vhd``, ``Arrays<k>.vhd``, ``BDTTop.vhd``...). l1flow analyses
those sources itself into ``ghdl_work/`` (so an edited source is always
re-read) and adds its own test bench (firmware_templates/ghdl/) that streams
one event per clock from a word file and writes the output words. GHDL's
``integer`` is 32 bits, which bounds the word width this bench can carry.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from l1flow.errors import L1flowError
from l1flow.firmware.vectors import read_words, write_words
from l1flow.hardware.base import HardwareSource
from l1flow.templates import template_path
from l1flow.toolchain import require_executable

GHDL_WORKDIR = "ghdl_work"
TESTBENCH = "l1flow_bdt_tb"
GHDL_STD = "--std=08"

# conifer's analysis order (its ghdl_compile.sh): packages, leaf entities, the
# per-class constant arrays, then the BDT and its top level.
_BDT_SOURCES_BEFORE_ARRAYS = ("Constants.vhd", "Split.vhd", "Types.vhd", "Tree.vhd", "AddReduce.vhd")
_BDT_SOURCES_AFTER_ARRAYS = ("BDT.vhd", "BDTTop.vhd")


class HardwareRunError(L1flowError):
    """A simulator ran but failed or produced unusable output."""


@dataclass(frozen=True)
class ConiferVHDLProject:
    """The shape of a conifer VHDL project, read from its ``Constants.vhd``."""

    folder: Path
    n_features: int
    n_classes: int  # output words per event (1 for binary classification)
    word_width: int  # bits of tx / ty (conifer uses one type for both)
    n_trees: int
    max_depth: int

    @property
    def sources(self) -> list[Path]:
        """VHDL files of library BDT in analysis order."""
        firmware = self.folder / "firmware"
        arrays = sorted(
            firmware.glob("Arrays*.vhd"), key=lambda p: int(re.sub(r"\D", "", p.stem) or 0)
        )
        return (
            [firmware / name for name in _BDT_SOURCES_BEFORE_ARRAYS]
            + arrays
            + [firmware / name for name in _BDT_SOURCES_AFTER_ARRAYS]
        )


def read_conifer_vhdl_project(folder: Path | str) -> ConiferVHDLProject:
    """Read the constants of a conifer VHDL project, with a clear error if it is not one."""
    folder = Path(folder)
    constants = folder / "firmware" / "Constants.vhd"
    if not constants.exists():
        raise FileNotFoundError(
            f"{constants} is missing: {folder} is not a conifer VHDL project "
            "(make it with l1flow.firmware.conifer_project.convert_xgboost(..., backend='vhdl'))"
        )
    text = constants.read_text()

    def integer_constant(name: str) -> int:
        match = re.search(rf"constant\s+{name}\s*:\s*integer\s*:=\s*(-?\d+)\s*;", text, re.IGNORECASE)
        if match is None:
            raise ValueError(f"{constants}: no 'constant {name} : integer := ...;' line")
        return int(match.group(1))

    width = re.search(r"subtype\s+tx\s+is\s+signed\s*\(\s*(\d+)\s+downto\s+0\s*\)", text, re.IGNORECASE)
    if width is None:
        raise ValueError(f"{constants}: no 'subtype tx is signed(N downto 0);' line")
    project = ConiferVHDLProject(
        folder=folder,
        n_features=integer_constant("nFeatures"),
        n_classes=integer_constant("nClasses"),
        word_width=int(width.group(1)) + 1,
        n_trees=integer_constant("nTrees"),
        max_depth=integer_constant("maxDepth"),
    )
    missing = [str(p) for p in project.sources if not p.exists()]
    if missing:
        raise FileNotFoundError(f"conifer VHDL project {folder} lacks {', '.join(missing)}")
    return project


def check_word_range(words: np.ndarray, width: int, what: str) -> None:
    """Signed `width`-bit words only: a wider value would wrap silently in the RTL."""
    low, high = -(1 << (width - 1)), (1 << (width - 1)) - 1
    if words.size and (words.min() < low or words.max() > high):
        bad = np.argwhere((words < low) | (words > high))[0]
        raise ValueError(
            f"{what}: event {bad[0]}, word {bad[1]} is {words[tuple(bad)]}, outside the "
            f"signed {width}-bit range [{low}, {high}]; quantize the inputs to the firmware's input type"
        )


def _run_tool(command: list[str], cwd: Path, what: str, log: Path) -> None:
    """Run one tool command; on failure raise with the tail of its output."""
    completed = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    log.write_text(completed.stdout + completed.stderr)
    if completed.returncode != 0:
        tail = (completed.stdout + completed.stderr)[-3000:]
        raise HardwareRunError(
            f"{what} failed (exit {completed.returncode}) in {cwd}: `{' '.join(command)}`\n{tail}\n"
            f"(full output in {log})"
        )


def analyse_bdt_library(project: ConiferVHDLProject, ghdl: str, workdir_name: str) -> Path:
    """Analyse the project's VHDL into library BDT in a fresh ``workdir_name/``.

    GHDL runs inside that folder: it looks for libraries in the current
    directory too, where conifer's own compile leaves its (possibly stale)
    ``bdt-obj08.cf``.
    """
    workdir = project.folder / workdir_name
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir()
    for source in project.sources:
        _run_tool(
            [ghdl, "-a", GHDL_STD, "--work=BDT", os.path.relpath(source, workdir)],
            workdir,
            f"GHDL analysis of {source.name}",
            workdir / "analyse.log",
        )
    return workdir


class GHDLSource(HardwareSource):
    """conifer's VHDL BDT simulated by GHDL, one event per clock."""

    source = "ghdl"

    def __init__(self, project_dir: Path) -> None:
        super().__init__(project_dir)
        self.project = read_conifer_vhdl_project(self.project_dir)
        if self.project.word_width > 32:
            raise ValueError(
                f"{self.project_dir}: {self.project.word_width}-bit words; the GHDL test bench "
                "carries words in VHDL integers (32 bits). Use a type of at most 32 bits."
            )
        self._ghdl: str | None = None

    @property
    def testbench_path(self) -> Path:
        return self.project_dir / "firmware" / f"{TESTBENCH}.vhd"

    def write(self) -> None:
        shutil.copyfile(template_path("ghdl", f"{TESTBENCH}.vhd"), self.testbench_path)

    def compile(self) -> None:
        ghdl = require_executable("ghdl", "simulating the conifer VHDL BDT", "Install Debian's 'ghdl' package.")
        if not self.testbench_path.exists():
            self.write()
        workdir = analyse_bdt_library(self.project, ghdl, GHDL_WORKDIR)
        for command, what in (
            ([ghdl, "-a", GHDL_STD, "--work=l1flow", os.path.relpath(self.testbench_path, workdir)],
             "GHDL analysis of the l1flow test bench"),
            ([ghdl, "-e", GHDL_STD, "--work=l1flow", TESTBENCH],
             "GHDL elaboration of the l1flow test bench"),
        ):
            _run_tool(command, workdir, what, workdir / "testbench.log")
        self._ghdl = ghdl

    def run(self, input_words: np.ndarray) -> np.ndarray:
        if self._ghdl is None:
            raise RuntimeError("GHDLSource.compile() must run before run()")
        words = np.asarray(input_words, dtype=np.int64)
        if words.ndim != 2 or words.shape[1] != self.project.n_features:
            raise ValueError(
                f"input words have shape {words.shape}; this BDT takes (events, {self.project.n_features})"
            )
        check_word_range(words, self.project.word_width, "input words")
        with tempfile.TemporaryDirectory(prefix="l1flow-ghdl-") as tmp:
            inputs = Path(tmp) / "inputs.txt"
            outputs = Path(tmp) / "outputs.txt"
            write_words(inputs, words)
            _run_tool(
                [
                    self._ghdl, "-r", GHDL_STD, "--work=l1flow", TESTBENCH,
                    "--ieee-asserts=disable-at-0",
                    # the forest's constant arrays outgrow mcode's default 128 KB stack limit
                    "--max-stack-alloc=0",
                    f"-gINPUT_FILE={inputs}", f"-gOUTPUT_FILE={outputs}",
                ],
                self.project_dir / GHDL_WORKDIR,
                "GHDL simulation",
                self.project_dir / GHDL_WORKDIR / "run.log",
            )
            result = read_words(outputs, self.project.n_classes)
        if len(result) != len(words):
            raise HardwareRunError(
                f"GHDL wrote {len(result)} output events for {len(words)} input events"
            )
        return result
