"""Synthesis jobs: what to synthesize, where, with which tool, and the shared runner.

A :class:`SynthesisJob` names a firmware project folder, the tool and its
steps, the part and clock, and what the job needs from the machine (time-out,
memory). It is validated on construction: names are identifiers, file paths
stay inside the project folder, the part looks like a Xilinx part. Its
:meth:`SynthesisJob.job_hash` covers the job and the content of every project
input file (not the folder's location, time-out or memory), so the same
firmware is never synthesized twice: a runner stores each result under
``<workdir>/<job_hash>/`` and returns the stored report when it exists.

Runners (:class:`SynthesisRunner`) share one shape, like conifer's backends:
``check(job)`` raises :class:`~l1flow.toolchain.ToolMissingError` naming a
missing tool; ``collect(job, project_dir)`` parses the reports a finished run
left in a project folder; ``run(job, workdir)`` copies the project inputs to a
temporary folder, runs the tool there (argument lists, never a shell string;
the whole process group is killed at the time-out), collects the report and
renames the folder into place, so a partial result never looks done.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from abc import ABC, abstractmethod
from pathlib import Path, PurePosixPath
from typing import ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from l1flow.errors import L1flowError
from l1flow.fileio import atomic_folder, sha256_file
from l1flow.recovery import remove_dead_temporaries, usable_entry
from l1flow.synthesis.reports import SynthesisReport

ProjectKind = Literal["hls4ml", "conifer", "rtl"]
ToolName = Literal["vitis_hls", "vivado", "yosys"]
Step = Literal["csynth", "cosim", "export", "vsynth", "synth"]

JOB_FORMAT = "l1flow-synthesis-job/1"
REPORT_FILE = "report.json"
JOB_FILE = "job.json"
PROJECT_SUBDIR = "project"
LOG_SUBDIR = "logs"

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# one path component of a project file: safe to place in a Tcl or yosys script
FILE_COMPONENT_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")
# Xilinx part names: device, package+pins, speed grade, optional temperature,
# e.g. xcvu9p-flgb2104-2L-e, xc7vx690tffg1927-2, xczu9eg-ffvb1156-2-e, xcu50-fsvh2104-2L-e
PART_RE = re.compile(r"^xc[0-9]?[a-z]+[0-9]+[a-z]*-?[a-z]{2,5}[0-9]{2,4}-[1-3][a-z]*(-[a-z])?$", re.IGNORECASE)

STEP_ORDER: tuple[Step, ...] = ("csynth", "cosim", "export", "vsynth", "synth")
TOOL_STEPS: dict[str, frozenset[str]] = {
    "vitis_hls": frozenset({"csynth", "cosim", "export", "vsynth"}),
    "vivado": frozenset({"vsynth"}),
    "yosys": frozenset({"synth"}),
}
# build products that must neither be hashed nor staged
_GENERATED_SUFFIXES = (".so", ".o", ".log", ".pyc", ".cf")  # .cf: GHDL work libraries


class SynthesisError(L1flowError):
    """A synthesis job could not run or its tool failed."""


class SynthesisTimeout(SynthesisError):
    """A tool ran past the job's time-out and was killed."""


class InsufficientMemoryError(SynthesisError):
    """The machine has less memory than the job declares it needs."""


def xilinx_family(part: str) -> str:
    """The yosys ``synth_xilinx -family`` of a part: xc7, xcu (UltraScale) or xcup (UltraScale+)."""
    p = part.lower()
    if p.startswith("xc7"):
        return "xc7"
    # Zynq/RFSoC UltraScale+, Virtex/Kintex UltraScale+ (trailing p), Alveo U, Artix/Kintex UltraScale+ "au"
    if re.match(r"^xc(zu|u\d|au|vu\d+p|ku\d+p)", p):
        return "xcup"
    if re.match(r"^xc(vu|ku)\d+", p):
        return "xcu"
    raise ValueError(
        f"part {part!r}: cannot tell its family (expected a 7-series xc7..., UltraScale xcvu/xcku... "
        "or UltraScale+ xcvu..p/xcku..p/xczu/xcu..)"
    )


def _check_relative(path: Path, field: str) -> Path:
    pure = PurePosixPath(str(path).replace("\\", "/"))
    if pure.is_absolute():
        raise ValueError(f"{field}: {path} must be relative to the project folder")
    for part in pure.parts:
        if part == "..":
            raise ValueError(f"{field}: {path} escapes the project folder ('..')")
        if not FILE_COMPONENT_RE.match(part):
            raise ValueError(
                f"{field}: {path}: component {part!r} must match {FILE_COMPONENT_RE.pattern} "
                "(no spaces, quotes or shell/Tcl characters)"
            )
    return Path(*pure.parts)


class SynthesisJob(BaseModel):
    """One synthesis of one firmware project; see the module docstring."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    project_dir: Path
    project_kind: ProjectKind
    tool: ToolName
    steps: tuple[Step, ...]
    part: str
    clock_period_ns: float = Field(gt=0)
    top: str
    project_name: str | None = None
    timeout_s: float = Field(default=3600.0, gt=0)
    memory_gb: float = Field(default=4.0, gt=0)
    rtl_files: tuple[Path, ...] = ()
    latency_cycles: int | None = Field(default=None, ge=0)
    ii_cycles: int | None = Field(default=None, ge=1)
    metadata_file: Path | None = None
    #: modules synthesized as their own hierarchy so that yosys reports each one's logic depth
    #: (the stages of a pipelined design); the top's depth is always reported
    depth_modules: tuple[str, ...] = ()

    @field_validator("project_dir")
    @classmethod
    def _project_dir(cls, value: Path) -> Path:
        if ".." in Path(value).parts:
            raise ValueError(f"project_dir: {value} must not contain '..'")
        return Path(value)

    @field_validator("top", "project_name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not NAME_RE.match(value):
            raise ValueError(f"{value!r} is not a valid name (must match {NAME_RE.pattern})")
        return value

    @field_validator("depth_modules")
    @classmethod
    def _depth_modules(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [name for name in value if not NAME_RE.match(name)]
        if bad:
            raise ValueError(f"{bad} are not valid module names (must match {NAME_RE.pattern})")
        return value

    @field_validator("part")
    @classmethod
    def _part(cls, value: str) -> str:
        if not PART_RE.match(value):
            raise ValueError(
                f"{value!r} is not a Xilinx part name like 'xcvu9p-flgb2104-2L-e' or 'xc7vx690tffg1927-2'"
            )
        return value

    @field_validator("rtl_files")
    @classmethod
    def _rtl_files(cls, value: tuple[Path, ...]) -> tuple[Path, ...]:
        return tuple(_check_relative(p, "rtl_files") for p in value)

    @field_validator("metadata_file")
    @classmethod
    def _metadata_file(cls, value: Path | None) -> Path | None:
        return None if value is None else _check_relative(value, "metadata_file")

    @field_validator("steps", mode="before")
    @classmethod
    def _steps_order(cls, value: object) -> object:
        if isinstance(value, (list, tuple)):
            if len(set(value)) != len(value):
                raise ValueError(f"steps {list(value)} repeat a step")
            return tuple(sorted(value, key=lambda s: STEP_ORDER.index(s) if s in STEP_ORDER else -1))
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SynthesisJob:
        if not self.steps:
            raise ValueError("steps: give at least one step")
        bad = [s for s in self.steps if s not in TOOL_STEPS[self.tool]]
        if bad:
            raise ValueError(
                f"steps {bad} are not steps of {self.tool} (allowed: {sorted(TOOL_STEPS[self.tool])})"
            )
        if self.tool == "vitis_hls":
            if self.project_kind == "rtl":
                raise ValueError("tool vitis_hls needs an hls4ml or conifer HLS project, not RTL")
            if "csynth" not in self.steps:
                # a job starts from the generator's sources; cosim, export and vsynth need its RTL
                raise ValueError("tool vitis_hls: steps must include csynth (cosim/export/vsynth need its RTL)")
        if self.tool == "vivado" and self.project_kind == "hls4ml":
            raise ValueError(
                "hls4ml projects are synthesized by Vivado after HLS: use tool vitis_hls with "
                "steps [csynth, vsynth]"
            )
        if self.tool == "yosys" and not self.rtl_files:
            raise ValueError("tool yosys needs rtl_files (Verilog sources inside the project folder)")
        if self.project_kind == "rtl" and not self.rtl_files:
            raise ValueError("project_kind rtl needs rtl_files")
        return self

    # ------------------------------------------------------------ names

    @property
    def name(self) -> str:
        """The HLS project name (hls4ml ProjectName / conifer ProjectName)."""
        return self.project_name or self.top

    @property
    def family(self) -> str:
        return xilinx_family(self.part)

    # ------------------------------------------------------------ files and hash

    def conifer_flavour(self, project_dir: Path | None = None) -> Literal["xilinxhls", "vhdl"]:
        """Which conifer backend wrote the project: HLS C++ or VHDL."""
        folder = Path(project_dir or self.project_dir)
        if (folder / "build_hls.tcl").is_file():
            return "xilinxhls"
        if (folder / "synth.tcl").is_file():
            return "vhdl"
        raise SynthesisError(
            f"{folder}: neither build_hls.tcl (conifer xilinxhls) nor synth.tcl (conifer vhdl); "
            "write the conifer project first"
        )

    def project_files(self, project_dir: Path | None = None) -> list[str]:
        """Relative paths of every input file of the project (what is hashed and staged)."""
        folder = Path(project_dir or self.project_dir)
        if not folder.is_dir():
            raise SynthesisError(f"project_dir {folder} does not exist or is not a folder")
        required: list[str] = [str(p.as_posix()) for p in self.rtl_files]
        if self.metadata_file is not None:
            required.append(self.metadata_file.as_posix())
        optional: list[str] = []
        trees: list[str] = []
        if self.project_kind == "hls4ml" and self.tool != "yosys":
            required += ["project.tcl", "build_prj.tcl", f"firmware/{self.name}.cpp"]
            optional += ["vivado_synth.tcl", f"{self.name}_test.cpp"]
            trees += ["firmware", "tb_data"]
        elif self.project_kind == "conifer" and self.tool != "yosys":
            if self.conifer_flavour(folder) == "xilinxhls":
                required += ["build_hls.tcl", "hls_parameters.tcl", f"firmware/{self.name}.cpp"]
                optional += ["vivado_synth.tcl", f"{self.name}_test.cpp"]
                trees += ["firmware", "tb_data"]
            else:
                required += ["synth.tcl", "firmware/BDTTop.vhd"]
                trees += ["firmware"]
        missing = [f for f in required if not (folder / f).is_file()]
        if missing:
            raise SynthesisError(
                f"{folder}: missing project file(s) {missing} for a {self.project_kind} job with {self.tool}"
            )
        files = set(required) | {f for f in optional if (folder / f).is_file()}
        for tree in trees:
            root = folder / tree
            if not root.is_dir():
                continue
            for path in root.rglob("*"):
                if path.is_file() and not path.name.endswith(_GENERATED_SUFFIXES):
                    files.add(path.relative_to(folder).as_posix())
        resolved_root = folder.resolve()
        for rel in files:
            if not (folder / rel).resolve().is_relative_to(resolved_root):
                raise SynthesisError(f"{folder / rel}: resolves outside the project folder (symlink?)")
        return sorted(files)

    def job_hash(self) -> str:
        """sha256 of what determines the result: job settings and project file contents."""
        settings = self.model_dump(mode="json", exclude={"project_dir", "timeout_s", "memory_gb"})
        digest = hashlib.sha256()
        digest.update(json.dumps({"format": JOB_FORMAT, **settings}, sort_keys=True).encode())
        for rel in self.project_files():
            digest.update(rel.encode() + b"\0")
            digest.update(sha256_file(self.project_dir / rel).encode() + b"\n")
        return digest.hexdigest()

    # ------------------------------------------------------------ serialisation

    def to_dict(self) -> dict[str, object]:
        return {"format": JOB_FORMAT, **self.model_dump(mode="json")}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, object], where: str = "job") -> SynthesisJob:
        data = dict(data)
        fmt = data.pop("format", JOB_FORMAT)
        if fmt != JOB_FORMAT:
            raise ValueError(f"{where}: format {fmt!r}, expected {JOB_FORMAT!r}")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ValueError(f"{where}: invalid synthesis job:\n{exc}") from exc

    @classmethod
    def from_json(cls, text: str, where: str = "job") -> SynthesisJob:
        return cls.from_dict(json.loads(text), where)

    @classmethod
    def from_yaml(cls, text: str, where: str = "job") -> SynthesisJob:
        data = yaml.safe_load(text)
        if not isinstance(data, dict):
            raise ValueError(f"{where}: a synthesis job must be a mapping")
        return cls.from_dict(data, where)

    @classmethod
    def load(cls, path: Path) -> SynthesisJob:
        """Read a job from a .json, .yaml or .yml file."""
        path = Path(path)
        text = path.read_text()
        if path.suffix in (".yaml", ".yml"):
            return cls.from_yaml(text, str(path))
        return cls.from_json(text, str(path))


def machine_memory_gb() -> float:
    """Physical memory of this machine in GB (MemTotal of /proc/meminfo)."""
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024**2
    raise SynthesisError("/proc/meminfo has no MemTotal line")


def run_tool(args: list[str], cwd: Path, log_path: Path, deadline: float, env: dict[str, str] | None = None) -> None:
    """Run one tool command (an argument list) until it ends or the deadline passes.

    Output goes to ``log_path``. The tool runs in its own process group, which
    is killed as a whole at the deadline (Vivado and yosys start children).
    """
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise SynthesisTimeout(f"no time left for {args[0]} (job time-out reached)")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            args,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        try:
            code = proc.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise SynthesisTimeout(
                f"{Path(args[0]).name} ran past the job time-out ({remaining:.0f} s left) and was killed; "
                f"log: {log_path}. Raise timeout_s or shrink the design."
            ) from None
        except BaseException:
            _kill_group(proc)
            raise
    if code != 0:
        tail = log_path.read_text(errors="replace").splitlines()[-15:]
        raise SynthesisError(
            f"{Path(args[0]).name} exited with status {code}; log: {log_path}\n" + "\n".join(tail)
        )


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


class SynthesisRunner(ABC):
    """A synthesis tool behind the shared verbs ``check`` / ``collect`` / ``run``."""

    #: the job ``tool`` values this runner serves
    tools: ClassVar[frozenset[str]]

    @abstractmethod
    def check(self, job: SynthesisJob) -> None:
        """Raise ToolMissingError naming any tool the job needs that is not installed."""

    @abstractmethod
    def collect(self, job: SynthesisJob, project_dir: Path) -> SynthesisReport:
        """Parse the reports a finished run left in ``project_dir`` into one report."""

    @abstractmethod
    def execute(self, job: SynthesisJob, project_dir: Path, log_dir: Path, deadline: float) -> None:
        """Run the tool's steps inside the staged ``project_dir`` (a private copy)."""

    def run(self, job: SynthesisJob, workdir: Path) -> SynthesisReport:
        """Synthesize ``job`` under ``workdir/<job_hash>/``, or return the stored result.

        The folder holds ``job.json``, ``report.json``, ``logs/`` and the
        staged ``project/`` with everything the tool wrote (e.g. the HLS Verilog).
        """
        if job.tool not in self.tools:
            raise SynthesisError(f"{type(self).__name__} runs {sorted(self.tools)}, not {job.tool}")
        workdir = Path(workdir)
        key = job.job_hash()
        result_dir = workdir / key
        if usable_entry(result_dir, "synthesis result") and (result_dir / REPORT_FILE).is_file():
            return load_report(result_dir)
        self.check(job)
        available = machine_memory_gb()
        if available < job.memory_gb:
            raise InsufficientMemoryError(
                f"job needs {job.memory_gb:g} GB but this machine has {available:.1f} GB; "
                "run it on a synthesis machine or lower memory_gb"
            )
        deadline = time.monotonic() + job.timeout_s
        remove_dead_temporaries(workdir)  # jobs of killed runs or workers
        # a worker that finished the same job first keeps its result; the entry carries its files' sha256
        with atomic_folder(result_dir, replace=False, sealed=True) as tmp:
            stage = tmp / PROJECT_SUBDIR
            for rel in job.project_files():
                (stage / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(job.project_dir / rel, stage / rel)
            # the result is filed under the hash of what is synthesized, so re-hash the copy
            if job.model_copy(update={"project_dir": stage}).job_hash() != key:
                raise SynthesisError(
                    f"{job.project_dir}: project files changed while being staged; run the job again"
                )
            self.execute(job, stage, tmp / LOG_SUBDIR, deadline)
            report = self.collect(job, stage)
            report = _relative_sources(report, tmp).model_copy(update={"job_hash": key})
            (tmp / JOB_FILE).write_text(job.to_json())
            (tmp / REPORT_FILE).write_text(report.model_dump_json(indent=2) + "\n")
        return load_report(result_dir)


def load_report(result_dir: Path) -> SynthesisReport:
    """The report stored by a finished run in ``result_dir``."""
    path = Path(result_dir) / REPORT_FILE
    try:
        return SynthesisReport.model_validate_json(path.read_text())
    except (OSError, ValidationError) as exc:
        raise SynthesisError(f"{path}: cannot read the stored synthesis report ({exc})") from exc


def _relative_sources(report: SynthesisReport, root: Path) -> SynthesisReport:
    sources = []
    for src in report.sources:
        path = Path(src)
        sources.append(path.relative_to(root).as_posix() if path.is_relative_to(root) else src)
    return report.model_copy(update={"sources": sources})


class GeneratorLatency(BaseModel):
    """Latency the RTL generator states for its design (yosys cannot time a design)."""

    model_config = ConfigDict(extra="forbid")

    latency_min_cycles: int = Field(ge=0)
    latency_max_cycles: int = Field(ge=0)
    ii_cycles: int | None = Field(default=None, ge=1)
    source: str


def generator_latency(job: SynthesisJob, project_dir: Path) -> GeneratorLatency | None:
    """Latency from the job (``latency_cycles``) or the generator's sidecar JSON.

    The sidecar (``metadata_file``) holds ``"latency_cycles": n`` or
    ``"latency": n`` or ``"latency": {"min": a, "max": b}``, and optionally
    ``"ii_cycles"``/``"ii"``. The job's own numbers win.
    """
    if job.latency_cycles is not None:
        return GeneratorLatency(
            latency_min_cycles=job.latency_cycles,
            latency_max_cycles=job.latency_cycles,
            ii_cycles=job.ii_cycles,
            source="job",
        )
    if job.metadata_file is None:
        return None
    path = Path(project_dir) / job.metadata_file
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SynthesisError(f"{path}: cannot read the RTL generator metadata ({exc})") from exc
    latency = meta.get("latency_cycles", meta.get("latency"))
    if isinstance(latency, dict):
        low, high = latency.get("min"), latency.get("max")
    else:
        low = high = latency
    if not isinstance(low, int) or not isinstance(high, int):
        raise SynthesisError(
            f"{path}: no integer 'latency_cycles' (or 'latency' {{'min', 'max'}}) in the generator metadata"
        )
    ii = meta.get("ii_cycles", meta.get("ii"))
    return GeneratorLatency(
        latency_min_cycles=low,
        latency_max_cycles=high,
        ii_cycles=ii if isinstance(ii, int) else job.ii_cycles,
        source=job.metadata_file.as_posix(),
    )


def with_generator_latency(report: SynthesisReport, job: SynthesisJob, project_dir: Path) -> SynthesisReport:
    """``report`` with the generator's latency where the tool measured none."""
    if report.latency_min_cycles is not None:
        return report
    latency = generator_latency(job, project_dir)
    if latency is None:
        return report
    return report.model_copy(
        update={
            "latency_min_cycles": latency.latency_min_cycles,
            "latency_max_cycles": latency.latency_max_cycles,
            "ii_min": latency.ii_cycles,
            "ii_max": latency.ii_cycles,
            "latency_source": f"generator ({latency.source})",
            "clock_target_ns": report.clock_target_ns or job.clock_period_ns,
        }
    )
