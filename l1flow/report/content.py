"""What a run report says, read from a run folder: plain dataclasses, no HTML.

Both the HTML page and the Prefect artifact payloads are built from
:func:`read_run_report`, so they never disagree. Every optional block of
summary.json may be missing or null; the report then says "not measured".
"""

from __future__ import annotations

import base64
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from l1flow.errors import BadInputError
from l1flow.records import (
    Baseline,
    Conditions,
    FidelityEntry,
    Iov,
    Metrics,
    ModelRecord,
    read_summary,
)
from l1flow.registry.criteria import (
    RESOURCE_KINDS,
    AcceptanceCriteria,
    AcceptanceVerdict,
    evaluate_acceptance,
    gate_verdict,
)
from l1flow.report.charts import comparison_chart

NOT_MEASURED = "not measured"
_GATE_COLUMNS = ("source", "events", "mismatched_events", "mismatched_words", "passed")
_MIME = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif"}
_MAGIC = {".png": b"\x89PNG\r\n\x1a\n", ".jpg": b"\xff\xd8", ".jpeg": b"\xff\xd8", ".gif": b"GIF8"}


class ReportError(BadInputError):
    """The run folder cannot be reported on (missing or malformed summary.json)."""


def fmt(value: Any, digits: int = 4) -> str:
    """A number for people: `not measured` for None, short floats, grouped integers."""
    if value is None:
        return NOT_MEASURED
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


@dataclass(frozen=True)
class Image:
    """An image ready to embed, or the reason it cannot be shown."""

    title: str
    data_uri: str | None
    note: str = ""


@dataclass(frozen=True)
class SignalRow:
    signal: str
    auc: float | None
    auc_previous: float | None
    efficiency: float | None
    efficiency_previous: float | None

    @property
    def efficiency_change(self) -> float | None:
        if self.efficiency is None or self.efficiency_previous is None:
            return None
        return self.efficiency - self.efficiency_previous


@dataclass(frozen=True)
class GateRow:
    source: str
    events: int
    mismatched_events: int
    mismatched_words: int
    passed: bool
    details: str


@dataclass(frozen=True)
class BudgetRow:
    quantity: str
    value: float | None
    budget: float | None
    status: str  # "within budget", "over budget", "not measured", "no budget"

    @property
    def fraction(self) -> float | None:
        if self.value is None or not self.budget:
            return None
        return float(self.value) / float(self.budget)


@dataclass
class ModelSection:
    name: str
    kind: str
    weights_hash: str
    firmware_hash: str
    previous_label: str | None
    previous_conditions: str | None
    working_point_khz: float | None
    threshold: float | None
    signals: list[SignalRow]
    fidelity: list[tuple[str, str]]
    decision_agreement: float | None
    gate_verdict: str  # "passed", "failed", "not run"
    gate_detail: str
    gate_rows: list[GateRow]
    budget_rows: list[BudgetRow]
    resource_source: str | None
    verdict: AcceptanceVerdict | None
    comparison: list[Image] = field(default_factory=list)
    roc: list[Image] = field(default_factory=list)
    scores: list[Image] = field(default_factory=list)
    residuals: list[Image] = field(default_factory=list)
    other_plots: list[Image] = field(default_factory=list)


@dataclass
class RunReport:
    run_dir: Path
    run_id: str
    config_name: str
    config_hash: str
    started: str
    wall_seconds: float | None
    train_seconds: float | None
    conditions_tag: str
    iov: str
    retrain: bool | None
    trigger_reason: str
    previous_label: str | None
    previous_conditions: str | None
    dataset_hash: str
    dataset_events: dict[str, Any]
    tool_versions: dict[str, str]
    models: list[ModelSection]


def image_from_file(run_dir: Path, relative: str, title: str) -> Image:
    """Embed a plot of the run folder as a data URI (or say why it is absent)."""
    path = (Path(run_dir) / relative).resolve()
    if not path.is_relative_to(Path(run_dir).resolve()):
        return Image(title, None, f"{relative} lies outside the run folder; not embedded")
    mime = _MIME.get(path.suffix.lower())
    if mime is None:
        return Image(title, None, f"{relative}: unsupported image type {path.suffix!r}")
    if not path.is_file():
        return Image(title, None, f"{relative} is missing from the run folder")
    data = path.read_bytes()
    magic = _MAGIC.get(path.suffix.lower())
    if magic is not None and not data.startswith(magic):
        return Image(title, None, f"{relative} is not a valid {path.suffix[1:].upper()} file")
    return Image(title, f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}")


def image_from_png(png: bytes, title: str) -> Image:
    return Image(title, "data:image/png;base64," + base64.b64encode(png).decode("ascii"))


def _iov_text(iov: Iov | None) -> str:
    if iov is None:
        return NOT_MEASURED
    return f"runs {iov.first_run} – {'open' if iov.last_run is None else iov.last_run}"


def _short(value: Any, limit: int = 200) -> str:
    """A gate detail as text, cut so one long list cannot swamp the table."""
    text = fmt(value) if not isinstance(value, (list, dict)) else json.dumps(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fidelity_rows(fidelity: FidelityEntry | None) -> list[tuple[str, str]]:
    """Label and value of each software-vs-emulation figure; nested maps (quantiles) one row each."""
    rows: list[tuple[str, str]] = []
    for key, value in sorted(({} if fidelity is None else asdict(fidelity)).items()):
        label = key.replace("_", " ")
        if isinstance(value, dict):
            rows.extend((f"{label} {inner}", _short(v)) for inner, v in sorted(value.items()))
        else:
            rows.append((label, _short(value) if not isinstance(value, float) else fmt(value, 6)))
    return rows


def _conditions_text(conditions: Conditions | None) -> str | None:
    if conditions is None:
        return None
    return f"{conditions.tag or '?'}, {_iov_text(conditions.iov)}"


def _budget_rows(model: ModelRecord, criteria: AcceptanceCriteria | None) -> list[BudgetRow]:
    resources = model.resources
    latency = model.latency
    limits: dict[str, float | None] = {kind: None for kind in RESOURCE_KINDS}
    latency_limits: dict[str, float | None] = {"cycles": None, "ns": None}
    if criteria is not None:
        limits.update(criteria.resources.limits())
        latency_limits = {"cycles": criteria.max_latency_cycles, "ns": criteria.max_latency_ns}
    rows: list[BudgetRow] = []
    for quantity, value, budget in [
        *((kind, None if resources is None else resources.get(kind), limits[kind]) for kind in RESOURCE_KINDS),
        *((f"latency ({unit})", None if latency is None else latency.get(unit), latency_limits[unit])
          for unit in ("cycles", "ns")),
        ("initiation interval (cycles)", None if latency is None else latency.ii, None),
        # a stage much deeper than the others, or deeper than the clock allows, will not close timing
        *((f"logic depth {module} (cells)", depth, None)
          for module, depth in ((latency.logic_depth if latency is not None else None) or {}).items()),
    ]:
        if value is None:
            status = NOT_MEASURED
        elif budget is None:
            status = "no budget"
        else:
            status = "within budget" if float(value) <= float(budget) else "over budget"
        rows.append(BudgetRow(quantity, value, budget, status))
    return rows


def _classify_plots(run_dir: Path, plots: dict[str, str], section: ModelSection) -> None:
    for key, relative in sorted((plots or {}).items()):
        if not relative:
            continue
        lowered = key.lower()
        title = key.replace("_", " ")
        image = image_from_file(run_dir, relative, title)
        if "roc" in lowered:
            section.roc.append(image)
        elif "score" in lowered or "dist" in lowered:
            section.scores.append(image)
        elif "resid" in lowered or "emulation" in lowered:
            section.residuals.append(image)
        else:
            section.other_plots.append(image)


def _model_section(
    run_dir: Path,
    name: str,
    model: ModelRecord,
    previous: ModelRecord | None,
    previous_label: str | None,
    previous_conditions: str | None,
    criteria: AcceptanceCriteria | None,
    run_label: str,
    images: bool,
) -> ModelSection:
    metrics = model.metrics or Metrics()
    previous_metrics = (None if previous is None else previous.metrics) or Metrics()
    auc = metrics.auc
    eff = metrics.efficiency_at_rate
    auc_prev = previous_metrics.auc
    eff_prev = previous_metrics.efficiency_at_rate
    signals = [
        SignalRow(s, auc.get(s), auc_prev.get(s), eff.get(s), eff_prev.get(s))
        for s in sorted(set(auc) | set(eff) | set(auc_prev) | set(eff_prev))
    ]
    passed, detail = gate_verdict(model)
    gate_rows = [
        GateRow(
            source=c.source,
            events=c.events,
            mismatched_events=c.mismatched_events,
            mismatched_words=c.mismatched_words,
            passed=c.passed,
            details=", ".join(
                f"{k}: {_short(v)}" for k, v in sorted(asdict(c).items()) if k not in _GATE_COLUMNS
            ),
        )
        for c in model.emulation_vs_hardware
    ]
    label = None if previous is None else previous_label
    section = ModelSection(
        name=name,
        kind=model.kind or "unknown",
        weights_hash=model.weights_hash or NOT_MEASURED,
        firmware_hash=model.firmware_hash or NOT_MEASURED,
        previous_label=label,
        previous_conditions=None if previous is None else previous_conditions,
        working_point_khz=metrics.working_point_khz,
        threshold=metrics.threshold,
        signals=signals,
        fidelity=_fidelity_rows(model.software_vs_emulation),
        decision_agreement=model.decision_agreement,
        gate_verdict={True: "passed", False: "failed", None: "not run"}[passed],
        gate_detail=detail,
        gate_rows=gate_rows,
        budget_rows=_budget_rows(model, criteria),
        resource_source=None if model.resources is None else model.resources.source,
        verdict=None if criteria is None else evaluate_acceptance(model, previous, criteria),
    )
    if not images:
        return section
    numeric_eff = {s: float(v) for s, v in eff.items() if v is not None}
    numeric_auc = {s: float(v) for s, v in auc.items() if v is not None}
    wp = metrics.working_point_khz
    if numeric_eff:
        section.comparison.append(
            image_from_png(
                comparison_chart(
                    f"{name}: signal efficiency at {fmt(wp)} kHz",
                    "efficiency",
                    numeric_eff,
                    {s: float(v) for s, v in eff_prev.items() if v is not None} or None,
                    run_label,
                    label or "previous production",
                ),
                "efficiency at rate, this run against the previous production",
            )
        )
    if numeric_auc:
        section.comparison.append(
            image_from_png(
                comparison_chart(
                    f"{name}: ROC AUC",
                    "AUC",
                    numeric_auc,
                    {s: float(v) for s, v in auc_prev.items() if v is not None} or None,
                    run_label,
                    label or "previous production",
                ),
                "ROC AUC, this run against the previous production",
            )
        )
    _classify_plots(run_dir, model.plots, section)
    return section


def read_run_report(
    run_dir: Path,
    previous_production: Baseline | None = None,
    criteria: AcceptanceCriteria | None = None,
    images: bool = True,
) -> RunReport:
    """Everything the report shows, from `run_dir/summary.json` and its plots.

    `previous_production` is what the run is compared with
    (:meth:`ModelRegistry.production_summary`, or ``Baseline.of_run`` of a
    previous run's summary); models are matched by name. `criteria` adds
    budgets and the acceptance verdict. `images=False` skips drawing and
    embedding plots (for text-only uses).
    """
    run_dir = Path(run_dir)
    try:
        summary = read_summary(run_dir)
    except BadInputError as error:
        raise ReportError(str(error)) from error
    conditions = summary.conditions or Conditions()
    trigger = conditions.trigger or {}
    dataset = summary.dataset
    previous_label: str | None = None
    previous_conditions: str | None = None
    if previous_production is not None:
        previous_label = previous_production.label
        previous_conditions = _conditions_text(previous_production.conditions)
    run_label = f"this run ({summary.run_id or '?'})"
    sections = []
    for name, model in summary.models.items():
        previous = None if previous_production is None else previous_production.models.get(name)
        label = previous_label
        if previous is not None and previous.version is not None:
            label = f"{previous_label} v{previous.version}"
        model_conditions = None if previous is None else (_conditions_text(previous.conditions) or previous_conditions)
        sections.append(
            _model_section(run_dir, name, model, None if previous is None else previous.record, label,
                           model_conditions, criteria, run_label, images)
        )
    return RunReport(
        run_dir=run_dir,
        run_id=summary.run_id or "unknown run",
        config_name=summary.config_name or NOT_MEASURED,
        config_hash=summary.config_hash or NOT_MEASURED,
        started=summary.started or NOT_MEASURED,
        wall_seconds=summary.wall_seconds,
        train_seconds=summary.train_seconds,
        conditions_tag=conditions.tag or NOT_MEASURED,
        iov=_iov_text(conditions.iov),
        retrain=trigger.get("retrain"),
        trigger_reason=str(trigger.get("reason", NOT_MEASURED)),
        previous_label=previous_label,
        previous_conditions=previous_conditions,
        dataset_hash=(dataset.hash if dataset is not None else None) or NOT_MEASURED,
        dataset_events=dict(dataset.events) if dataset is not None else {},
        tool_versions={k: str(v) for k, v in summary.tool_versions.items()},
        models=sections,
    )
