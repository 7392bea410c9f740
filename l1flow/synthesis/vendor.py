"""Vendor synthesis: Vitis HLS and Vivado in batch mode, on a synthesis machine.

The runner uses the Tcl the generators write, with the options they read:

- hls4ml (Vitis backend): ``build_prj.tcl`` sources ``build_opt.tcl`` (``array
  set opt {reset csim synth cosim validation export vsynth fifo_opt}``);
  reports under ``<project>_prj/solution1/``; ``vivado_synth.tcl`` reads the
  HLS Verilog and writes ``vivado_synth.rpt``;
- conifer xilinxhls: ``build_hls.tcl`` sources ``hls_parameters.tcl`` and
  ``build_opt.tcl`` (``reset csim synth cosim export``); reports under
  ``<project>/solution1/``; ``vivado_synth.tcl`` writes ``vivado_synth.rpt``;
- conifer vhdl: ``vivado -mode batch -source synth.tcl`` writes ``util.rpt``;
- open RTL: ``firmware_templates/tcl/vivado_synth_rtl.tcl`` (out-of-context
  synthesis of the job's sources) writes ``vivado_synth.rpt``.

HLS runs as ``vitis_hls -f <script>`` (or ``vitis-run --mode hls --tcl
<script>`` where only the unified Vitis ≥ 2025.1 CLI exists). The generator's
own vsynth hook is switched off: Vivado runs as its own command so it gets its
own log and the job's remaining time. C simulation is not a synthesis step
(the bit-exact check runs elsewhere), so ``csim`` is always 0.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import ClassVar

from l1flow.synthesis.job import (
    SynthesisError,
    SynthesisJob,
    SynthesisRunner,
    run_tool,
    with_generator_latency,
)
from l1flow.synthesis.reports import (
    SynthesisReport,
    parse_cosim_rpt,
    parse_csynth_xml,
    parse_vivado_synth_rpt,
)
from l1flow.templates import template_path
from l1flow.toolchain import ToolMissingError, require_executable

TEMPLATE_DIR = template_path("tcl")
RTL_SYNTH_TCL = "vivado_synth_rtl.tcl"

_VIVADO_HINT = "Run vendor jobs on a synthesis machine with Vivado's settings64.sh sourced."


def hls_command(script: str) -> list[str]:
    """The batch command running an HLS Tcl script, or ToolMissingError naming vitis_hls."""
    classic = shutil.which("vitis_hls")
    if classic is not None:
        return [classic, "-f", script]
    unified = shutil.which("vitis-run")
    if unified is not None:
        return [unified, "--mode", "hls", "--tcl", script]
    raise ToolMissingError(
        "vitis_hls",
        "HLS C synthesis / co-simulation / IP export",
        "Neither vitis_hls nor vitis-run is on PATH. " + _VIVADO_HINT,
    )


def vivado_command(script: str, tclargs: list[str] | None = None) -> list[str]:
    vivado = require_executable("vivado", "Vivado synthesis (vsynth)", _VIVADO_HINT)
    command = [vivado, "-mode", "batch", "-nojournal", "-source", script]
    if tclargs:
        command += ["-tclargs", *tclargs]
    return command


def _tcl_settings(path: Path) -> dict[str, str]:
    """``set name value`` lines of a generator's Tcl settings file (quotes removed)."""
    settings: dict[str, str] = {}
    for line in path.read_text(errors="replace").splitlines():
        match = re.match(r"\s*set\s+(\w+)\s+\"?([^\"\s]+)\"?\s*$", line)
        if match:
            settings[match.group(1)] = match.group(2)
    return settings


def check_project_settings(job: SynthesisJob, path: Path) -> None:
    """The generator fixed part and clock in the project; the job must agree."""
    settings = _tcl_settings(path)
    part = settings.get("part")
    if part is not None and part.lower() != job.part.lower():
        raise SynthesisError(
            f"{path}: the project targets part {part}, the job says {job.part}; "
            "regenerate the project for the job's part or fix the job"
        )
    clock = settings.get("clock_period")
    if clock is not None:
        try:
            mismatch = abs(float(clock) - job.clock_period_ns) > 1e-9
        except ValueError:
            mismatch = False
        if mismatch:
            raise SynthesisError(
                f"{path}: the project's clock_period is {clock} ns, the job says {job.clock_period_ns} ns"
            )


def _write_build_options(path: Path, options: dict[str, bool]) -> None:
    lines = ["array set opt {"] + [f"    {name} {int(value)}" for name, value in options.items()] + ["}"]
    path.write_text("\n".join(lines) + "\n")


class VendorRunner(SynthesisRunner):
    """Vitis HLS (csynth, cosim, export) and Vivado (vsynth) in batch mode."""

    tools: ClassVar[frozenset[str]] = frozenset({"vitis_hls", "vivado"})

    def check(self, job: SynthesisJob) -> None:
        if job.tool == "vitis_hls":
            hls_command("build_prj.tcl")
        if job.tool == "vivado" or "vsynth" in job.steps:
            vivado_command("vivado_synth.tcl")

    # ------------------------------------------------------------ layout

    def solution_dir(self, job: SynthesisJob, project_dir: Path) -> Path:
        """Where the HLS tool writes ``solution1`` for this generator."""
        if job.project_kind == "hls4ml":
            return Path(project_dir) / f"{job.name}_prj" / "solution1"
        return Path(project_dir) / job.name / "solution1"

    def hls_verilog_dir(self, job: SynthesisJob, project_dir: Path) -> Path:
        """The Verilog that C synthesis wrote (brought back for Verilator simulation).

        ``project_dir`` is a finished run's ``<result>/project`` folder.
        """
        folder = self.solution_dir(job, project_dir) / "syn" / "verilog"
        if not folder.is_dir() or not any(folder.glob("*.v")):
            raise SynthesisError(f"{folder}: no HLS Verilog; run the job with step csynth first")
        return folder

    def utilisation_report(self, job: SynthesisJob, project_dir: Path) -> Path:
        if job.project_kind == "conifer" and job.conifer_flavour(project_dir) == "vhdl":
            return Path(project_dir) / "util.rpt"
        return Path(project_dir) / "vivado_synth.rpt"

    # ------------------------------------------------------------ verbs

    def execute(self, job: SynthesisJob, project_dir: Path, log_dir: Path, deadline: float) -> None:
        hls_steps = {"csynth", "cosim", "export"} & set(job.steps)
        if job.tool == "vitis_hls" and hls_steps:
            self._run_hls(job, project_dir, log_dir, deadline)
        if "vsynth" in job.steps:
            self._run_vivado(job, project_dir, log_dir, deadline)

    def _run_hls(self, job: SynthesisJob, project_dir: Path, log_dir: Path, deadline: float) -> None:
        steps = set(job.steps)
        if job.project_kind == "hls4ml":
            check_project_settings(job, project_dir / "project.tcl")
            backend = _tcl_settings(project_dir / "project.tcl").get("backend", "")
            if backend.lower() != "vitis":
                # only the Vitis template reads build_opt.tcl; the Vivado one reads Vivado HLS argv
                raise SynthesisError(
                    f"{project_dir / 'project.tcl'}: written by hls4ml's {backend or 'unknown'!r} backend; "
                    "the vendor runner builds Vitis projects: convert with backend='Vitis'"
                )
            script = "build_prj.tcl"
            options = {
                "reset": True,
                "csim": False,
                "synth": "csynth" in steps,
                "cosim": "cosim" in steps,
                "validation": False,
                "export": "export" in steps,
                "vsynth": False,
                "fifo_opt": False,
            }
        else:
            check_project_settings(job, project_dir / "hls_parameters.tcl")
            script = "build_hls.tcl"
            options = {
                "reset": True,
                "csim": False,
                "synth": "csynth" in steps,
                "cosim": "cosim" in steps,
                "export": "export" in steps,
            }
        _write_build_options(project_dir / "build_opt.tcl", options)
        run_tool(hls_command(script), project_dir, log_dir / "hls.log", deadline)

    def _run_vivado(self, job: SynthesisJob, project_dir: Path, log_dir: Path, deadline: float) -> None:
        if job.project_kind == "rtl":
            shutil.copy2(TEMPLATE_DIR / RTL_SYNTH_TCL, project_dir / RTL_SYNTH_TCL)
            args = [job.top, job.part, f"{job.clock_period_ns:g}", *(p.as_posix() for p in job.rtl_files)]
            command = vivado_command(RTL_SYNTH_TCL, args)
        elif job.project_kind == "conifer" and job.conifer_flavour(project_dir) == "vhdl":
            script = project_dir / "synth.tcl"
            declared = re.search(r"-part\s+(\S+)", script.read_text())
            if declared and declared.group(1).lower() != job.part.lower():
                raise SynthesisError(f"{script}: synthesizes for part {declared.group(1)}, the job says {job.part}")
            command = vivado_command("synth.tcl")
        else:
            if not (project_dir / "vivado_synth.tcl").is_file():
                raise SynthesisError(f"{project_dir / 'vivado_synth.tcl'}: missing; the generator writes it")
            command = vivado_command("vivado_synth.tcl")
        run_tool(command, project_dir, log_dir / "vivado.log", deadline)

    def collect(self, job: SynthesisJob, project_dir: Path) -> SynthesisReport:
        """Merge csynth, cosim and Vivado reports found for the job's steps."""
        project_dir = Path(project_dir)
        parts: list[SynthesisReport] = []
        if job.tool == "vitis_hls" and "csynth" in job.steps:
            solution = self.solution_dir(job, project_dir)
            parts.append(parse_csynth_xml(solution / "syn" / "report" / f"{job.top}_csynth.xml"))
        if "cosim" in job.steps:
            cosim_path = self.solution_dir(job, project_dir) / "sim" / "report" / f"{job.top}_cosim.rpt"
            cosim = parse_cosim_rpt(cosim_path)
            if cosim.cosim_status != "Pass":
                raise SynthesisError(
                    f"{cosim_path}: co-simulation status is {cosim.cosim_status!r}, not 'Pass'; "
                    "see the HLS log for the failing transaction"
                )
            parts.append(cosim)
        if "vsynth" in job.steps:
            parts.append(parse_vivado_synth_rpt(self.utilisation_report(job, project_dir)))
        if not parts:
            raise SynthesisError(f"job steps {list(job.steps)} produce no report to collect")
        report = parts[0]
        for later in parts[1:]:
            report = report.merged(later)
        report = report.model_copy(
            update={
                "part": report.part or job.part,
                "top": report.top or job.top,
                "clock_target_ns": report.clock_target_ns or job.clock_period_ns,
            }
        )
        return with_generator_latency(report, job, project_dir)
