"""The default pipeline end to end, as a user runs it: the README's commands in order.

In a fresh folder and without ``--workspace`` anywhere (the one workspace
default, ``work``, is what ``l1flow run`` writes and what ``conditions``,
``models`` and ``report`` read): run twice with a conditions change in between (a new IOV with a 5% jet-scale
shift and 10 more pile-up): two registered versions with full lineage, the
second promoted or left `candidate` by the acceptance criteria, and
`l1flow models rollback` restores the first as production. Event counts are
reduced from the default (the models, firmware and checks are the same) and
synthesis is off (yosys takes minutes on these models; the flow's synthesis
stage is tested on small ones in test_pipeline_synthesis.py) to keep the
suite within CI's budget; `make run` runs the full numbers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
L1FLOW = [sys.executable, "-m", "l1flow"]

SMALLER = [
    "data.train_background=60000",
    "data.train_signal=3000",
    "data.validation_background=10000",
    "data.validation_signal=500",
    "data.test_background=50000",
    "data.test_signal=5000",
    "verify.emulation_events=120000",
    "verify.hardware_events=100000",
    "verify.csim_events=2000",
    "verify.ghdl_events=1000",
    # yosys needs minutes for the default models' RTL; the flow's synthesis stage
    # is tested on small models in test_pipeline_synthesis.py
    "synthesis.runner=none",
]


def l1flow(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # no L1FLOW_WORKSPACE: the default workspace is under test
    env = {**{k: v for k, v in os.environ.items() if k != "L1FLOW_WORKSPACE"}, "PYTHONPATH": str(REPO)}
    result = subprocess.run([*L1FLOW, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, f"l1flow {' '.join(args)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}"
    return result


def run_default(folder: Path, *overrides: str) -> dict:
    args = ["run", str(REPO / "configs" / "default.yaml")]
    for override in [*SMALLER, *overrides]:
        args += ["--set", override]
    result = l1flow(*args, cwd=folder)
    lines = [line for line in result.stdout.splitlines() if line.startswith("run folder: ")]
    assert lines, f"no run folder printed:\n{result.stdout[-3000:]}"
    run_dir = Path(lines[-1].removeprefix("run folder: "))
    assert run_dir.is_dir() and not run_dir.name.startswith(".")
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["_run_dir"] = run_dir
    return summary


@pytest.mark.slow
def test_default_pipeline_twice_with_conditions_change_then_rollback(tmp_path: Path) -> None:
    workspace = tmp_path / "work"  # the default, never named on a command line below
    first = run_default(tmp_path)
    assert first["_run_dir"].parent == (workspace / "runs").resolve()

    assert first["wall_seconds"] > 0
    ae, bdt = first["models"]["axol1tl_ae"], first["models"]["bdt"]
    # The autoencoder: QKeras and the bit-exact emulation agree on every event.
    assert ae["software_vs_emulation"]["events"] == 120_000
    assert ae["software_vs_emulation"]["fraction_differing"] == 0.0
    assert ae["emulation_vs_csim"]["mismatched_events"] == 0
    assert ae["decision_agreement"] >= 0.999
    (rtl,) = [h for h in ae["emulation_vs_hardware"] if h["source"] == "verilator-da4ml"]
    assert rtl["events"] == 100_000 and rtl["mismatched_words"] == 0
    # The BDT: conifer's VHDL in GHDL and, as Verilog, in Verilator, word for word.
    sources = {h["source"]: h for h in bdt["emulation_vs_hardware"]}
    assert sources["ghdl"]["events"] == 1_000 and sources["ghdl"]["mismatched_words"] == 0
    assert sources["verilator"]["events"] == 100_000 and sources["verilator"]["mismatched_words"] == 0
    assert bdt["emulation_vs_csim"]["mismatched_events"] == 0
    assert bdt["decision_agreement"] >= 0.999
    for model in (ae, bdt):
        assert set(model["metrics"]["efficiency_at_rate"]) == set(first["dataset"]["classes"][1:])
    assert ae["resources"] is None and ae["latency"] is None  # synthesis.runner none
    run_dir = first["_run_dir"]
    assert (run_dir / "report.html").stat().st_size > 10_000
    registered = {r["name"]: r for r in first["registry"]}
    assert registered["axol1tl_ae"]["version"] == 1 and registered["axol1tl_ae"]["promoted"]
    # `l1flow models list` right after `l1flow run` finds what the run registered
    listed = {m["name"]: m for m in json.loads(l1flow("models", "list", "--json", cwd=tmp_path).stdout)}
    assert set(listed) == {"axol1tl_ae", "bdt"}
    assert listed["axol1tl_ae"]["latest_version"] == 1 and listed["axol1tl_ae"]["aliases"]["production"] == 1
    (run_dir / "report.html").unlink()
    assert l1flow("report", str(run_dir), cwd=tmp_path).stdout.strip() == str(run_dir / "report.html")
    assert (run_dir / "report.html").stat().st_size > 10_000

    # A new IOV: jet scale +5%, pile-up +10. The next run trains on it.
    payload = yaml.safe_load(l1flow("conditions", "show", "L1Nominal", cwd=tmp_path).stdout)
    assert len(l1flow("conditions", "list", cwd=tmp_path).stdout.splitlines()) == 1
    l1flow("conditions", "add", "L1Nominal", "--first-run", "1000",
           "--set", f"calibration.jet={payload['calibration']['jet'] * 1.05:.6f}",
           "--set", f"mean_pileup={payload['mean_pileup'] + 10}", cwd=tmp_path)

    second = run_default(tmp_path)
    assert second["conditions"]["iov"]["first_run"] == 1000
    ae2 = second["models"]["axol1tl_ae"]
    assert ae2["weights_hash"] != ae["weights_hash"]
    # The previous production model is scored on the same events, side by side.
    assert ae2["previous_production"] is not None

    shown = json.loads(l1flow("models", "show", "axol1tl_ae", "2", "--json", cwd=tmp_path).stdout)
    lineage = shown["lineage"]
    for key in ("conditions.tag", "conditions.iov", "dataset.hash", "config.hash", "firmware.hash", "gate.verdict"):
        assert any(k.endswith(key) for k in lineage), f"lineage lacks {key}: {sorted(lineage)}"

    registered = {r["name"]: r for r in second["registry"]}
    assert registered["axol1tl_ae"]["version"] == 2
    if not registered["axol1tl_ae"]["promoted"]:
        # The criteria kept it `candidate`; a forced promotion is allowed, with its reason recorded.
        l1flow("models", "promote", "axol1tl_ae", "2", "--force",
               "--reason", "e2e test: exercise rollback", cwd=tmp_path)
    l1flow("models", "rollback", "axol1tl_ae", "--reason", "test", cwd=tmp_path)
    after = json.loads(l1flow("models", "show", "axol1tl_ae", "production", "--json", cwd=tmp_path).stdout)
    assert after["version"] == 1
