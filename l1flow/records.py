"""Typed records for what the stages hand each other and what a run writes to disk.

The run summary (``summary.json``, ``format: "l1flow-summary/2"``) is a
:class:`RunSummary`; every reader and writer goes through :func:`read_summary`
and :func:`write_summary`, which check every field's type. The schema, field by
field, is in ``docs/formats.md`` ("Run summary").

Reading rules:

- ``l1flow-summary/2``: every field is required (optional values are written
  as ``null``); a missing field or a value of the wrong type is refused with a
  :class:`~l1flow.errors.BadInputError` naming the file and the field.
- ``l1flow-summary/1`` (or no ``format``; summaries written before the
  records): absent fields read as null or empty; a gate entry's ``mismatches``
  counted differing *words*, a C-sim entry's counted differing *events*, and
  both are mapped to the named fields. A gate entry that failed and names no
  ``mismatched_events`` cannot be mapped and is refused.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, Union

from l1flow.errors import BadInputError
from l1flow.fileio import write_json_atomic

SUMMARY_FORMAT = "l1flow-summary/2"
OLD_SUMMARY_FORMAT = "l1flow-summary/1"
SUMMARY_FILE = "summary.json"

_Record = TypeVar("_Record")


@dataclass(frozen=True)
class GateEntry:
    """The bit-exact gate of one hardware source against emulation (integers, not decimals).

    ``mismatched_events`` counts events with at least one differing output word;
    ``mismatched_words`` counts the differing words, so one event can add several.
    """

    source: str
    events: int
    mismatched_events: int
    mismatched_words: int
    passed: bool
    events_per_s: float | None = None
    failures: list[str] = field(default_factory=list)
    #: clock cycles from an event's input to its output as the RTL simulator saw them (checked
    #: against the generator's stated latency); null where the harness does not measure it
    observed_latency_cycles: int | None = None


@dataclass(frozen=True)
class CsimEntry:
    """Emulation against the firmware C-simulation on a subset of events."""

    source: str
    events: int
    mismatched_events: int


@dataclass(frozen=True)
class FidelityEntry:
    """Software (QKeras / xgboost, floating point) against emulation; see l1flow.verify.fidelity."""

    events: int
    outputs_per_event: int
    tolerance: float
    max_abs_diff: float
    mean_abs_diff: float
    fraction_differing: float
    abs_diff_quantiles: dict[str, float]
    #: events where any output differs by more than the tolerance (absent in summaries before 2026-12)
    events_differing: int | None = None


@dataclass(frozen=True)
class EmulationEntry:
    """How many events the fast emulator ran, and how fast."""

    events: int
    events_per_s: float


@dataclass(frozen=True)
class Metrics:
    """Physics on the test sample (l1flow.training.metrics.trigger_metrics)."""

    auc: dict[str, float] = field(default_factory=dict)
    efficiency_at_rate: dict[str, float] = field(default_factory=dict)
    threshold: float | None = None
    working_point_khz: float | None = None
    crossing_rate_mhz: float | None = None
    rate_khz: float | None = None
    background_events: int | None = None


@dataclass(frozen=True)
class Resources:
    """Synthesised resources (counts; BRAM in 18 Kb blocks); a kind the tool does not report is null."""

    LUT: int | float | None = None
    FF: int | float | None = None
    DSP: int | float | None = None
    BRAM: int | float | None = None
    carry: int | float | None = None
    source: str | None = None
    part: str | None = None
    utilisation: dict[str, float] | None = None
    job_hash: str | None = None

    def get(self, kind: str) -> int | float | None:
        """The count of one of l1flow.registry.criteria.RESOURCE_KINDS, as recorded."""
        value: int | float | None = getattr(self, kind)
        return value


@dataclass(frozen=True)
class Latency:
    """Latency of the synthesised design; ``ns`` is null for a combinational one."""

    cycles: int | None = None
    ns: float | None = None
    ii: int | None = None
    source: str | None = None
    #: cells on the longest register-to-register path of each pipeline stage (or of the whole top), from yosys
    logic_depth: dict[str, int] | None = None

    def get(self, unit: str) -> int | float | None:
        """``cycles``, ``ns`` or ``ii``, as recorded."""
        value: int | float | None = getattr(self, unit)
        return value


@dataclass(frozen=True)
class Precision:
    """The firmware precision settings a project was built with, and how they were chosen."""

    settings: dict[str, Any]
    report: dict[str, Any]


@dataclass(frozen=True)
class Physics:
    """What the physics step hands on: this run's metrics beside production's, and its plots."""

    metrics: Metrics
    previous_production: Metrics | None
    comparison: dict[str, Any]
    plots: dict[str, str]


@dataclass(frozen=True)
class ModelRecord:
    """One model of a run: hashes, fidelity, gate, physics, synthesis, files."""

    kind: str | None = None
    run_id: str | None = None
    weights_hash: str | None = None
    firmware_hash: str | None = None
    train_seconds: float | None = None
    precision: Precision | None = None
    software_vs_emulation: FidelityEntry | None = None
    decision_agreement: float | None = None
    decision_threshold: float | None = None
    emulation: EmulationEntry | None = None
    emulation_vs_csim: CsimEntry | None = None
    #: per feature, emulation inputs outside the physical layout (l1flow.data.layout.check_layout)
    outside_layout: dict[str, Any] | None = None
    emulation_vs_hardware: list[GateEntry] = field(default_factory=list)
    metrics: Metrics | None = None
    previous_production: Metrics | None = None
    comparison: dict[str, Any] | None = None
    resources: Resources | None = None
    latency: Latency | None = None
    #: plot name -> path relative to the run folder
    plots: dict[str, str] = field(default_factory=dict)
    #: "model", "firmware", "vectors" (and optional others) -> path relative to the run folder
    artifacts: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Iov:
    first_run: int
    last_run: int | None = None


@dataclass(frozen=True)
class Conditions:
    tag: str | None = None
    iov: Iov | None = None
    payload_hash: str | None = None
    store: str | None = None
    #: why the run started: the conditions-change event's payload, or {"reason": "run by hand"}
    trigger: dict[str, Any] | None = None


@dataclass(frozen=True)
class DatasetRecord:
    hash: str | None = None
    events: dict[str, int] = field(default_factory=dict)
    classes: list[str] = field(default_factory=list)
    source: str | None = None


@dataclass(frozen=True)
class RegistryEntry:
    """The version the registry gave one model of the run."""

    name: str
    version: int
    promoted: bool
    verdict: str
    #: the run's weights and firmware matched this existing version (no new version was made)
    matched_existing: bool = False


@dataclass(frozen=True)
class RunSummary:
    """A run's ``summary.json``."""

    run_id: str | None = None
    config_name: str | None = None
    config_hash: str | None = None
    started: str | None = None
    conditions: Conditions | None = None
    dataset: DatasetRecord | None = None
    #: tool -> version (null for a tool that is not installed)
    tool_versions: dict[str, str | None] = field(default_factory=dict)
    train_seconds: float | None = None
    wall_seconds: float | None = None
    models: dict[str, ModelRecord] = field(default_factory=dict)
    #: null until the run's versions are registered
    registry: list[RegistryEntry] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, ``format`` first."""
        return {"format": SUMMARY_FORMAT, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: Any, file: Path | str = SUMMARY_FILE) -> RunSummary:
        """Check and read a summary (either format); BadInputError names ``file`` and the field."""
        if not isinstance(data, dict):
            raise BadInputError(f"{file}: a run summary must be a JSON object, not {_json_type(data)}")
        fmt = data.get("format", OLD_SUMMARY_FORMAT)
        if fmt == SUMMARY_FORMAT:
            body = {k: v for k, v in data.items() if k != "format"}
            return _build(cls, body, "", str(file), strict=True)
        if fmt == OLD_SUMMARY_FORMAT:
            return _build(cls, _map_old_summary(data, str(file)), "", str(file), strict=False)
        raise BadInputError(
            f"{file}: format {fmt!r} is not a run summary this l1flow reads "
            f"({SUMMARY_FORMAT}, or {OLD_SUMMARY_FORMAT} / no format for older runs); "
            "use the l1flow version that wrote it"
        )


@dataclass(frozen=True)
class BaselineModel:
    """A model block a new run is compared with, and where it came from."""

    record: ModelRecord
    #: the registry version (None when the baseline is a run folder's summary)
    version: int | None = None
    conditions: Conditions | None = None


@dataclass(frozen=True)
class Baseline:
    """What a run is compared with: the production versions, or another run's summary."""

    label: str
    models: dict[str, BaselineModel]
    conditions: Conditions | None = None

    @classmethod
    def of_run(cls, summary: RunSummary) -> Baseline:
        """A previous run's summary as the baseline, labelled by its run id."""
        return cls(
            label=summary.run_id or "previous production",
            models={name: BaselineModel(model, None, summary.conditions) for name, model in summary.models.items()},
            conditions=summary.conditions,
        )


def parse(cls: type[_Record], data: Any, where: str) -> _Record:
    """A record ``cls`` from a dict built in memory, every field present and typed (``where`` names it)."""
    return _build(cls, data, "", where, strict=True)


def model_from_dict(data: Any, where: str) -> ModelRecord:
    """One model block kept on its own (the registry stores them as tags); either format."""
    if isinstance(data, dict) and _is_old_model(data):
        return _build(ModelRecord, _map_old_model(data, where, ""), "", where, strict=False)
    return _build(ModelRecord, data, "", where, strict=True)


def model_to_dict(model: ModelRecord) -> dict[str, Any]:
    return dataclasses.asdict(model)


def read_summary(path: Path | str) -> RunSummary:
    """The summary of a run folder (or of a summary.json file given directly)."""
    path = Path(path)
    file = path if path.suffix == ".json" else path / SUMMARY_FILE
    try:
        data = json.loads(file.read_text())
    except FileNotFoundError as error:
        raise BadInputError(f"{file} does not exist; pass the folder of one pipeline run") from error
    except OSError as error:
        raise BadInputError(f"cannot read {file}: {error.strerror}") from error
    except json.JSONDecodeError as error:
        raise BadInputError(f"{file} is not valid JSON (line {error.lineno}): {error.msg}") from error
    return RunSummary.from_dict(data, file)


def write_summary(run_dir: Path, summary: RunSummary) -> Path:
    """Write ``run_dir/summary.json`` atomically, after checking it as a reader will."""
    path = Path(run_dir) / SUMMARY_FILE
    data = json.loads(json.dumps(summary.to_dict(), default=_plain))
    RunSummary.from_dict(data, path)  # the checks a reader makes, before anything is written
    write_json_atomic(path, data)
    return path


def _plain(value: Any) -> Any:
    """JSON for the numpy scalars and arrays and the paths free-form fields (precision reports) may hold."""
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # numpy scalar or array
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON")


# ---- format 1 -----------------------------------------------------------------------


def _is_old_model(data: dict[str, Any]) -> bool:
    gates = data.get("emulation_vs_hardware") or []
    csim = data.get("emulation_vs_csim") or {}
    return any(isinstance(g, dict) and "mismatches" in g for g in gates) or (
        isinstance(csim, dict) and "mismatches" in csim
    ) or set(data) != {f.name for f in dataclasses.fields(ModelRecord)}


def _map_old_summary(data: dict[str, Any], file: str) -> dict[str, Any]:
    mapped = {k: v for k, v in data.items() if k != "format"}
    models = mapped.get("models")
    if isinstance(models, dict):
        mapped["models"] = {
            name: _map_old_model(block, file, f"models.{name}") if isinstance(block, dict) else block
            for name, block in models.items()
        }
    return mapped


def _map_old_model(block: dict[str, Any], file: str, where: str) -> dict[str, Any]:
    """Format 1's ``mismatches``: words in gate entries, events in the C-sim entry."""
    mapped = dict(block)
    gates = mapped.get("emulation_vs_hardware")
    if isinstance(gates, list):
        mapped["emulation_vs_hardware"] = [
            _map_old_gate(g, file, f"{where}.emulation_vs_hardware[{i}]") if isinstance(g, dict) else g
            for i, g in enumerate(gates)
        ]
    csim = mapped.get("emulation_vs_csim")
    if isinstance(csim, dict) and "mismatches" in csim:
        mapped["emulation_vs_csim"] = {
            **{k: v for k, v in csim.items() if k != "mismatches"},
            "mismatched_events": csim["mismatches"],
        }
    return mapped


def _map_old_gate(gate: dict[str, Any], file: str, where: str) -> dict[str, Any]:
    mapped = {k: v for k, v in gate.items() if k != "mismatches"}
    words = gate.get("mismatches")
    if "mismatched_words" not in mapped and words is not None:
        mapped["mismatched_words"] = words
    if "mismatched_events" not in mapped:
        if mapped.get("mismatched_words") != 0:
            raise BadInputError(
                f"{file}: field {where}.mismatched_events is missing and this old summary's "
                f"'mismatches' ({words!r}) counts words, not events; rerun the pipeline to get a "
                f"{SUMMARY_FORMAT} summary"
            )
        mapped["mismatched_events"] = 0
    return mapped


# ---- checking -----------------------------------------------------------------------


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


def _label(where: str, key: str) -> str:
    if key.startswith("["):
        return f"{where}{key}"
    return f"{where}.{key}" if where else key


def _build(cls: type[_Record], data: Any, where: str, file: str, *, strict: bool) -> _Record:
    """An instance of the dataclass ``cls`` from JSON ``data``, every field's type checked."""
    if not isinstance(data, dict):
        raise BadInputError(f"{file}: field {where or 'summary'} must be an object, not {_json_type(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown and strict:
        raise BadInputError(f"{file}: unknown field {_label(where, unknown[0])} (fields: {', '.join(fields)})")
    values: dict[str, Any] = {}
    for name, spec in fields.items():
        label = _label(where, name)
        if name not in data:
            if strict:
                raise BadInputError(f"{file}: required field {label} is missing")
            if spec.default is not dataclasses.MISSING:
                values[name] = spec.default
            elif spec.default_factory is not dataclasses.MISSING:
                values[name] = spec.default_factory()
            else:
                raise BadInputError(f"{file}: required field {label} is missing")
            continue
        values[name] = _value(hints[name], data[name], label, file, strict)
    return cls(**values)


def _value(hint: Any, value: Any, label: str, file: str, strict: bool) -> Any:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        problems = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _value(option, value, label, file, strict)
            except BadInputError as error:
                problems.append(error)
        if len(problems) == 1:
            raise problems[0]
        raise BadInputError(f"{file}: field {label} has the wrong type ({_json_type(value)})")
    if hint is Any:
        return value
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, label, file, strict=strict)  # type: ignore[arg-type]
    if origin is list:
        if not isinstance(value, list):
            raise BadInputError(f"{file}: field {label} must be a list, not {_json_type(value)}")
        (item,) = typing.get_args(hint)
        return [_value(item, v, f"{label}[{i}]", file, strict) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise BadInputError(f"{file}: field {label} must be an object, not {_json_type(value)}")
        _, item = typing.get_args(hint)
        return {str(k): _value(item, v, f"{label}.{k}", file, strict) for k, v in value.items()}
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    else:
        raise TypeError(f"records: no check for type {hint!r}")
    expected = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}[hint]
    raise BadInputError(f"{file}: field {label} must be {expected}, not {_json_type(value)}")
