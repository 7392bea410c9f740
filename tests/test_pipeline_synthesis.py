"""The pipeline's synthesis stage: which tool, what lands in summary.json, what fails early."""

from __future__ import annotations

from pathlib import Path

import pytest

from l1flow.backends import FirmwareBuild
from l1flow.backends.hls4ml import Hls4mlBackend
from l1flow.config import load_config
from l1flow.pipeline.firmware_steps import (
    check_synthesis_tool,
    synthesis_records,
    synthesize,
)
from l1flow.records import Latency
from l1flow.synthesis.job import SynthesisError
from l1flow.synthesis.reports import Resources, SynthesisReport
from l1flow.toolchain import ToolMissingError

DEFAULT = Path(__file__).resolve().parents[1] / "configs" / "default.yaml"


def _report(cycles: int, logic_depth: dict[str, int] | None = None) -> SynthesisReport:
    return SynthesisReport(
        tool="yosys", tool_version="0.23", part="xcvu9p-flgb2104-2L-e", clock_target_ns=5.0,
        latency_min_cycles=cycles, latency_max_cycles=cycles, ii_min=1, ii_max=1,
        latency_source="generator (job)", resources=Resources(lut=1200, ff=300, dsp=0, bram_18k=0, carry=40),
        resource_stage="yosys", available=Resources(lut=1_182_240, ff=2_364_480), job_hash="ab" * 32,
        logic_depth=logic_depth or {},
    )


def test_summary_has_the_keys_acceptance_budgets_read() -> None:
    resources, latency = synthesis_records(_report(11, {"nn_stage0": 9, "nn_stage1": 12}))
    assert resources is not None and resources.utilisation is not None
    assert {k: resources.get(k) for k in ("LUT", "FF", "DSP", "BRAM")} == {"LUT": 1200, "FF": 300, "DSP": 0, "BRAM": 0}
    assert resources.source == "yosys 0.23 (yosys)" and resources.utilisation["lut"] == pytest.approx(1200 / 1_182_240)
    assert latency == Latency(
        cycles=11, ns=55.0, ii=1, source="generator (job)", logic_depth={"nn_stage0": 9, "nn_stage1": 12}
    )
    # combinational: no clocked latency, and yosys does not time logic, so no ns; no ltp figure, none claimed
    assert synthesis_records(_report(0))[1] == Latency(cycles=0, ns=None, ii=1, source="generator (job)")
    assert synthesis_records(None) == (None, None)


def test_a_missing_synthesis_tool_is_named_before_any_work() -> None:
    with pytest.raises(ToolMissingError, match="vivado"):
        check_synthesis_tool(load_config(DEFAULT, ["synthesis.runner=vivado"]))
    check_synthesis_tool(load_config(DEFAULT, ["synthesis.runner=none"]))


def test_firmware_without_rtl_cannot_be_synthesized(tmp_path: Path) -> None:
    config = load_config(DEFAULT, [f"workspace={tmp_path}"])
    assert config.synthesis.runner == "yosys"
    firmware = FirmwareBuild(
        backend=Hls4mlBackend(), model_name="ae", project_dir=tmp_path, firmware_hash="0",
        emulator=None, input_type=None, output_type=None, hardware=[], design=None, csim=None,  # type: ignore[arg-type]
    )
    with pytest.raises(SynthesisError, match="ae: none of its hardware sources .none built. has RTL for yosys"):
        synthesize(config, firmware, tmp_path / "synthesis")
    assert synthesize(load_config(DEFAULT, ["synthesis.runner=none"]), firmware, tmp_path / "synthesis") is None
    assert not (tmp_path / "synthesis").exists()


SMALL_MODELS = [
    "data.train_background=4000",
    "data.train_signal=400",
    "data.validation_background=1000",
    "data.validation_signal=100",
    "data.test_background=2000",
    "data.test_signal=200",
    "verify.emulation_events=2000",
    "verify.hardware_events=2000",
    "verify.csim_events=200",
    "verify.ghdl_events=100",
    "models.0.encoder=[{units: 8}]",
    "models.0.latent={units: 2}",
    "models.0.epochs=1",
    "models.1.n_trees=4",
    "models.1.max_depth=3",
]


@pytest.mark.slow
def test_a_run_reports_yosys_resources_and_generator_latency(tmp_path: Path) -> None:
    """`l1flow run` with yosys on small models: the synthesis stage's results land in summary.json.

    The AE's RTL is pipelined to the 5 ns clock: clocked latency, flip-flops, a
    logic depth per stage, and the gate on that pipelined RTL.
    """
    import json
    import math
    import os
    import subprocess
    import sys

    from l1flow.hardware.ghdl import read_conifer_vhdl_project

    repo = DEFAULT.parents[1]
    args = [sys.executable, "-m", "l1flow", "run", str(DEFAULT), "--workspace", str(tmp_path / "work")]
    for override in SMALL_MODELS:
        args += ["--set", override]
    done = subprocess.run(args, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(repo)},
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-5000:]
    run_dir = Path(done.stdout.strip().splitlines()[-1].removeprefix("run folder: "))
    summary = json.loads((run_dir / "summary.json").read_text())
    ae, bdt = summary["models"]["axol1tl_ae"], summary["models"]["bdt"]

    assert ae["resources"]["source"] == bdt["resources"]["source"] == "yosys 0.23 (yosys)"
    assert ae["resources"]["LUT"] > 100 and ae["resources"]["carry"] > 0 and ae["resources"]["FF"] > 0
    cycles = ae["latency"]["cycles"]
    assert cycles >= 1 and ae["latency"]["ns"] == 5.0 * cycles and ae["latency"]["ii"] == 1
    assert ae["latency"]["source"] == "generator (design.json)"
    depth = ae["latency"]["logic_depth"]
    assert list(depth) == [f"l1flow_nn_stage{i}" for i in range(cycles)] and min(depth.values()) > 0
    # the harness saw the latency the generator stated
    assert [g["observed_latency_cycles"] for g in ae["emulation_vs_hardware"]] == [cycles]
    assert bdt["resources"]["LUT"] > 10 and bdt["resources"]["FF"] > 10
    forest = read_conifer_vhdl_project(run_dir / "firmware" / "bdt" / "conifer_vhdl")
    cycles = 1 + forest.max_depth + math.ceil(math.log2(forest.n_trees))
    assert {k: bdt["latency"][k] for k in ("cycles", "ns", "ii", "source")} == {
        "cycles": cycles, "ns": 5.0 * cycles, "ii": 1, "source": "generator (job)"
    }
    assert list(bdt["latency"]["logic_depth"]) == ["BDTTop"]  # conifer's pipeline, flattened: one figure
    # each result is kept in the workspace under its job hash, for the next run with the same RTL
    for model in (ae, bdt):
        assert (tmp_path / "work" / "cache" / "synthesis" / model["resources"]["job_hash"] / "report.json").is_file()
    # and both gates passed on the same RTL that was synthesized
    assert all(g["mismatched_words"] == 0 for m in (ae, bdt) for g in m["emulation_vs_hardware"])
    assert summary["format"] == "l1flow-summary/2" and [r["version"] for r in summary["registry"]] == [1, 1]

    # `l1flow compare` rebuilds each model's firmware through its backend and runs the pipeline's emulate path
    from l1flow.compare import compare_run_model
    from l1flow.conditions.payload import ConditionsPayload
    from l1flow.data.generator import generate_events
    from l1flow.data.hdf5 import write_hdf5

    events = generate_events(ConditionsPayload(), 500, 50, seed=5)  # 50 of each signal class
    data = write_hdf5(events, tmp_path / "events.h5")
    for name, block in (("axol1tl_ae", ae), ("bdt", bdt)):
        compared = compare_run_model(run_dir, name, data, tmp_path / "compare", csim_events=100).result
        assert compared["software_vs_emulation"]["events"] == len(events) > 500
        assert compared["emulation_vs_csim"] == {"source": block["emulation_vs_csim"]["source"], "events": 100,
                                                 "mismatched_events": 0}
        assert compared["threshold"] == block["decision_threshold"] and 0.9 < compared["decision_agreement"] <= 1.0
        layers = {row["layer"] for row in compared["overflow"]}
        assert "input" in layers and (len(layers) > 1) == (name == "axol1tl_ae")  # per-layer counts for the net
