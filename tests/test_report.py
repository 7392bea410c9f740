"""The HTML run report and the Prefect artifact payloads, on realistic run folders."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from test_registry_runfolders import make_run_folder

from l1flow.records import Baseline, read_summary
from l1flow.registry.criteria import AcceptanceCriteria, ResourceBudget
from l1flow.report import ReportError, render_report, report_artifacts

MODELS = (("ae", "dense_ae"), ("bdt", "bdt_classifier"))


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _elements(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Elements()
    parser.feed(page)
    return parser.tags


def _pair(tmp_path: Path) -> tuple[Path, Path]:
    first = make_run_folder(tmp_path / "run1", run_id="run-1", seed=1, models=MODELS)
    second = make_run_folder(tmp_path / "run2", run_id="run-2", seed=2, tag="Calib_v2", first_run=391500,
                             signal_shift=0.9, mismatches=4, models=MODELS,
                             resources={"LUT": 70000, "FF": 9000, "DSP": 3, "BRAM": 1, "source": "yosys"})
    return first, second


def test_report_is_self_contained_and_compares_with_production(tmp_path: Path) -> None:
    first, second = _pair(tmp_path)
    previous = Baseline.of_run(read_summary(first))
    criteria = AcceptanceCriteria(max_latency_ns=20.0, resources=ResourceBudget(LUT=60000))
    path = render_report(second, previous, criteria)
    assert path == second / "report.html"
    page = path.read_text()
    tags = _elements(page)
    images = [attrs["src"] for tag, attrs in tags if tag == "img"]
    assert len(images) == 2 * 5
    for src in images:
        assert src is not None and src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n")
    # The embedded ROC is the run's own file, byte for byte.
    roc = base64.b64encode((second / "plots" / "ae_roc.png").read_bytes()).decode()
    assert f"data:image/png;base64,{roc}" in images
    assert not [t for t, _ in tags if t in ("script", "link", "iframe", "object", "embed")]
    assert not re.search(r"(src|href)=\"(https?:|//)", page)
    assert "url(" not in page
    # Numbers in the tables come from the summaries.
    now = json.loads((second / "summary.json").read_text())["models"]["ae"]["metrics"]["efficiency_at_rate"]
    before = json.loads((first / "summary.json").read_text())["models"]["ae"]["metrics"]["efficiency_at_rate"]
    assert f"{now['haa4b'] - before['haa4b']:+.4f}" in page
    assert "verilator 4 of 2000 events differ" in page and "ghdl 4 of 2000 events differ" in page
    assert "<th>abs diff quantiles 0.99</th>" in page
    assert 'failures: [&#34;event 0: output 0 differs&#34;' in page
    assert "over budget" in page and "116.7 %" in page  # 70,000 LUT of 60,000
    assert "runs 391500 – open" in page and "L1Calib_2026_v1, runs 390000 – open" in page
    assert '<span class="fail">physics</span>: haa4b efficiency' in page


def test_missing_optional_blocks_say_not_measured(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    summary = {
        "run_id": "bare",
        "conditions": {"tag": "T<1>", "iov": None, "trigger": {"retrain": True, "reason": "<script>alert(1)</script>"}},
        "models": {
            "student": {"kind": "cicada_student", "metrics": None, "software_vs_emulation": None,
                        "emulation_vs_hardware": [], "resources": None, "latency": None,
                        "plots": {"roc": "plots/missing_roc.png", "scores": "plots/fake.png", "calibration": "../x.png"}},
            "empty": {},
        },
    }
    (run / "plots").mkdir()
    (run / "plots" / "fake.png").write_text("this is not a png")
    (run / "summary.json").write_text(json.dumps(summary))
    page = render_report(run, previous_production=None).read_text()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "T&lt;1&gt;" in page
    assert page.count("not measured") >= 10
    assert "no emulation-vs-hardware comparison was run" in page
    assert "plots/missing_roc.png is missing from the run folder" in page
    assert "plots/fake.png is not a valid PNG file" in page
    assert "../x.png lies outside the run folder" in page
    assert "no previous production version" in page
    assert "<img" not in page
    payload = report_artifacts(run, run / "report.html")
    assert [(r["model"], r["signal"], r["gate"]) for r in payload.table] == [
        ("student", "not measured", "not run"), ("empty", "not measured", "not run")]


def test_bad_summary_is_reported_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="summary.json does not exist"):
        render_report(tmp_path)
    (tmp_path / "summary.json").write_text('{"run_id": "x",')
    with pytest.raises(ReportError, match=r"summary.json is not valid JSON \(line 1\)"):
        render_report(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_prefect_payloads_match_the_summary(tmp_path: Path) -> None:
    first, second = _pair(tmp_path)
    previous = Baseline.of_run(read_summary(first))
    report = render_report(second, previous)
    payload = report_artifacts(second, report, previous, AcceptanceCriteria(resources=ResourceBudget(LUT=60000)))
    assert re.fullmatch(r"[a-z0-9-]+", payload.key) and payload.key == "l1flow-report-axol1tl-like"
    assert payload.link == report.resolve().as_uri()
    summary = json.loads((second / "summary.json").read_text())
    assert len(payload.table) == 2 * 2
    for row in payload.table:
        metrics = summary["models"][row["model"]]["metrics"]
        assert row["auc"] == metrics["auc"][row["signal"]]
        assert row["efficiency_at_rate"] == metrics["efficiency_at_rate"][row["signal"]]
        previous_metrics = previous.models[row["model"]].record.metrics
        assert previous_metrics is not None
        assert row["efficiency_previous"] == previous_metrics.efficiency_at_rate[row["signal"]]
        assert row["mismatched_events"] == 4 and row["mismatched_words"] == 4
        assert row["gate"] == "failed" and row["accepted"] is False
        assert row["LUT"] == 70000 and row["latency_ns"] == 16.0
    assert set(payload.table[0]) == set(payload.table[-1])
    # Prefect's own models accept the keys and data (the flow publishes them with these).
    from prefect.artifacts import LinkArtifact, MarkdownArtifact, TableArtifact
    from prefect.client.schemas.actions import ArtifactCreate

    for suffix, artifact in (
        ("", MarkdownArtifact(markdown=payload.markdown, key=payload.key)),
        ("-table", TableArtifact(table=payload.table, key=payload.key + "-table")),
        ("-link", LinkArtifact(link=payload.link, link_text=payload.link_text, key=payload.key + "-link")),
    ):
        created = ArtifactCreate(key=payload.key + suffix, type=artifact.type, data=artifact.format())
        assert created.key == payload.key + suffix
    assert json.loads(TableArtifact(table=payload.table).format()) == payload.table
    with pytest.raises(ValueError):
        ArtifactCreate(key="L1flow Report", type="table")  # the check above can fail
    assert "| ae | dense_ae | **failed** | **failed** | 70,000 | 16 |" in payload.markdown
    assert "resources: LUT 70000 over budget 60000" in payload.markdown
    assert f"]({payload.link})" in payload.markdown


def _cli(*argv: str) -> int:
    from l1flow.cli.main import main

    return main(list(argv))


def test_report_command(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    first, second = _pair(tmp_path)
    criteria = tmp_path / "criteria.yaml"
    criteria.write_text("efficiency_tolerance: 0.5\nresources:\n  LUT: 80000\nrequire_bit_exact: false\n")
    out = tmp_path / "out" / "r.html"
    assert _cli("report", str(second), "--previous", str(first / "summary.json"), "--criteria", str(criteria),
                "--output", str(out)) == 0
    assert capsys.readouterr().out.strip() == str(out)
    page = out.read_text()
    assert "Acceptance: all criteria passed" in page and "compared with <strong>run-1</strong>" in page
    criteria.write_text("resources:\n  LUTs: 10\n")
    assert _cli("report", str(second), "--criteria", str(criteria), "--output", str(tmp_path / "x.html")) == 2
    assert "resources.LUTs" in capsys.readouterr().err
    assert _cli("report", str(tmp_path / "nowhere")) == 2
    assert "summary.json does not exist" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()


def test_pipelined_latency_shows_interval_and_depth_per_stage(tmp_path: Path) -> None:
    latency = {"cycles": 2, "ns": 10.0, "ii": 1, "source": "generator (design.json)",
               "logic_depth": {"l1flow_nn_stage0": 17, "l1flow_nn_stage1": 9}}
    run = make_run_folder(tmp_path / "run", latency=latency)
    page = render_report(run, previous_production=None).read_text()
    cells = re.findall(r"<td>([^<]+)</td><td class=\"num\">([^<]*)</td>", page)
    assert ("initiation interval (cycles)", "1") in cells
    assert ("logic depth l1flow_nn_stage0 (cells)", "17") in cells
    assert ("logic depth l1flow_nn_stage1 (cells)", "9") in cells
    assert ("latency (ns)", "10") in cells and ("latency (cycles)", "2") in cells
