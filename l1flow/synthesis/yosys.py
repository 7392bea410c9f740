"""Open synthesis: yosys ``synth_xilinx`` resource counts for open RTL.

yosys maps the job's Verilog onto Xilinx primitives of the part's family
(``-family xc7 | xcu | xcup``), out of context (``-noiopad -noclkbuf``: the
design is a core, not a chip), flattened so ``stat -json`` counts the whole
design. The counts become the report's resources:

- LUT: LUT1..LUT6 (LUT6_2 counts one site) and INV, plus the LUTs used as memory
  (SRL16E/SRLC32E one each, RAM32X1D/RAM64X1D two, RAM32M/RAM64M/RAM128X1D/
  RAM256X1S four), as Vivado's "CLB LUTs" does;
- FF: every FD* flip-flop and LD* latch; carry: CARRY4/CARRY8;
- DSP: DSP48E1/DSP48E2; BRAM in 18 Kb units: RAMB18* one, RAMB36* two;
  URAM: URAM288.

yosys does no timing, so latency comes from the RTL generator (the job's
``latency_cycles`` or its sidecar ``metadata_file``). What shows whether a
design can close timing is its logic depth: yosys ``ltp`` on the mapped
netlist with the flip-flops left out, so every path runs from a register or
input to a register or output, counted in mapped cells (LUTs, carry blocks,
muxes). A job's ``depth_modules`` (a pipeline's stages) are kept as their own
hierarchy and get one figure each; otherwise the flattened top gets one.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import ClassVar

from l1flow.synthesis.job import (
    SynthesisError,
    SynthesisJob,
    SynthesisRunner,
    run_tool,
    with_generator_latency,
)
from l1flow.synthesis.reports import Resources, SynthesisReport, device_totals
from l1flow.toolchain import yosys_command

SCRIPT_FILE = "l1flow_synth.ys"
STAT_FILE = "yosys_stat.json"
LTP_FILE = "yosys_ltp.txt"
# every module's cells except flip-flops and latches, so ltp's paths end at registers
_COMBINATIONAL_CELLS = "* t:FD* %d t:LD* %d"
_LTP_RE = re.compile(r"^Longest topological path in \\?(\S+) \(length=(\d+)\)", re.MULTILINE)
VERILOG_SUFFIXES = (".v", ".sv", ".vh", ".svh")

_LUTS_PER_CELL: dict[str, int] = {
    "SRL16E": 1,
    "SRLC16E": 1,
    "SRLC32E": 1,
    "RAM32X1S": 1,
    "RAM64X1S": 1,
    "RAM32X1D": 2,
    "RAM64X1D": 2,
    "RAM128X1S": 2,
    "RAM32M": 4,
    "RAM32M16": 8,
    "RAM64M": 4,
    "RAM64M8": 8,
    "RAM128X1D": 4,
    "RAM256X1S": 4,
    "RAM256X1D": 8,
    "RAM512X1S": 8,
}


def resources_from_cells(cells: dict[str, int]) -> Resources:
    """Resource counts of a yosys ``num_cells_by_type`` mapping (see the module docstring)."""
    lut = ff = carry = dsp = bram = uram = 0
    for name, count in cells.items():
        if re.fullmatch(r"LUT[1-6](_2)?", name) or name == "INV":  # yosys keeps inverters Vivado folds into LUTs
            lut += count
        elif name in _LUTS_PER_CELL:
            lut += _LUTS_PER_CELL[name] * count
        elif re.fullmatch(r"(FD|LD)[A-Z0-9_]*", name):
            ff += count
        elif name in ("CARRY4", "CARRY8"):
            carry += count
        elif name.startswith("DSP48"):
            dsp += count
        elif re.fullmatch(r"(RAMB18|FIFO18)\w*", name):
            bram += count
        elif re.fullmatch(r"(RAMB36|FIFO36)\w*", name):
            bram += 2 * count
        elif name.startswith("URAM288"):
            uram += count
    return Resources(lut=lut, ff=ff, carry=carry, dsp=dsp, bram_18k=bram, uram=uram)


def parse_yosys_stat_json(path: Path) -> tuple[dict[str, int], str | None]:
    """Cell counts of the whole design from yosys ``stat -json`` output, and the yosys version."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise SynthesisError(f"{path}: yosys statistics not found (did synthesis finish?)") from exc
    except json.JSONDecodeError as exc:
        raise SynthesisError(f"{path}: yosys statistics are not valid JSON ({exc})") from exc
    design = data.get("design")
    if design is None:
        modules = data.get("modules") or {}
        if len(modules) != 1:
            raise SynthesisError(
                f"{path}: no 'design' entry and {len(modules)} modules; synthesize flattened with a top"
            )
        design = next(iter(modules.values()))
    cells = design.get("num_cells_by_type")
    if not isinstance(cells, dict):
        raise SynthesisError(f"{path}: no 'num_cells_by_type' in the design statistics")
    creator = re.search(r"Yosys (\S+)", str(data.get("creator", "")))
    return {str(name): int(count) for name, count in cells.items()}, creator.group(1) if creator else None


def parse_yosys_ltp(path: Path, modules: tuple[str, ...]) -> dict[str, int]:
    """Logic depth (cells on the longest path) of each of ``modules`` from yosys ``ltp`` output."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError as exc:
        raise SynthesisError(f"{path}: yosys logic depth not found (did synthesis finish?)") from exc
    depth = {name: int(length) for name, length in _LTP_RE.findall(text)}
    missing = [m for m in modules if m not in depth]
    if missing:
        raise SynthesisError(f"{path}: yosys ltp reports no logic depth for module(s) {missing}")
    return {m: depth[m] for m in modules}


def yosys_script(job: SynthesisJob) -> str:
    """The yosys script for the job (file names were validated by the job)."""
    lines = [f"read_verilog -sv {p.as_posix()}" for p in job.rtl_files]
    if job.depth_modules:
        lines.append(f"hierarchy -top {job.top}")
        lines.append(f"setattr -mod -set keep_hierarchy 1 {' '.join(job.depth_modules)}")
    lines.append(f"synth_xilinx -family {job.family} -top {job.top} -flatten -noiopad -noclkbuf")
    lines.append(f"tee -q -o {STAT_FILE} stat -json")
    lines.append(f"tee -q -o {LTP_FILE} ltp -noff {_COMBINATIONAL_CELLS}")
    return "\n".join(lines) + "\n"


class YosysRunner(SynthesisRunner):
    """yosys ``synth_xilinx`` on the job's Verilog; latency from the RTL generator."""

    tools: ClassVar[frozenset[str]] = frozenset({"yosys"})

    def check(self, job: SynthesisJob) -> None:
        yosys_command()
        not_verilog = [p.as_posix() for p in job.rtl_files if p.suffix.lower() not in VERILOG_SUFFIXES]
        if not_verilog:
            raise SynthesisError(
                f"yosys reads Verilog only; {not_verilog} are not .v/.sv files "
                "(convert VHDL with `ghdl synth --out=verilog` first)"
            )

    def execute(self, job: SynthesisJob, project_dir: Path, log_dir: Path, deadline: float) -> None:
        (project_dir / SCRIPT_FILE).write_text(yosys_script(job))
        # paths stay relative to the project folder: the WebAssembly yosys sees only that folder
        run_tool([*yosys_command(), "-q", "-s", SCRIPT_FILE], project_dir, log_dir / "yosys.log", deadline)

    def collect(self, job: SynthesisJob, project_dir: Path) -> SynthesisReport:
        stat_path = Path(project_dir) / STAT_FILE
        cells, version = parse_yosys_stat_json(stat_path)
        resources = resources_from_cells(cells)
        depth = parse_yosys_ltp(Path(project_dir) / LTP_FILE, job.depth_modules or (job.top,))
        report = SynthesisReport(
            tool="yosys",
            tool_version=version,
            part=job.part,
            top=job.top,
            clock_target_ns=job.clock_period_ns,
            resources=resources,
            resource_stage="yosys",
            available=device_totals(job.part) or Resources(),
            stages={"yosys": resources},
            primitives=cells,
            logic_depth=depth,
            sources=[str(stat_path)],
        )
        return with_generator_latency(report, job, project_dir)
