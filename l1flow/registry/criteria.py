"""Acceptance criteria a model version must meet before it becomes `production`.

The criteria are part of the pipeline configuration (the lead embeds
:class:`AcceptanceCriteria` there). :func:`evaluate_acceptance` reads one
model's block of ``summary.json`` (and, if there is one, the block of the
version now in production) and says, criterion by criterion, whether it passes
and why not.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from l1flow.errors import BadInputError
from l1flow.records import Metrics, ModelRecord

RESOURCE_KINDS = ("LUT", "FF", "DSP", "BRAM")


class ResourceBudget(BaseModel):
    """Upper limits on the synthesised resources; `None` means no limit."""

    model_config = ConfigDict(extra="forbid")

    LUT: int | None = Field(default=None, ge=0)
    FF: int | None = Field(default=None, ge=0)
    DSP: int | None = Field(default=None, ge=0)
    BRAM: int | None = Field(default=None, ge=0)

    def limits(self) -> dict[str, int]:
        return {kind: limit for kind in RESOURCE_KINDS if (limit := getattr(self, kind)) is not None}


class AcceptanceCriteria(BaseModel):
    """What a candidate must show before `production` may move to it.

    `efficiency_tolerance` is absolute: a candidate whose signal efficiency at
    the working point is lower than production's by more than this, for any
    signal, is refused. Budgets left at `None` are not checked; a budget that is
    set but whose quantity was not measured fails unless `allow_unmeasured`.
    """

    model_config = ConfigDict(extra="forbid")

    require_bit_exact: bool = True
    efficiency_tolerance: float = Field(default=0.01, ge=0.0, le=1.0)
    max_latency_ns: float | None = Field(default=None, gt=0)
    max_latency_cycles: int | None = Field(default=None, gt=0)
    resources: ResourceBudget = Field(default_factory=ResourceBudget)
    allow_unmeasured: bool = False


class CriteriaFileError(BadInputError):
    """A criteria file cannot be read or does not hold valid AcceptanceCriteria."""


def load_criteria(path: Path) -> AcceptanceCriteria:
    """AcceptanceCriteria from a JSON or YAML file (.yaml/.yml), errors naming the file and field."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise CriteriaFileError(f"cannot read acceptance criteria {path}: {error.strerror}") from error
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as error:  # yaml.YAMLError or json.JSONDecodeError: both say where
        raise CriteriaFileError(f"{path} is not valid {path.suffix[1:].upper() or 'JSON'}: {error}") from error
    if not isinstance(data, dict):
        raise CriteriaFileError(f"{path} must hold a mapping of AcceptanceCriteria fields")
    try:
        return AcceptanceCriteria.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
        raise CriteriaFileError(f"{path}: invalid acceptance criteria: {problems}") from error


class CriterionResult(BaseModel):
    """The verdict on one criterion, with a sentence a user can act on."""

    name: str
    passed: bool
    detail: str


class AcceptanceVerdict(BaseModel):
    """All criteria for one model version; `passed` only if every one passed."""

    results: list[CriterionResult]

    @property
    def passed(self) -> bool:
        return all(result.passed for result in self.results)

    @property
    def failures(self) -> list[CriterionResult]:
        return [result for result in self.results if not result.passed]

    def reason(self) -> str:
        """One line naming every failed criterion (empty when all passed)."""
        return "; ".join(f"{r.name}: {r.detail}" for r in self.failures)


def gate_verdict(model: ModelRecord) -> tuple[bool | None, str]:
    """Whether the bit-exact gate passed: True, False, or None when never run."""
    comparisons = model.emulation_vs_hardware
    if not comparisons:
        return None, "no emulation-vs-hardware comparison was run"
    failed = [c for c in comparisons if not c.passed]
    if failed:
        parts = [
            f"{c.source} {c.mismatched_events} of {c.events} events differ ({c.mismatched_words} words)"
            for c in failed
        ]
        return False, "bit-exact gate failed: " + ", ".join(parts)
    parts = [f"{c.source} 0 of {c.events} events" for c in comparisons]
    return True, "bit-exact on " + ", ".join(parts)


def _check_gate(model: ModelRecord) -> CriterionResult:
    passed, detail = gate_verdict(model)
    return CriterionResult(name="bit_exact_gate", passed=bool(passed), detail=detail)


def _check_physics(
    model: ModelRecord, production: ModelRecord | None, tolerance: float
) -> CriterionResult:
    if production is None:
        return CriterionResult(name="physics", passed=True, detail="no production version to compare against")
    metrics = model.metrics or Metrics()
    reference = production.metrics or Metrics()
    ref_eff = reference.efficiency_at_rate
    new_eff = metrics.efficiency_at_rate
    if not ref_eff:
        return CriterionResult(name="physics", passed=True, detail="production has no efficiency at rate to compare")
    ref_wp = reference.working_point_khz
    new_wp = metrics.working_point_khz
    if ref_wp is not None and new_wp is not None and abs(float(ref_wp) - float(new_wp)) > 1e-9:
        return CriterionResult(
            name="physics",
            passed=False,
            detail=f"working point {new_wp} kHz differs from production's {ref_wp} kHz; efficiencies are not comparable",
        )
    problems: list[str] = []
    for signal, ref in sorted(ref_eff.items()):
        if signal not in new_eff:
            problems.append(f"{signal} not measured (production {ref:.4f})")
            continue
        drop = float(ref) - float(new_eff[signal])
        if drop > tolerance:
            problems.append(f"{signal} efficiency {new_eff[signal]:.4f} < production {ref:.4f} - tolerance {tolerance}")
    if problems:
        return CriterionResult(name="physics", passed=False, detail="; ".join(problems))
    return CriterionResult(
        name="physics", passed=True, detail=f"{len(ref_eff)} signal(s) within {tolerance} of production"
    )


def _check_latency(model: ModelRecord, criteria: AcceptanceCriteria) -> CriterionResult:
    budgets = {"ns": criteria.max_latency_ns, "cycles": criteria.max_latency_cycles}
    limits: dict[str, float] = {unit: limit for unit, limit in budgets.items() if limit is not None}
    if not limits:
        return CriterionResult(name="latency", passed=True, detail="no latency budget set")
    latency = model.latency
    problems: list[str] = []
    for unit, limit in limits.items():
        value = None if latency is None else latency.get(unit)
        if value is None:
            if not criteria.allow_unmeasured:
                problems.append(f"latency in {unit} not measured (budget {limit})")
        elif float(value) > float(limit):
            problems.append(f"{value} {unit} over budget {limit} {unit}")
    if problems:
        return CriterionResult(name="latency", passed=False, detail="; ".join(problems))
    return CriterionResult(name="latency", passed=True, detail="within budget")


def _check_resources(model: ModelRecord, criteria: AcceptanceCriteria) -> CriterionResult:
    limits = criteria.resources.limits()
    if not limits:
        return CriterionResult(name="resources", passed=True, detail="no resource budget set")
    resources = model.resources
    problems: list[str] = []
    for kind, limit in limits.items():
        value = None if resources is None else resources.get(kind)
        if value is None:
            if not criteria.allow_unmeasured:
                problems.append(f"{kind} not measured (budget {limit})")
        elif value > limit:
            problems.append(f"{kind} {value:g} over budget {limit}")
    if problems:
        return CriterionResult(name="resources", passed=False, detail="; ".join(problems))
    return CriterionResult(name="resources", passed=True, detail="within budget")


def evaluate_acceptance(
    model: ModelRecord, production: ModelRecord | None, criteria: AcceptanceCriteria
) -> AcceptanceVerdict:
    """Check one model block of summary.json against the criteria.

    `production` is the model block of the version now in production (None
    when there is none); physics is compared against it.
    """
    results: list[CriterionResult] = []
    if criteria.require_bit_exact:
        results.append(_check_gate(model))
    results.append(_check_physics(model, production, criteria.efficiency_tolerance))
    results.append(_check_latency(model, criteria))
    results.append(_check_resources(model, criteria))
    return AcceptanceVerdict(results=results)
