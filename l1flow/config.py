"""Validated pipeline configuration, read from YAML.

One file describes a whole pipeline: where conditions come from, the data
set, the models (their specs live with the training code), the firmware
target, how much to verify, and the criteria a version must pass to become
`production`. A bad field is reported with its path in the file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from l1flow.conditions.change import ChangeTolerances
from l1flow.conditions.drift import DriftThresholds
from l1flow.errors import BadInputError
from l1flow.registry.criteria import AcceptanceCriteria
from l1flow.settings import DEFAULT_WORKSPACE
from l1flow.training.specs import ModelSpec


class ConfigError(BadInputError):
    """The configuration file is missing, unreadable or has a bad field."""


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


class FirmwareConfig(_Section):
    part: str = "xcvu9p-flgb2104-2L-e"
    clock_period_ns: float = Field(5.0, gt=0)
    hls_backend: Literal["Vitis", "Vivado"] = "Vitis"
    io_type: Literal["io_parallel"] = "io_parallel"


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
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
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
            lines.append(f"  {where}: {error['msg']}")
        raise ConfigError("\n".join(lines)) from None
    return config
