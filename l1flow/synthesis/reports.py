"""One typed synthesis report, and parsers for the files vendor tools write.

Every synthesis runner (Vitis HLS / Vivado on a synthesis machine, yosys here)
returns a :class:`SynthesisReport`. The parsers read the tools' own files:

- ``<top>_csynth.xml`` (Vivado HLS 2019.x and Vitis HLS 2020+; the DSP tag is
  ``DSP48E`` in the former and ``DSP`` in the latter);
- ``<top>_cosim.rpt`` (the Verilog/VHDL row: Status, Latency and Interval
  min/avg/max; Vitis adds a "Total Execution Time" column);
- ``vivado_synth.rpt`` / conifer's ``util.rpt`` (``report_utilization``:
  "CLB LUTs"/"Slice LUTs", "CLB Registers"/"Slice Registers", "Block RAM
  Tile", "URAM", "DSPs"; Vivado 2022+ adds a "Prohibited" column, so columns
  are found by their header, not by position).

Block RAM is counted in 18 Kb units throughout (``bram_18k``): HLS reports
BRAM_18K directly; Vivado's "Block RAM Tile" is a 36 Kb tile, i.e. two units.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from l1flow.errors import BadInputError


class ReportParseError(BadInputError):
    """A report file is missing or lacks an element the parser needs."""


ResourceName = Literal["lut", "ff", "dsp", "bram_18k", "uram", "carry"]


class Resources(BaseModel):
    """Counts of FPGA resources; None where the source does not say."""

    model_config = ConfigDict(extra="forbid")

    lut: float | None = None
    ff: float | None = None
    dsp: float | None = None
    bram_18k: float | None = None
    uram: float | None = None
    carry: float | None = None


class SynthesisReport(BaseModel):
    """Latency, throughput and resources of one synthesized design.

    ``resources`` holds the most final numbers available (Vivado synthesis
    over the HLS estimate; yosys for open RTL); ``stages`` keeps each stage's
    own numbers (``csynth``, ``vsynth``, ``yosys``) for comparison.
    """

    model_config = ConfigDict(extra="forbid")

    tool: str
    tool_version: str | None = None
    part: str | None = None
    top: str | None = None
    clock_target_ns: float | None = None
    clock_estimated_ns: float | None = None
    latency_min_cycles: int | None = None
    latency_max_cycles: int | None = None
    latency_source: str | None = None
    ii_min: int | None = None
    ii_max: int | None = None
    cosim_status: str | None = None
    cosim_total_cycles: int | None = None
    resources: Resources = Field(default_factory=Resources)
    resource_stage: str | None = None
    available: Resources = Field(default_factory=Resources)
    stages: dict[str, Resources] = Field(default_factory=dict)
    primitives: dict[str, int] = Field(default_factory=dict)
    #: cells on the longest register-to-register path of each module (a pipeline's stages, or the top)
    logic_depth: dict[str, int] = Field(default_factory=dict)
    sources: list[str] = Field(default_factory=list)
    job_hash: str | None = None

    @property
    def latency_min_ns(self) -> float | None:
        return _cycles_to_ns(self.latency_min_cycles, self.clock_target_ns)

    @property
    def latency_max_ns(self) -> float | None:
        return _cycles_to_ns(self.latency_max_cycles, self.clock_target_ns)

    def utilisation(self) -> dict[str, float]:
        """Used / available for every resource where both are known."""
        fractions: dict[str, float] = {}
        used = self.resources.model_dump()
        total = self.available.model_dump()
        for name, value in used.items():
            if value is not None and total.get(name):
                fractions[name] = float(value) / float(total[name])
        return fractions

    def to_summary(self) -> dict[str, object]:
        """Flat JSON-ready dict for summary.json (computed fields included)."""
        data = self.model_dump(mode="json")
        data["latency_min_ns"] = self.latency_min_ns
        data["latency_max_ns"] = self.latency_max_ns
        data["utilisation"] = self.utilisation()
        return data

    def merged(self, other: SynthesisReport) -> SynthesisReport:
        """This report completed by ``other`` (a later stage of the same job).

        Fields ``other`` knows win where it is the more final source: its
        resources replace an HLS estimate, a co-simulation's measured latency
        replaces the csynth estimate; ``stages`` and ``sources`` accumulate.
        """
        data = self.model_dump()
        for key, value in other.model_dump().items():
            if key in ("stages", "sources", "resources", "available", "resource_stage", "primitives", "logic_depth"):
                continue
            # the first stage names the flow (tool, part, top, clock); later stages only fill gaps
            if key in ("tool", "tool_version", "part", "top", "clock_target_ns") and data[key] is not None:
                continue
            if value is not None:
                data[key] = value
        merged = SynthesisReport(**data)
        merged.stages = {**self.stages, **other.stages}
        merged.primitives = other.primitives or self.primitives
        merged.logic_depth = other.logic_depth or self.logic_depth
        merged.sources = self.sources + [s for s in other.sources if s not in self.sources]
        if other.resource_stage is not None:
            merged.resources = other.resources
            merged.resource_stage = other.resource_stage
        avail = self.available.model_dump()
        for key, value in other.available.model_dump().items():
            if value is not None:
                avail[key] = value
        merged.available = Resources(**avail)
        return merged


def _cycles_to_ns(cycles: int | None, period: float | None) -> float | None:
    if cycles is None or period is None:
        return None
    return cycles * period


# ---------------------------------------------------------------- csynth.xml


def _xml_text(root: ET.Element, path: str, source: Path, required: bool = True) -> str | None:
    node = root.find(path)
    if node is None or node.text is None or not node.text.strip():
        if required:
            raise ReportParseError(f"{source}: element <{path}> is missing; not a complete csynth report")
        return None
    return node.text.strip()


def _optional_int(text: str | None) -> int | None:
    # HLS writes "undef" for loops with unknown trip counts
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _optional_float(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None


_HLS_RESOURCE_TAGS: dict[str, ResourceName] = {
    "LUT": "lut",
    "FF": "ff",
    "DSP": "dsp",
    "DSP48E": "dsp",
    "BRAM_18K": "bram_18k",
    "URAM": "uram",
}


def _hls_resources(node: ET.Element | None, source: Path, element: str) -> Resources:
    if node is None:
        raise ReportParseError(f"{source}: element <AreaEstimates/{element}> is missing")
    counts: dict[str, float] = {}
    for child in node:
        name = _HLS_RESOURCE_TAGS.get(child.tag)
        if name is not None and child.text is not None:
            value = _optional_float(child.text.strip())
            if value is not None:
                counts[name] = value
    for needed in ("LUT", "FF"):
        if node.find(needed) is None:
            raise ReportParseError(f"{source}: element <AreaEstimates/{element}/{needed}> is missing")
    return Resources(**counts)


def parse_csynth_xml(path: Path) -> SynthesisReport:
    """Read a Vivado/Vitis HLS ``<top>_csynth.xml`` (latency estimate and resources)."""
    path = Path(path)
    if not path.is_file():
        raise ReportParseError(f"{path}: csynth report not found (did C synthesis run?)")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise ReportParseError(f"{path}: not well-formed XML ({exc})") from exc
    version = _xml_text(root, "ReportVersion/Version", path, required=False)
    perf = "PerformanceEstimates/SummaryOfOverallLatency"
    resources = _hls_resources(root.find("AreaEstimates/Resources"), path, "Resources")
    available = _hls_resources(root.find("AreaEstimates/AvailableResources"), path, "AvailableResources")
    return SynthesisReport(
        tool=_hls_tool_name(version),
        tool_version=version,
        part=_xml_text(root, "UserAssignments/Part", path),
        top=_xml_text(root, "UserAssignments/TopModelName", path),
        clock_target_ns=_optional_float(_xml_text(root, "UserAssignments/TargetClockPeriod", path)),
        clock_estimated_ns=_optional_float(
            _xml_text(root, "PerformanceEstimates/SummaryOfTimingAnalysis/EstimatedClockPeriod", path)
        ),
        latency_min_cycles=_optional_int(_xml_text(root, f"{perf}/Best-caseLatency", path)),
        latency_max_cycles=_optional_int(_xml_text(root, f"{perf}/Worst-caseLatency", path)),
        latency_source="csynth",
        ii_min=_optional_int(_xml_text(root, f"{perf}/Interval-min", path)),
        ii_max=_optional_int(_xml_text(root, f"{perf}/Interval-max", path)),
        resources=resources,
        resource_stage="csynth",
        available=available,
        stages={"csynth": resources},
        sources=[str(path)],
    )


def _hls_tool_name(version: str | None) -> str:
    # Vivado HLS ended with 2020.1; Vitis HLS started with 2020.1
    match = re.match(r"(\d{4})\.(\d+)", version or "")
    if match and (int(match.group(1)), int(match.group(2))) < (2020, 1):
        return "vivado_hls"
    return "vitis_hls"


# ---------------------------------------------------------------- cosim.rpt


def _table_cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def parse_cosim_rpt(path: Path) -> SynthesisReport:
    """Read ``<top>_cosim.rpt``: the RTL row (Verilog or VHDL) that was simulated.

    Latency and interval are the measured min/max over the co-simulated
    transactions. A row with status "Fail" is reported as such
    (``cosim_status``); the runner decides what a failure means.
    """
    path = Path(path)
    if not path.is_file():
        raise ReportParseError(f"{path}: co-simulation report not found (did cosim run?)")
    text = path.read_text(errors="replace")
    has_total = "Total Execution Time" in text
    rows: list[list[str]] = []
    for line in text.splitlines():
        cells = _table_cells(line) if line.startswith("|") else []
        if cells and cells[0] in ("Verilog", "VHDL"):
            rows.append(cells)
    if not rows:
        raise ReportParseError(f"{path}: no Verilog/VHDL row in the co-simulation table")
    simulated = [row for row in rows if len(row) > 1 and row[1] != "NA"]
    if not simulated:
        raise ReportParseError(f"{path}: neither the Verilog nor the VHDL row has a status (both NA)")
    row = simulated[0]
    expected_cells = 9 if has_total else 8
    if len(row) < expected_cells:
        raise ReportParseError(
            f"{path}: the {row[0]} row has {len(row)} cells, expected {expected_cells} "
            "(RTL, Status, Latency min/avg/max, Interval min/avg/max[, Total Execution Time])"
        )
    status = row[1]
    latency_min, latency_max = _optional_int(row[2]), _optional_int(row[4])
    # Vitis leaves the latency cells NA when it measured none (e.g. one transaction through a
    # pipelined top): the latency then stays csynth's and must not be labelled as measured.
    measured = latency_min is not None or latency_max is not None
    return SynthesisReport(
        tool="cosim",
        latency_min_cycles=latency_min,
        latency_max_cycles=latency_max,
        latency_source=f"cosim ({row[0]})" if measured else None,
        ii_min=_optional_int(row[5]),
        ii_max=_optional_int(row[7]),
        cosim_status=status,
        cosim_total_cycles=_optional_int(row[8]) if has_total else None,
        sources=[str(path)],
    )


# ---------------------------------------------------------------- vivado_synth.rpt


_VIVADO_ROWS: dict[ResourceName, tuple[str, ...]] = {
    "lut": ("CLB LUTs", "Slice LUTs"),
    "ff": ("CLB Registers", "Slice Registers"),
    "bram_18k": ("Block RAM Tile",),
    "uram": ("URAM",),
    "dsp": ("DSPs",),
    "carry": ("CARRY8", "CARRY4"),
}


def _utilisation_tables(text: str) -> dict[str, dict[str, str]]:
    """Site type -> {column: cell} for every ``Site Type`` table in the report."""
    rows: dict[str, dict[str, str]] = {}
    header: list[str] | None = None
    for line in text.splitlines():
        if not line.startswith("|"):
            if not line.startswith("+"):
                header = None
            continue
        cells = _table_cells(line)
        if cells and cells[0] == "Site Type":
            header = cells
            continue
        if header is None or len(cells) != len(header):
            continue
        name = cells[0].rstrip("*").strip()
        # keep the first occurrence: later SLR tables repeat names with other columns
        if name and name not in rows:
            rows[name] = dict(zip(header, cells))
    return rows


def parse_vivado_synth_rpt(path: Path) -> SynthesisReport:
    """Read a Vivado ``report_utilization`` file (hls4ml's ``vivado_synth.rpt``)."""
    path = Path(path)
    if not path.is_file():
        raise ReportParseError(f"{path}: Vivado utilization report not found (did vsynth run?)")
    text = path.read_text(errors="replace")
    tables = _utilisation_tables(text)
    used: dict[str, float] = {}
    total: dict[str, float] = {}
    for name, labels in _VIVADO_ROWS.items():
        row = next((tables[label] for label in labels if label in tables), None)
        if row is None:
            if name in ("lut", "ff"):
                raise ReportParseError(
                    f"{path}: no '{labels[0]}' or '{labels[-1]}' row in any utilization table"
                )
            continue
        scale = 2.0 if name == "bram_18k" else 1.0
        for column, target in (("Used", used), ("Available", total)):
            value = _optional_float(row.get(column))
            if value is not None:
                target[name] = value * scale
    primitives = _primitives_table(text)
    if "carry" not in used and primitives:
        # 7-series reports list CARRY4 only among the primitives
        used["carry"] = float(sum(primitives.get(name, 0) for name in ("CARRY4", "CARRY8")))
    device = re.search(r"^\|\s*Device\s*:\s*(\S+)", text, re.MULTILINE)
    version = re.search(r"Tool Version\s*:\s*Vivado v\.(\S+)", text)
    resources = Resources(**used)
    return SynthesisReport(
        tool="vivado",
        tool_version=version.group(1) if version else None,
        part=_with_xc(device.group(1)) if device else None,
        resources=resources,
        resource_stage="vsynth",
        available=Resources(**total),
        stages={"vsynth": resources},
        primitives=primitives,
        sources=[str(path)],
    )


def _with_xc(device: str) -> str:
    # older Vivado prints 7-series devices without the "xc" prefix (7vx690tffg1927-2)
    return device if device.lower().startswith("xc") else "xc" + device


def _primitives_table(text: str) -> dict[str, int]:
    """Ref Name -> Used of the report's "Primitives" table (empty if absent)."""
    counts: dict[str, int] = {}
    in_table = False
    for line in text.splitlines():
        cells = _table_cells(line) if line.startswith("|") else []
        if cells[:2] == ["Ref Name", "Used"]:
            in_table = len(cells) == 3  # Black Boxes / Netlists tables have two columns
            continue
        if in_table and len(cells) == 3:
            used = _optional_int(cells[1])
            if used is not None:
                counts[cells[0]] = used
        elif in_table and not line.startswith("+") and line.strip():
            in_table = False
    return counts


# Totals of the devices the project targets (Xilinx data sheets DS890/DS180 and
# the AvailableResources that HLS prints), so open-tool reports get utilisation
# fractions too. Keyed by device; a part matches the longest device prefix.
DEVICE_TOTALS: dict[str, Resources] = {
    "xcvu9p": Resources(lut=1182240, ff=2364480, dsp=6840, bram_18k=4320, uram=960, carry=147780),
    "xcvu13p": Resources(lut=1728000, ff=3456000, dsp=12288, bram_18k=5376, uram=1280, carry=216000),
    "xc7vx690t": Resources(lut=433200, ff=866400, dsp=3600, bram_18k=2940, uram=0, carry=108300),
    "xc7vx485t": Resources(lut=303600, ff=607200, dsp=2800, bram_18k=2060, uram=0, carry=75900),
    "xc7z020": Resources(lut=53200, ff=106400, dsp=220, bram_18k=280, uram=0, carry=13300),
    "xczu9eg": Resources(lut=274080, ff=548160, dsp=2520, bram_18k=1824, uram=0, carry=34260),
    "xcu50": Resources(lut=871680, ff=1743360, dsp=5952, bram_18k=2688, uram=640, carry=108960),
}


def device_totals(part: str) -> Resources | None:
    """The resource totals of ``part``'s device, or None when it is not tabulated."""
    p = part.lower()
    matches = [device for device in DEVICE_TOTALS if p.startswith(device)]
    if not matches:
        return None
    return DEVICE_TOTALS[max(matches, key=len)]
