"""ModelRegistry over a real embedded MLflow store (SQLite in tmp_path)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from test_registry_runfolders import make_run_folder

from l1flow.records import Conditions, Iov
from l1flow.registry.bundle import BUNDLE_FILE, sha256_file
from l1flow.registry.criteria import AcceptanceCriteria, ResourceBudget
from l1flow.registry.store import ModelRegistry, PromotionRefused, RegistryError
from l1flow.report import render_report

CRITERIA = AcceptanceCriteria(efficiency_tolerance=0.01, max_latency_ns=50.0, resources=ResourceBudget(LUT=60000))


@pytest.fixture(scope="module")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite database with its schema created once (migrations take seconds)."""
    from mlflow import MlflowClient

    folder = tmp_path_factory.mktemp("blank-store")
    MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}").search_experiments()
    return folder / "mlflow.db"


@pytest.fixture
def workspace(tmp_path: Path, migrated_database: Path) -> Path:
    folder = tmp_path / "ws"
    folder.mkdir()
    shutil.copy(migrated_database, folder / "mlflow.db")
    return folder


def _production_version(registry: ModelRegistry, name: str, before_run: str | None = None) -> int | None:
    baseline = registry.production_summary([name], before_run=before_run)
    assert baseline is not None
    return baseline.models[name].version


def _cli(*argv: str) -> int:
    from l1flow.cli.main import main

    return main(list(argv))


def test_two_runs_with_conditions_change_then_refuse_force_rollback(
    tmp_path: Path, workspace: Path, capsys: pytest.CaptureFixture
) -> None:
    registry = ModelRegistry(workspace=workspace)
    first_dir = make_run_folder(tmp_path / "run1", run_id="run-1", tag="Calib_v1", first_run=390000, seed=1,
                                models=(("ae", "dense_ae"), ("bdt", "bdt_classifier")))
    first = registry.record_run(first_dir, CRITERIA)
    assert [(v.name, v.version, v.promoted) for v in first] == [("ae", 1, True), ("bdt", 1, True)]

    # Conditions change; the new model separates worse, so it stays a candidate.
    second_dir = make_run_folder(tmp_path / "run2", run_id="run-2", tag="Calib_v2", first_run=391500, seed=2,
                                 signal_shift=0.9, models=(("ae", "dense_ae"), ("bdt", "bdt_classifier")))
    second = {v.name: v for v in registry.record_run(second_dir, CRITERIA)}
    assert second["ae"].version == 2 and not second["ae"].promoted
    assert [f.name for f in second["ae"].verdict.failures] == ["physics"]

    details = registry.show("ae", 2)
    assert details.aliases == ["candidate"]
    assert registry.show("ae", "production").version == 1
    lineage = details.lineage
    assert lineage["conditions.tag"] == "Calib_v2"
    assert lineage["conditions.iov.first_run"] == "391500"
    assert lineage["conditions.iov.last_run"] == "open"
    assert lineage["conditions.iov"] == "[391500, open]"
    assert lineage["dataset.hash"] == "d000002"
    assert lineage["config.hash"] == "c0ffee12"
    assert lineage["firmware.hash"] == "f00000014"
    assert lineage["tool.hls4ml"] == "1.3.0" and lineage["tool.verilator"] == "5.048"
    assert lineage["gate.verdict"] == "passed"
    assert json.loads(lineage["synthesis.report"])["LUT"] == 41000
    assert lineage["acceptance.passed"] == "False"
    assert "haa4b efficiency" in lineage["acceptance.reason"]
    summary = json.loads((second_dir / "summary.json").read_text())
    assert details.metrics["ae.efficiency_at_rate.haa4b"] == summary["models"]["ae"]["metrics"]["efficiency_at_rate"]["haa4b"]
    assert details.metrics["ae.gate.verilator.mismatched_events"] == 0.0
    assert details.metrics["ae.gate.verilator.mismatched_words"] == 0.0
    assert not any(key.startswith("bdt.") for key in details.metrics)
    run = registry.client.get_run(details.run_id)
    assert run.data.params["conditions.tag"] == "Calib_v2"
    assert run.data.params["tool.conifer"] == "1.11"
    artifacts = {a.path for a in registry.client.list_artifacts(details.run_id)}
    assert {"summary.json", "plots", "models", "bundles"} <= artifacts
    plots = {a.path for a in registry.client.list_artifacts(details.run_id, "plots/ae")}
    assert plots == {"plots/ae/ae_roc.png", "plots/ae/ae_scores.png", "plots/ae/ae_residuals.png"}

    # Promotion of the worse version is refused with the reason.
    with pytest.raises(PromotionRefused, match="physics: haa4b efficiency"):
        registry.promote("ae", 2)
    ws = str(workspace)
    # a refused promotion is a failed check (exit 1); bad criteria or usage are bad input (exit 2)
    assert _cli("models", "promote", "ae", "2", "--workspace", ws) == 1
    refusal = capsys.readouterr().err
    assert "refusing to promote ae version 2 to production" in refusal
    assert "physics: haa4b efficiency" in refusal
    (tmp_path / "typo.json").write_text('{"efficiency_tolerance": "lots"}')
    assert _cli("models", "promote", "ae", "2", "--criteria", str(tmp_path / "typo.json"), "--workspace", ws) == 2
    assert "typo.json: invalid acceptance criteria: efficiency_tolerance" in capsys.readouterr().err
    assert _cli("models", "promote", "ae", "2", "--force", "--workspace", ws) == 2
    assert registry.show("ae", "production").version == 1

    # Forced, recorded with who/when/why and what was overridden.
    assert _cli("models", "promote", "ae", "candidate", "--force", "--reason", "physics validated by hand",
                "--workspace", ws) == 0
    forced = registry.show("ae", 2)
    assert forced.aliases == ["candidate", "production"]
    assert forced.lineage["forced_promotion"] == "true"
    assert forced.lineage["forced.reason"] == "physics validated by hand"
    assert "haa4b" in forced.lineage["forced.overridden"]
    history = registry.production_history("ae")
    assert [(h["version"], h["action"]) for h in history] == [(1, "accepted"), (2, "forced")]
    # A report on run-2 compares with the production before it, not with itself.
    assert _production_version(registry, "ae") == 2
    assert _production_version(registry, "ae", before_run="run-2") == 1

    # Rollback restores the first version as production; there is nothing before it.
    assert _cli("models", "rollback", "ae", "--reason", "rate spike", "--workspace", ws) == 0
    assert registry.show("ae", "production").version == 1
    assert "rolled_back" in registry.show("ae", 2).lineage
    assert registry.production_history("ae")[-1] == {**registry.production_history("ae")[-1], "action": "rollback",
                                                     "version": 1, "from_version": 2, "reason": "rate spike"}
    with pytest.raises(RegistryError, match="no earlier production version"):
        registry.rollback("ae")
    # An alias moved behind l1flow's back is not silently "rolled back" over.
    registry.client.set_registered_model_alias("bdt", "production", "2")
    with pytest.raises(RegistryError, match="alias points to version 2 but l1flow's history ends at version 1"):
        registry.rollback("bdt")
    registry.client.set_registered_model_alias("bdt", "production", "1")
    with pytest.raises(RegistryError, match="no model named 'cicada'"):
        registry.rollback("cicada")
    # The untouched BDT: version 2 failed too, production still 1.
    assert registry.show("bdt", "production").version == 1

    capsys.readouterr()
    assert _cli("models", "list", "--json", "--workspace", ws) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed == [
        {"name": "ae", "latest_version": 2, "aliases": {"candidate": 2, "production": 1}, "versions": 2},
        {"name": "bdt", "latest_version": 2, "aliases": {"candidate": 2, "production": 1}, "versions": 2},
    ]
    assert _cli("models", "show", "ae", "--workspace", ws) == 0
    shown = capsys.readouterr().out
    assert "ae version 1  aliases: production" in shown and "rollback" in shown
    assert _cli("models", "show", "nope", "3", "--workspace", ws) == 2
    assert "nope version 3 is not in the registry" in capsys.readouterr().err

    previous = registry.production_summary(["ae", "bdt", "unknown"])
    assert previous is not None and set(previous.models) == {"ae", "bdt"}
    assert previous.models["ae"].version == 1
    assert previous.models["ae"].conditions == Conditions(tag="Calib_v1", iov=Iov(first_run=390000, last_run=None))
    page = render_report(second_dir, previous, CRITERIA, output=tmp_path / "r.html").read_text()
    assert "compared with <strong>production v1</strong> (trained for Calib_v1, runs 390000 – open)" in page
    assert registry.production_summary(["unknown"]) is None
    registry.attach_report(details.run_id, tmp_path / "r.html")
    (tmp_path / "dl").mkdir()
    assert (tmp_path / "r.html").read_bytes() == Path(
        registry.client.download_artifacts(details.run_id, "r.html", str((tmp_path / "dl").resolve()))
    ).read_bytes()


def test_gate_and_budget_failures_block_production(tmp_path: Path, workspace: Path) -> None:
    registry = ModelRegistry(workspace=workspace)
    bad_gate = make_run_folder(tmp_path / "r1", run_id="r1", seed=3, mismatches=7)
    (version,) = registry.record_run(bad_gate, CRITERIA)
    assert not version.promoted
    assert "ghdl" not in version.verdict.reason()
    assert "verilator 7 of 2000 events differ" in version.verdict.reason()
    assert registry.show("ae", 1).lineage["gate.verdict"] == "failed"
    with pytest.raises(RegistryError, match="no version with alias 'production'"):
        registry.show("ae", "production")

    unmeasured = make_run_folder(tmp_path / "r2", run_id="r2", seed=4, unmeasured=True)
    (second,) = registry.record_run(unmeasured, CRITERIA)
    assert {f.name for f in second.verdict.failures} == {"latency", "resources"}
    assert registry.show("ae", 2).lineage["synthesis.report"] == "not measured"

    big = make_run_folder(tmp_path / "r3", run_id="r3", seed=5, resources={"LUT": 60001, "FF": 1, "DSP": 0, "BRAM": 0})
    (third,) = registry.record_run(big, CRITERIA)
    assert third.verdict.reason() == "resources: LUT 60001 over budget 60000"
    # Promotion re-checks with the criteria recorded at registration, or the ones given.
    with pytest.raises(PromotionRefused, match="LUT 60001 over budget 60000"):
        registry.promote("ae", 3)
    looser = CRITERIA.model_copy(update={"resources": ResourceBudget(LUT=70000)})
    assert registry.promote("ae", 3, criteria=looser)["action"] == "promoted"
    assert registry.show("ae", "production").version == 3

    # A model block beyond MLflow's tag limit is read back from the run's summary.json.
    huge = make_run_folder(tmp_path / "r4", run_id="r4", seed=6)
    summary = json.loads((huge / "summary.json").read_text())
    summary["models"]["ae"]["emulation_vs_hardware"][0]["failures"] = [f"event {i}: ok" for i in range(12000)]
    (huge / "summary.json").write_text(json.dumps(summary))
    (fourth,) = registry.record_run(huge, looser)
    assert fourth.promoted and fourth.version == 4
    assert "l1flow.summary" not in registry.client.get_model_version("ae", "4").tags
    assert "l1flow.summary" in registry.client.get_model_version("ae", "3").tags
    assert len(registry.show("ae", 4).summary.emulation_vs_hardware[0].failures) == 12000
    assert _production_version(registry, "ae") == 4


def test_fetch_bundle_byte_identical(tmp_path: Path, workspace: Path) -> None:
    registry = ModelRegistry(workspace=workspace)
    run_dir = make_run_folder(tmp_path / "run", seed=6)
    (version,) = registry.record_run(run_dir, CRITERIA)
    fetched = registry.fetch("ae", "production", tmp_path / "out")
    assert fetched.archive.name == "ae-v1.tar.gz"
    stored = registry.show("ae", 1).lineage["bundle.sha256"]
    assert fetched.sha256 == stored == hashlib.sha256(fetched.archive.read_bytes()).hexdigest()
    sources = {"firmware": run_dir / "firmware/ae", "vectors": run_dir / "vectors/ae", "reports": run_dir / "reports/ae"}
    expected = {
        f"{key}/{p.relative_to(root).as_posix()}": p.read_bytes()
        for key, root in sources.items()
        for p in root.rglob("*")
        if p.is_file()
    }
    got = {p.relative_to(fetched.folder).as_posix(): p.read_bytes() for p in fetched.folder.rglob("*") if p.is_file()}
    assert got == expected
    assert len(expected) == 8
    with pytest.raises(RegistryError, match="already exists"):
        registry.fetch("ae", 1, tmp_path / "out")
    # A bundle replaced in the artifact store is caught by its hash.
    details = registry.show("ae", 1)
    stored_file = Path(details.source.removeprefix("file://")).parent.parent / "bundles" / "ae" / BUNDLE_FILE
    assert sha256_file(stored_file) == stored
    stored_file.write_bytes(stored_file.read_bytes() + b"\0")
    with pytest.raises(RegistryError, match="corrupt or was replaced"):
        registry.fetch("ae", 1, tmp_path / "again")
    assert not (tmp_path / "again" / "ae-v1").exists()


_REGISTER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from l1flow.registry.criteria import AcceptanceCriteria
    from l1flow.registry.store import ModelRegistry
    go = Path(sys.argv[3])
    registry = ModelRegistry(workspace=Path(sys.argv[1]))
    Path(sys.argv[2] + ".ready").write_text("")
    while not go.exists():
        time.sleep(0.01)
    (version,) = registry.record_run(Path(sys.argv[2]), AcceptanceCriteria())
    print(version.version)
    """
)


@pytest.mark.slow
def test_concurrent_registration_loses_nothing(tmp_path: Path, workspace: Path) -> None:
    runs = [make_run_folder(tmp_path / f"run{i}", run_id=f"parallel-{i}", seed=10 + i) for i in range(2)]
    go = tmp_path / "go"
    procs = [
        subprocess.Popen([sys.executable, "-c", _REGISTER, str(workspace), str(run), str(go)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for run in runs
    ]
    deadline = time.monotonic() + 300  # a hang guard, not a speed check
    while not all(Path(f"{run}.ready").exists() for run in runs):
        if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
            for p in procs:
                p.kill()
            pytest.fail(f"a registering process stopped before the start signal: {[p.communicate() for p in procs]}")
        time.sleep(0.05)
    go.write_text("")
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert sorted(int(out.strip().splitlines()[-1]) for out, _ in outputs) == [1, 2]
    registry = ModelRegistry(workspace=workspace)
    assert registry.versions("ae") == [1, 2]
    pipeline_runs = {registry.show("ae", v).lineage["pipeline_run"] for v in (1, 2)}
    assert pipeline_runs == {"parallel-0", "parallel-1"}
    runs_logged = registry.client.search_runs([registry.experiment_id])
    assert sorted(r.info.run_name for r in runs_logged) == ["parallel-0", "parallel-1"]
    assert all(r.info.status == "FINISHED" for r in runs_logged)


def test_models_commands_on_a_mistyped_workspace_create_nothing(tmp_path: Path, capsys) -> None:
    """Issue 18: `models list --workspace <typo>` used to create an empty registry there."""
    typo = tmp_path / "wrok"
    for argv in (["list"], ["show", "ae"], ["promote", "ae", "1"], ["fetch", "ae", "--dest", str(tmp_path / "d")]):
        assert _cli("models", *argv, "--workspace", str(typo)) == 2
        err = capsys.readouterr().err
        assert f"--workspace {typo} does not exist" in err and "L1FLOW_WORKSPACE" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _cli("models", "list", "--workspace", str(empty)) == 2
    assert "holds no registry (no mlflow.db)" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"] and not any(empty.iterdir())


def test_identical_run_registers_no_new_version(tmp_path: Path, workspace: Path) -> None:
    """Issue 18: a rerun with identical weights and firmware under the same conditions matches version N."""
    registry = ModelRegistry(workspace=workspace)
    (first,) = registry.record_run(make_run_folder(tmp_path / "r1", run_id="r1", seed=3), CRITERIA)
    assert (first.version, first.promoted, first.matched) == (1, True, False)
    runs_before = len(registry.client.search_runs([registry.experiment_id]))
    # the same model again, from another pipeline run folder
    (again,) = registry.record_run(make_run_folder(tmp_path / "r2", run_id="r2", seed=3), CRITERIA)
    assert (again.version, again.matched, again.promoted) == (1, True, False)
    from l1flow.pipeline.publish import registration_line

    assert registration_line("ae", again.version, again.matched, again.promoted, "") == (
        "ae: matched version 1 (identical weights and firmware under the same conditions); no new version registered"
    )
    assert registry.versions("ae") == [1] and registry.show("ae", "production").version == 1
    assert len(registry.client.search_runs([registry.experiment_id])) == runs_before  # no MLflow run either
    # the same weights under other conditions, and other weights under the same conditions, are new versions
    (other_iov,) = registry.record_run(make_run_folder(tmp_path / "r3", run_id="r3", seed=3, first_run=391000),
                                       CRITERIA)
    (other_weights,) = registry.record_run(make_run_folder(tmp_path / "r4", run_id="r4", seed=4), CRITERIA)
    assert (other_iov.version, other_iov.matched, other_weights.version, other_weights.matched) == (2, False, 3, False)
    assert registry.versions("ae") == [1, 2, 3]
