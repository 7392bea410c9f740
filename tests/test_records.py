"""The run summary's typed records: round trip, refusals naming the field, old formats, event/word counts."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from test_registry_runfolders import make_run_folder

from l1flow.errors import BadInputError
from l1flow.firmware.fixed import FixedType, quantize
from l1flow.firmware.vectors import Port, VectorSet
from l1flow.records import (
    SUMMARY_FORMAT,
    Precision,
    RunSummary,
    model_from_dict,
    model_to_dict,
    read_summary,
    write_summary,
)
from l1flow.registry.criteria import AcceptanceCriteria, evaluate_acceptance
from l1flow.report.content import read_run_report
from l1flow.verify.gate import compare

IN_T = FixedType.parse("ap_fixed<16,6>")
OUT_T = FixedType.parse("ap_fixed<12,4>")


@pytest.fixture(scope="module")
def made_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One run folder for the module (its plots take a while to draw); tests copy its summary."""
    return make_run_folder(tmp_path_factory.mktemp("made") / "run", models=(("ae", "dense_ae"), ("bdt", "bdt_classifier")))


@pytest.fixture
def run_summary(tmp_path: Path, made_run: Path) -> tuple[Path, dict]:
    """A run folder of this test's own holding a copy of the made run's summary.json."""
    run = tmp_path / "run"
    run.mkdir()
    text = (made_run / "summary.json").read_text()
    (run / "summary.json").write_text(text)
    return run, json.loads(text)


def test_a_summary_round_trips(tmp_path: Path, run_summary: tuple[Path, dict]) -> None:
    run, data = run_summary
    assert data["format"] == SUMMARY_FORMAT
    summary = read_summary(run)
    assert summary.models["ae"].emulation_vs_hardware[0].source == "verilator"
    assert summary.models["bdt"].resources is not None and summary.models["bdt"].resources.LUT == 41000
    copy = tmp_path / "copy"
    write_summary(copy, summary)
    # numpy values in free-form fields (a precision report) are written as plain JSON
    first = summary.models["ae"]
    with_numpy = replace(summary, models={**summary.models, "ae": replace(
        first, precision=Precision({"overrides": {}}, {"events": np.int64(3), "range": np.arange(2)}))})
    write_summary(tmp_path / "numpy", with_numpy)
    written = json.loads((tmp_path / "numpy" / "summary.json").read_text())["models"]["ae"]["precision"]
    assert written == {"settings": {"overrides": {}}, "report": {"events": 3, "range": [0, 1]}}
    assert read_summary(copy) == summary
    assert json.loads((copy / "summary.json").read_text()) == data


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        (lambda d: d["models"]["ae"]["emulation_vs_hardware"][0].update(mismatched_words="0"),
         "models.ae.emulation_vs_hardware[0].mismatched_words", "must be an integer, not a string"),
        (lambda d: d["models"]["ae"]["emulation_vs_hardware"][0].update(passed=1),
         "models.ae.emulation_vs_hardware[0].passed", "must be a boolean, not an integer"),
        (lambda d: d["models"]["bdt"].pop("latency"), "models.bdt.latency", "is missing"),
        (lambda d: d["models"]["ae"]["metrics"].pop("efficiency_at_rate"),
         "models.ae.metrics.efficiency_at_rate", "is missing"),
        (lambda d: d["conditions"]["iov"].update(first_run=None), "conditions.iov.first_run", "must be an integer"),
        (lambda d: d.update(models=[]), "models", "must be an object, not a list"),
        (lambda d: d["models"]["ae"].update(mismatches=0), "models.ae.mismatches", "unknown field"),
    ],
)
def test_a_wrong_or_missing_field_is_refused_by_name(run_summary: tuple[Path, dict], change, field: str,
                                                     problem: str) -> None:
    run, data = run_summary
    change(data)
    (run / "summary.json").write_text(json.dumps(data))
    with pytest.raises(BadInputError) as refused:
        read_summary(run)
    message = str(refused.value)
    assert message.startswith(str(run / "summary.json")) and field in message and problem in message
    assert refused.value.exit_code == 2


def test_writing_a_bad_record_is_refused_and_writes_nothing(tmp_path: Path, run_summary: tuple[Path, dict]) -> None:
    run, _ = run_summary
    summary = read_summary(run)
    bad = replace(summary, models={"ae": replace(summary.models["ae"], kind=7)})  # type: ignore[arg-type]
    target = tmp_path / "out"
    with pytest.raises(BadInputError, match="models.ae.kind must be a string"):
        write_summary(target, bad)
    assert not (target / "summary.json").exists()


def _old_summary(gate: dict) -> dict:
    """A summary as l1flow wrote it before the records: no format, `mismatches` meaning words."""
    return {
        "run_id": "old",
        "models": {"ae": {"kind": "dense_ae", "emulation_vs_hardware": [gate],
                          "emulation_vs_csim": {"source": "hls4ml C-sim", "events": 500, "mismatches": 3}}},
    }


def test_old_summaries_are_mapped_or_refused_clearly(tmp_path: Path) -> None:
    old = _old_summary({"source": "verilator", "events": 1000, "mismatches": 5, "mismatched_events": 2,
                        "passed": False, "events_per_s": 1.0, "failures": ["words: 2 of 1000 events differ"]})
    summary = RunSummary.from_dict(old, "old.json")
    model = summary.models["ae"]
    (gate,) = model.emulation_vs_hardware
    assert (gate.mismatched_events, gate.mismatched_words) == (2, 5)
    assert model.emulation_vs_csim is not None and model.emulation_vs_csim.mismatched_events == 3
    assert model.resources is None and model.plots == {} and summary.config_hash is None
    assert RunSummary.from_dict({**old, "format": "l1flow-summary/1"}, "old.json") == summary
    # written again, it is a version-2 summary that reads strictly
    write_summary(tmp_path, summary)
    assert read_summary(tmp_path) == summary
    assert json.loads((tmp_path / "summary.json").read_text())["format"] == SUMMARY_FORMAT

    failed_words_only = _old_summary({"source": "ghdl", "events": 1000, "mismatches": 5, "passed": False})
    with pytest.raises(BadInputError, match=r"old.json: field models.ae.emulation_vs_hardware\[0\].mismatched_events "
                                            r"is missing .* counts words, not events"):
        RunSummary.from_dict(failed_words_only, "old.json")
    passed = RunSummary.from_dict(_old_summary({"source": "ghdl", "events": 9, "mismatches": 0, "passed": True}))
    assert passed.models["ae"].emulation_vs_hardware[0].mismatched_events == 0
    with pytest.raises(BadInputError, match="format 'l1flow-summary/9' is not a run summary this l1flow reads"):
        RunSummary.from_dict({"format": "l1flow-summary/9"}, "new.json")
    with pytest.raises(BadInputError, match="old.json: field models.ae.kind must be a string, not an integer"):
        RunSummary.from_dict({"models": {"ae": {"kind": 3}}}, "old.json")


def test_one_event_with_several_differing_words_counts_once_as_an_event(
    tmp_path: Path, run_summary: tuple[Path, dict]
) -> None:
    rng = np.random.default_rng(3)
    x = quantize(rng.normal(0, 2, size=(40, 4)), IN_T)
    expected = VectorSet(inputs=[Port("x", str(IN_T), (4,))], outputs=[Port("y", str(OUT_T), (3,))],
                         input_words=x, output_words=quantize(rng.normal(0, 1, size=(40, 3)), OUT_T),
                         model={"name": "toy", "version": "1"})
    expected.save(tmp_path / "expected")
    words = expected.output_words.copy()
    words[7, 0] ^= 1 << 3  # event 7: three differing words
    words[7, 1] ^= 1
    words[7, 2] ^= 1 << 5
    words[20, 2] ^= 1  # event 20: one
    entry = compare(expected, expected.result(words, source="verilator")).entry("verilator", 1000.0)
    assert (entry.events, entry.mismatched_events, entry.mismatched_words, entry.passed) == (40, 2, 4, False)

    run, _ = run_summary
    summary = read_summary(run)
    model = replace(summary.models["ae"], emulation_vs_hardware=[entry])
    verdict = evaluate_acceptance(model, None, AcceptanceCriteria())
    assert "verilator 2 of 40 events differ (4 words)" in verdict.reason()
    write_summary(run, replace(summary, models={**summary.models, "ae": model}))
    (row,) = read_run_report(run, images=False).models[0].gate_rows
    assert (row.mismatched_events, row.mismatched_words) == (2, 4)
    written = json.loads((run / "summary.json").read_text())["models"]["ae"]["emulation_vs_hardware"][0]
    assert (written["mismatched_events"], written["mismatched_words"]) == (2, 4) and "mismatches" not in written


def test_a_registry_block_reads_in_either_format() -> None:
    block = {"kind": "bdt", "emulation_vs_hardware": [{"source": "ghdl", "events": 10, "mismatches": 0,
                                                       "mismatched_events": 0, "passed": True}]}
    model = model_from_dict(block, "bdt version 1 tag l1flow.summary")
    assert model.emulation_vs_hardware[0].mismatched_words == 0
    stored = json.loads(json.dumps(model_to_dict(model)))
    assert "mismatches" not in stored["emulation_vs_hardware"][0]
    assert model_from_dict(stored, "x") == model
    stored["emulation_vs_hardware"][0]["events"] = "10"
    with pytest.raises(BadInputError, match=r"x: field emulation_vs_hardware\[0\].events must be an integer"):
        model_from_dict(stored, "x")
