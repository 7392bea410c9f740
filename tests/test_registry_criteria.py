"""Acceptance criteria on model blocks of summary.json (no MLflow needed)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from pydantic import ValidationError

from l1flow.records import GateEntry, Latency, Metrics, ModelRecord, Resources
from l1flow.registry.criteria import (
    AcceptanceCriteria,
    CriteriaFileError,
    ResourceBudget,
    evaluate_acceptance,
    load_criteria,
)


def _model(eff: dict[str, float], mismatches: int = 0, resources: Any = "default", latency: Any = "default") -> ModelRecord:
    """A model block whose failing events each differ in two words."""
    return ModelRecord(
        metrics=Metrics(efficiency_at_rate=eff, working_point_khz=1.0),
        emulation_vs_hardware=[
            GateEntry("verilator", 5000, mismatches, 2 * mismatches, mismatches == 0),
            GateEntry("ghdl", 5000, 0, 0, True),
        ],
        resources=Resources(LUT=5000, FF=2000, DSP=12, BRAM=0) if resources == "default" else resources,
        latency=Latency(cycles=10, ns=50.0) if latency == "default" else latency,
    )


def test_all_pass_without_production() -> None:
    verdict = evaluate_acceptance(_model({"haa4b": 0.30}), None, AcceptanceCriteria())
    assert verdict.passed
    assert [r.name for r in verdict.results] == ["bit_exact_gate", "physics", "latency", "resources"]
    assert verdict.reason() == ""


def test_physics_tolerance_per_signal() -> None:
    production = _model({"haa4b": 0.300, "htautau": 0.100})
    criteria = AcceptanceCriteria(efficiency_tolerance=0.01)
    within = evaluate_acceptance(_model({"haa4b": 0.291, "htautau": 0.120}), production, criteria)
    assert within.passed
    worse = evaluate_acceptance(_model({"haa4b": 0.289, "htautau": 0.120}), production, criteria)
    assert not worse.passed
    assert [f.name for f in worse.failures] == ["physics"]
    assert "haa4b efficiency 0.2890 < production 0.3000" in worse.reason()
    assert "htautau" not in worse.reason()
    missing = evaluate_acceptance(_model({"haa4b": 0.35}), production, criteria)
    assert "htautau not measured" in missing.reason()
    moved = _model({"haa4b": 0.35, "htautau": 0.2})
    moved = replace(moved, metrics=Metrics(efficiency_at_rate=moved.metrics.efficiency_at_rate, working_point_khz=2.0))
    assert "not comparable" in evaluate_acceptance(moved, production, criteria).reason()


def test_gate_failure_and_gate_not_run() -> None:
    verdict = evaluate_acceptance(_model({"haa4b": 0.3}, mismatches=1), None, AcceptanceCriteria())
    assert [f.name for f in verdict.failures] == ["bit_exact_gate"]
    assert "verilator 1 of 5000 events differ (2 words)" in verdict.reason()
    never = replace(_model({"haa4b": 0.3}), emulation_vs_hardware=[])
    assert "no emulation-vs-hardware comparison" in evaluate_acceptance(never, None, AcceptanceCriteria()).reason()
    assert evaluate_acceptance(never, None, AcceptanceCriteria(require_bit_exact=False)).passed


def test_budgets() -> None:
    criteria = AcceptanceCriteria(max_latency_ns=40.0, max_latency_cycles=10, resources=ResourceBudget(LUT=4999, DSP=12))
    verdict = evaluate_acceptance(_model({"a": 0.1}), None, criteria)
    assert {f.name for f in verdict.failures} == {"latency", "resources"}
    assert "50.0 ns over budget 40.0 ns" in verdict.reason()
    assert "cycles" not in verdict.reason()  # 10 cycles meets a 10-cycle budget
    assert "LUT 5000 over budget 4999" in verdict.reason()
    assert "DSP" not in verdict.reason()
    unmeasured = _model({"a": 0.1}, resources=None, latency=None)
    reason = evaluate_acceptance(unmeasured, None, criteria).reason()
    assert "latency in ns not measured" in reason and "LUT not measured" in reason
    relaxed = criteria.model_copy(update={"allow_unmeasured": True})
    assert evaluate_acceptance(unmeasured, None, relaxed).passed


def test_criteria_validation_names_the_field() -> None:
    with pytest.raises(ValidationError, match="efficiency_tolerance"):
        AcceptanceCriteria(efficiency_tolerance=-0.1)
    with pytest.raises(ValidationError, match="max_lut"):
        AcceptanceCriteria.model_validate({"max_lut": 3})
    loaded = AcceptanceCriteria.model_validate({"resources": {"LUT": 100}, "max_latency_ns": 50})
    assert loaded.resources.limits() == {"LUT": 100}


def test_load_criteria_from_yaml_and_json(tmp_path) -> None:
    good = tmp_path / "c.yaml"
    good.write_text("efficiency_tolerance: 0.02\nmax_latency_ns: 50\nresources: {LUT: 1000, DSP: 10}\n")
    loaded = load_criteria(good)
    assert loaded.efficiency_tolerance == 0.02 and loaded.resources.limits() == {"LUT": 1000, "DSP": 10}
    bad = tmp_path / "c.json"
    bad.write_text('{"resources": {"LUT": -1}}')
    with pytest.raises(CriteriaFileError, match=r"c.json: invalid acceptance criteria: resources.LUT"):
        load_criteria(bad)
    bad.write_text('{"resources": ')
    with pytest.raises(CriteriaFileError, match="c.json is not valid JSON"):
        load_criteria(bad)
    with pytest.raises(CriteriaFileError, match="cannot read"):
        load_criteria(tmp_path / "absent.yaml")
