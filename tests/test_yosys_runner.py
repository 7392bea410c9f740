"""yosys runner: real synth_xilinx runs on a tiny pipelined BDT (a few seconds each)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from l1flow.synthesis.job import SynthesisError, SynthesisJob, SynthesisTimeout
from l1flow.synthesis.yosys import (
    YosysRunner,
    parse_yosys_ltp,
    parse_yosys_stat_json,
    resources_from_cells,
    yosys_script,
)

RTL = Path(__file__).parent / "fixtures" / "rtl_small"


def tiny_job(project: Path = RTL, **changes: object) -> SynthesisJob:
    fields: dict[str, object] = dict(
        project_dir=project,
        project_kind="rtl",
        tool="yosys",
        steps=["synth"],
        part="xcvu9p-flgb2104-2L-e",
        clock_period_ns=2.5,
        top="tiny_bdt",
        rtl_files=["tiny_bdt.v"],
        metadata_file="tiny_bdt.json",
        memory_gb=0.1,
        timeout_s=300,
    )
    fields.update(changes)
    return SynthesisJob(**fields)  # type: ignore[arg-type]


def test_cell_mapping() -> None:
    cells = {
        "LUT2": 10, "LUT6": 3, "LUT6_2": 1, "INV": 2, "SRLC32E": 4, "RAM64M": 1, "FDRE": 7, "FDCE": 1,
        "LDCE": 1, "CARRY8": 2, "DSP48E2": 5, "RAMB36E2": 2, "RAMB18E2": 1, "URAM288": 1, "MUXF7": 9, "BUFG": 1,
    }
    r = resources_from_cells(cells)
    assert (r.lut, r.ff, r.carry, r.dsp, r.bram_18k, r.uram) == (10 + 3 + 1 + 2 + 4 + 4, 9, 2, 5, 5, 1)


def test_script_uses_family_and_top() -> None:
    assert "synth_xilinx -family xc7 -top tiny_bdt" in yosys_script(tiny_job(part="xc7vx690tffg1927-2"))
    assert "-family xcup" in yosys_script(tiny_job())
    # logic depth: ltp with flip-flops and latches left out, so paths end at registers
    assert "ltp -noff * t:FD* %d t:LD* %d" in yosys_script(tiny_job())
    assert "keep_hierarchy" not in yosys_script(tiny_job())


def test_depth_modules_keep_their_hierarchy() -> None:
    script = yosys_script(tiny_job(depth_modules=["nn_stage0", "nn_stage1"]))
    assert "hierarchy -top tiny_bdt\nsetattr -mod -set keep_hierarchy 1 nn_stage0 nn_stage1\nsynth_xilinx" in script
    with pytest.raises(ValueError, match="not valid module names"):
        tiny_job(depth_modules=["nn stage0"])


def test_logic_depth_errors_name_the_file_and_module(tmp_path: Path) -> None:
    with pytest.raises(SynthesisError, match="yosys_ltp.txt: yosys logic depth not found"):
        parse_yosys_ltp(tmp_path / "yosys_ltp.txt", ("top",))
    # yosys 0.23's own words, module names escaped with a backslash in the netlist
    (tmp_path / "ltp.txt").write_text(
        "10. Executing LTP pass (find longest path).\n\n"
        "Longest topological path in nn_stage0 (length=7):\n    0: \\stage0_inp [3]\n"
        "Longest topological path in \\nn_stage1 (length=9):\n"
    )
    assert parse_yosys_ltp(tmp_path / "ltp.txt", ("nn_stage0", "nn_stage1")) == {"nn_stage0": 7, "nn_stage1": 9}
    with pytest.raises(SynthesisError, match=r"no logic depth for module\(s\) \['nn_stage2'\]"):
        parse_yosys_ltp(tmp_path / "ltp.txt", ("nn_stage0", "nn_stage2"))


def test_vhdl_is_refused_with_a_hint(tmp_path: Path) -> None:
    (tmp_path / "BDTTop.vhd").write_text("-- vhdl\n")
    job = tiny_job(tmp_path, rtl_files=["BDTTop.vhd"], metadata_file=None, top="BDTTop")
    with pytest.raises(SynthesisError, match="ghdl synth --out=verilog"):
        YosysRunner().check(job)


def test_stat_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(SynthesisError, match="yosys_stat.json: yosys statistics not found"):
        parse_yosys_stat_json(tmp_path / "yosys_stat.json")
    (tmp_path / "bad.json").write_text(json.dumps({"modules": {"\\a": {}, "\\b": {}}}))
    with pytest.raises(SynthesisError, match="2 modules"):
        parse_yosys_stat_json(tmp_path / "bad.json")


@pytest.mark.slow
def test_synth_counts_and_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                caplog: pytest.LogCaptureFixture) -> None:
    job = tiny_job()
    work = tmp_path / "work"
    report = YosysRunner().run(job, work)
    r = report.resources
    # 6 comparator flags + a 16-bit score register; compare/lookup/add logic in LUTs and carries
    assert r.ff == 22
    assert r.lut is not None and 10 < r.lut < 200
    assert r.carry is not None and r.carry > 0 and r.dsp == 0 and r.bram_18k == 0
    assert report.tool == "yosys" and report.tool_version == "0.23" and report.resource_stage == "yosys"
    assert report.primitives.get("FDRE", 0) + report.primitives.get("FDSE", 0) == 22
    # conifer's pipeline, flattened: one logic-depth figure for the top, a few LUT/carry levels
    assert list(report.logic_depth) == ["tiny_bdt"] and 1 < report.logic_depth["tiny_bdt"] < 40
    # latency from the generator's sidecar; ns from the job's clock
    assert (report.latency_min_cycles, report.latency_max_cycles, report.ii_min) == (2, 2, 1)
    assert report.latency_max_ns == 5.0 and report.latency_source == "generator (tiny_bdt.json)"
    assert report.available.lut == 1182240 and report.utilisation()["lut"] == pytest.approx(r.lut / 1182240)
    # the same job hash reuses the result: no yosys needed the second time
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    assert YosysRunner().run(job, work) == report
    assert [p.name for p in work.iterdir()] == [job.job_hash()]
    # a stored result edited after it was written fails its sha256 manifest: removed, synthesized again
    monkeypatch.undo()
    stored = work / job.job_hash() / "report.json"
    stored.write_text(stored.read_text().replace(f'"ff": {r.ff}', '"ff": 1'))
    with caplog.at_level("WARNING", logger="l1flow.recovery"):
        assert YosysRunner().run(job, work) == report
    assert f"cached synthesis result {work / job.job_hash()} is damaged (report.json does not match" in caplog.text


@pytest.mark.slow
def test_changed_constant_is_resynthesized_for_7series(tmp_path: Path) -> None:
    project = tmp_path / "rtl"
    shutil.copytree(RTL, project)
    source = project / "tiny_bdt.v"
    source.write_text(source.read_text().replace("16'sd1203", "16'sd1204"))
    job = tiny_job(project, part="xc7vx690tffg1927-2", latency_cycles=3, metadata_file=None)
    assert job.job_hash() != tiny_job().job_hash()
    report = YosysRunner().run(job, tmp_path / "work")
    assert report.resources.ff == 22 and "CARRY4" in report.primitives
    assert report.latency_max_cycles == 3 and report.latency_source == "generator (job)"
    assert report.available.lut == 433200


@pytest.mark.slow
def test_time_out_leaves_nothing(tmp_path: Path) -> None:
    work = tmp_path / "work"
    with pytest.raises(SynthesisTimeout, match="yosys ran past the job time-out"):
        YosysRunner().run(tiny_job(timeout_s=0.3), work)
    assert not any(work.iterdir())
