"""The pipeline's synthesis stage: which tool, what lands in summary.json, what fails early."""

from __future__ import annotations

from pathlib import Path

import pytest

from l1flow.config import load_config
from l1flow.pipeline.firmware_steps import FirmwareBuild, check_synthesis_tool, synthesis_summary, synthesize
from l1flow.synthesis.job import SynthesisError
from l1flow.synthesis.reports import Resources, SynthesisReport
from l1flow.toolchain import ToolMissingError

DEFAULT = Path(__file__).resolve().parents[1] / "configs" / "default.yaml"


def _report(cycles: int) -> SynthesisReport:
    return SynthesisReport(
        tool="yosys", tool_version="0.23", part="xcvu9p-flgb2104-2L-e", clock_target_ns=5.0,
        latency_min_cycles=cycles, latency_max_cycles=cycles, ii_min=1, ii_max=1,
        latency_source="generator (job)", resources=Resources(lut=1200, ff=300, dsp=0, bram_18k=0, carry=40),
        resource_stage="yosys", available=Resources(lut=1_182_240, ff=2_364_480), job_hash="ab" * 32,
    )


def test_summary_has_the_keys_acceptance_budgets_read() -> None:
    summary = synthesis_summary(_report(11))
    resources = summary["resources"]
    assert {k: resources[k] for k in ("LUT", "FF", "DSP", "BRAM")} == {"LUT": 1200, "FF": 300, "DSP": 0, "BRAM": 0}
    assert resources["source"] == "yosys 0.23 (yosys)" and resources["utilisation"]["lut"] == pytest.approx(1200 / 1_182_240)
    assert summary["latency"] == {"cycles": 11, "ns": 55.0, "ii": 1, "source": "generator (job)"}
    # combinational: no clocked latency, and yosys does not time logic, so no ns
    assert synthesis_summary(_report(0))["latency"]["ns"] is None
    assert synthesis_summary(None) == {"resources": None, "latency": None}


def test_a_missing_synthesis_tool_is_named_before_any_work() -> None:
    with pytest.raises(ToolMissingError, match="vivado"):
        check_synthesis_tool(load_config(DEFAULT, ["synthesis.runner=vivado"]))
    check_synthesis_tool(load_config(DEFAULT, ["synthesis.runner=none"]))


def test_firmware_without_rtl_cannot_be_synthesized(tmp_path: Path) -> None:
    config = load_config(DEFAULT, [f"workspace={tmp_path}"])
    assert config.synthesis.runner == "yosys"
    firmware = FirmwareBuild(
        model_name="ae", project_dir=tmp_path, firmware_hash="0", emulator=None,  # type: ignore[arg-type]
        input_type=None, output_type=None, csim_predict=None, hardware=[],  # type: ignore[arg-type]
        export_vectors=None,  # type: ignore[arg-type]
    )
    with pytest.raises(SynthesisError, match="ae: none of its hardware sources .none built. has RTL for yosys"):
        synthesize(config, firmware, tmp_path / "synthesis")
    assert synthesize(load_config(DEFAULT, ["synthesis.runner=none"]), firmware, tmp_path / "synthesis") is None
    assert not (tmp_path / "synthesis").exists()
