"""Validated pipeline configuration, read from YAML.

One file describes a whole pipeline: where conditions come from, the data
set, the models (their specs live with the training code), the firmware
target, how much to verify, and the criteria a version must pass to become
`production`. A bad field is reported with its path in the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from l1flow.conditions.change import ChangeTolerances
from l1flow.conditions.drift_thresholds import DriftThresholds
from l1flow.errors import BadInputError
from l1flow.fpga_parts import KNOWN_PARTS, close_parts
from l1flow.registry.criteria import AcceptanceCriteria
from l1flow.settings import DEFAULT_WORKSPACE
from l1flow.training.specs import ModelSpec, check_folder_name

#: the ROOT branch mappings shipped with l1flow (``data.mapping`` may name one instead of a file)
MAPPINGS_DIR = Path(__file__).parent / "data" / "mappings"


class ConfigError(BadInputError):
    """The configuration file is missing, unreadable or has a bad field (exit 2)."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConditionsConfig(_Section):
    store: Path | None = Field(None, description="SQLite conditions store; default <workspace>/conditions.sqlite")
    tag: str = "L1Nominal"
    run: int | None = Field(None, ge=1, description="run whose IOV applies; default the latest IOV of the tag")
    tolerances: ChangeTolerances = Field(default_factory=ChangeTolerances)
    drift: DriftThresholds = Field(default_factory=DriftThresholds)


class DataConfig(_Section):
    source: Literal["generator"] | Path = "generator"
    mapping: Path | None = Field(None, description="ROOT branch mapping (YAML) when source is a ROOT file")
    train_background: int = Field(200_000, ge=1_000)
    train_signal: int = Field(10_000, ge=0, description="events per signal for supervised models (BDT classifier)")
    validation_background: int = Field(50_000, ge=500)
    validation_signal: int = Field(2_000, ge=0)
    test_background: int = Field(200_000, ge=1_000)
    test_signal: int = Field(20_000, ge=100, description="events per signal in the test sample")
    signals: list[str] | None = None


class TriggerConfig(_Section):
    crossing_rate_mhz: float = Field(28.61, gt=0)
    working_point_khz: float = Field(1.0, gt=0)

    @field_validator("working_point_khz")
    @classmethod
    def _rate_below_crossings(cls, value: float, info: ValidationInfo) -> float:
        # a trigger cannot fire more often than bunches cross; such a working point accepts every event
        crossing_mhz = info.data.get("crossing_rate_mhz")
        if crossing_mhz is not None and value >= crossing_mhz * 1000.0:
            raise ValueError(
                f"{value:g} kHz is not below the crossing rate ({crossing_mhz:g} MHz = {crossing_mhz * 1000:g} kHz); "
                "a working point is a trigger rate in kHz, such as 1.0"
            )
        return value


class FirmwareConfig(_Section):
    part_unlisted: bool = Field(
        False, description="accept a part missing from l1flow's table (`l1flow parts`), e.g. a new device"
    )
    part: str = "xcvu9p-flgb2104-2L-e"
    clock_period_ns: float = Field(5.0, gt=0)
    hls_backend: Literal["Vitis", "Vivado"] = "Vitis"
    io_type: Literal["io_parallel"] = "io_parallel"

    @field_validator("part")
    @classmethod
    def _known_part(cls, value: str, info: ValidationInfo) -> str:
        if value in KNOWN_PARTS or info.data.get("part_unlisted"):
            return value
        close = close_parts(value)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise ValueError(
            f"{value!r} is not a known FPGA part; {hint}`l1flow parts` lists the known ones; "
            "for a part missing from that list set firmware.part_unlisted: true"
        )


class VerifyConfig(_Section):
    emulation_events: int = Field(1_000_000, ge=1_000, description="events through the fast emulators")
    csim_events: int = Field(5_000, ge=100, description="C-simulation cross-check subset")
    hardware_events: int = Field(100_000, ge=100, description="events through Verilator RTL simulation")
    ghdl_events: int = Field(1_000, ge=10, description="events through GHDL (slow) for the BDTs")


class SynthesisConfig(_Section):
    runner: Literal["yosys", "vivado", "none"] = Field(
        "yosys",
        description="synthesis of the RTL the gate simulated: yosys synth_xilinx here, Vivado on a synthesis "
        "machine, or none",
    )
    timeout_seconds: int = Field(3_600, ge=10)


class RegistryConfig(_Section):
    tracking_uri: str | None = Field(None, description="MLflow tracking URI; default a SQLite store in the workspace")
    auto_promote: bool = Field(True, description="move `production` to a new version that passes the acceptance criteria")


class PipelineConfig(_Section):
    name: str
    seed: int = 1
    workspace: Path = DEFAULT_WORKSPACE
    conditions: ConditionsConfig = Field(default_factory=ConditionsConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    trigger: TriggerConfig = Field(default_factory=TriggerConfig)
    models: list[ModelSpec] = Field(min_length=1)
    firmware: FirmwareConfig = Field(default_factory=FirmwareConfig)
    verify: VerifyConfig = Field(default_factory=VerifyConfig)
    synthesis: SynthesisConfig = Field(default_factory=SynthesisConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    acceptance: AcceptanceCriteria = Field(default_factory=AcceptanceCriteria)

    _name_is_folder = field_validator("name")(check_folder_name)

    @model_validator(mode="after")
    def _unique_model_names(self) -> PipelineConfig:
        names = [m.name for m in self.models]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"models: names must be unique, repeated: {', '.join(duplicates)}")
        return self

    def content_hash(self) -> str:
        """Hash of everything that affects results (not the workspace location)."""
        data = self.model_dump(mode="json", exclude={"workspace"})
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Apply `dotted.key=value` overrides (value parsed as YAML) to a raw config."""
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r}: expected dotted.key=value")
        node: Any = raw
        parts = key.split(".")
        for part in parts[:-1]:
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            elif isinstance(node, dict):
                node = node.setdefault(part, {})
            else:
                raise ConfigError(f"override {item!r}: '{part}' is not a section of the configuration")
        last = parts[-1]
        parsed = yaml.safe_load(value)
        if isinstance(node, list) and last.isdigit() and int(last) < len(node):
            node[int(last)] = parsed
        elif isinstance(node, dict):
            node[last] = parsed
        else:
            raise ConfigError(f"override {item!r}: cannot set '{last}' there")
    return raw


def load_config(path: Path | str, overrides: list[str] | None = None) -> PipelineConfig:
    """Read and validate a pipeline YAML file; errors name the file and field."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: configuration file not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    raw = apply_overrides(raw, overrides or [])
    try:
        config = PipelineConfig.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{path}: invalid configuration"]
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"]) or "(top level)"
            lines.append(f"  {where}: {error['msg'].removeprefix('Value error, ')}")
        raise ConfigError("\n".join(lines)) from None
    return config


def check_runnable(config: PipelineConfig, where: Path | str, workspace: Path | None = None) -> Path:
    """Check what a run needs outside the file (input paths, a writable workspace); return the workspace.

    Called before any heavy import, so a typo in a path is reported in a
    second instead of after the server and TensorFlow have started. ``where``
    names the configuration file in the messages; ``workspace`` overrides the
    config's.
    """
    problems: list[str] = []
    if config.data.source != "generator":
        source = Path(config.data.source)
        if not source.is_file():
            problems.append(f"data.source: {source} is not a file; give an HDF5 or ROOT event file, or 'generator'")
    if config.data.mapping is not None:
        mapping = Path(config.data.mapping)
        shipped = MAPPINGS_DIR / f"{mapping.name.removesuffix('.yaml')}.yaml"
        if not mapping.is_file() and not (mapping.parent == Path(".") and shipped.is_file()):
            known = ", ".join(sorted(p.stem for p in MAPPINGS_DIR.glob("*.yaml")))
            problems.append(f"data.mapping: {mapping} is neither a YAML file nor a shipped mapping ({known})")
    if config.conditions.store is not None:
        store = Path(config.conditions.store)
        if store.is_dir():
            problems.append(f"conditions.store: {store} is a folder; give the SQLite file's path")
        elif not store.parent.is_dir():
            problems.append(
                f"conditions.store: the folder {store.parent} does not exist; create it or fix the path"
            )
    chosen = Path(workspace) if workspace is not None else config.workspace
    field = "--workspace" if workspace is not None else "workspace"
    problem = workspace_problem(chosen)
    if problem:
        problems.append(f"{field}: {problem}")
    if problems:
        raise ConfigError("\n".join([f"{where}: cannot run", *(f"  {p}" for p in problems)]))
    return chosen


def workspace_problem(path: Path) -> str | None:
    """Why ``path`` cannot be a workspace (a file, or not writable), or None if it can."""
    existing = Path(os.path.abspath(path))
    while not existing.exists():
        existing = existing.parent
    if existing != Path(os.path.abspath(path)) and not existing.is_dir():
        return f"{path} cannot be created: {existing} is a file"
    if not existing.is_dir():
        return f"{path} is a file, not a folder; choose a folder for the workspace"
    # a real write, not os.access: root passes os.access on a read-only file system or /proc
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        what = "is" if existing == Path(os.path.abspath(path)) else f"would be created in {existing}, which is"
        return f"{path} {what} not writable ({exc.strerror}); choose a folder you can write to"
    return None
