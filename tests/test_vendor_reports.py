"""Vendor report parsers and the vendor runner, on files in the real Vitis/Vivado formats.

The fixtures under tests/fixtures/vendor/ are laid out as Vitis HLS / Vivado
leave a project folder (UltraScale+ with Vitis 2023.2, 7-series with Vivado
HLS 2019.2); their numbers are made up. No Xilinx tool exists here, so the
runner's tool check is tested for its error, and report collection on the
fixture folders.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from l1flow.synthesis.job import SynthesisError, SynthesisJob
from l1flow.synthesis.reports import (
    ReportParseError,
    parse_cosim_rpt,
    parse_csynth_xml,
    parse_vivado_synth_rpt,
)
from l1flow.synthesis.vendor import VendorRunner, check_project_settings
from l1flow.toolchain import ToolMissingError

FIXTURES = Path(__file__).parent / "fixtures" / "vendor"
VU9P = FIXTURES / "hls4ml_vitis_vu9p"
V7 = FIXTURES / "conifer_hls_7series"


def hls4ml_job(project: Path = VU9P, steps: tuple[str, ...] = ("csynth", "cosim", "vsynth")) -> SynthesisJob:
    return SynthesisJob(
        project_dir=project,
        project_kind="hls4ml",
        tool="vitis_hls",
        steps=steps,
        part="xcvu9p-flgb2104-2L-e",
        clock_period_ns=5.0,
        top="myproject",
        memory_gb=0.1,
    )


def conifer_job(project: Path = V7) -> SynthesisJob:
    return SynthesisJob(
        project_dir=project,
        project_kind="conifer",
        tool="vitis_hls",
        steps=("csynth", "cosim", "vsynth"),
        part="xc7vx690tffg1927-2",
        clock_period_ns=5.0,
        top="my_prj",
        memory_gb=0.1,
    )


def test_csynth_xml_vitis_ultrascale_plus() -> None:
    report = parse_csynth_xml(VU9P / "myproject_prj/solution1/syn/report/myproject_csynth.xml")
    assert report.tool == "vitis_hls" and report.tool_version == "2023.2"
    assert report.part == "xcvu9p-flgb2104-2L-e" and report.top == "myproject"
    assert (report.clock_target_ns, report.clock_estimated_ns) == (5.0, 3.412)
    assert (report.latency_min_cycles, report.latency_max_cycles) == (14, 16)
    assert (report.latency_min_ns, report.latency_max_ns) == (70.0, 80.0)
    assert (report.ii_min, report.ii_max) == (1, 1)
    r, a = report.resources, report.available
    assert (r.lut, r.ff, r.dsp, r.bram_18k, r.uram) == (48122, 20731, 187, 4, 0)
    assert (a.lut, a.ff, a.dsp, a.bram_18k, a.uram) == (1182240, 2364480, 6840, 4320, 960)
    assert report.utilisation()["dsp"] == pytest.approx(187 / 6840)


def test_csynth_xml_vivado_hls_7series_dsp48e_tag() -> None:
    report = parse_csynth_xml(V7 / "my_prj/solution1/syn/report/my_prj_csynth.xml")
    assert report.tool == "vivado_hls" and report.tool_version == "2019.2"
    assert report.latency_max_cycles == 9 and report.latency_max_ns == 45.0
    assert (report.resources.lut, report.resources.ff, report.resources.dsp) == (15307, 6128, 0)
    assert (report.available.dsp, report.available.bram_18k) == (3600, 2940)


def test_cosim_rpt_vitis_with_total_execution_time() -> None:
    report = parse_cosim_rpt(VU9P / "myproject_prj/solution1/sim/report/myproject_cosim.rpt")
    assert report.cosim_status == "Pass"
    assert report.latency_source == "cosim (Verilog)"
    assert (report.latency_min_cycles, report.latency_max_cycles, report.ii_min, report.ii_max) == (15, 15, 1, 1)
    assert report.cosim_total_cycles == 1014


def test_cosim_rpt_vivado_hls_without_total_column() -> None:
    report = parse_cosim_rpt(V7 / "my_prj/solution1/sim/report/my_prj_cosim.rpt")
    assert (report.cosim_status, report.latency_max_cycles, report.cosim_total_cycles) == ("Pass", 9, None)


def test_vivado_rpt_ultrascale_plus_with_prohibited_column() -> None:
    report = parse_vivado_synth_rpt(VU9P / "vivado_synth.rpt")
    r = report.resources
    # Block RAM Tile 1.5 (36 Kb tiles) = 3 units of 18 Kb
    assert (r.lut, r.ff, r.dsp, r.bram_18k, r.uram, r.carry) == (39874, 17602, 175, 3, 0, 1911)
    assert (report.available.lut, report.available.bram_18k) == (1182240, 4320)
    assert report.tool_version == "2023.2" and report.part == "xcvu9p-flgb2104-2L-e"
    assert report.primitives["DSP48E2"] == 175 and report.primitives["RAMB36E2"] == 1


def test_vivado_rpt_7series_slice_rows() -> None:
    report = parse_vivado_synth_rpt(V7 / "vivado_synth.rpt")
    r = report.resources
    assert (r.lut, r.ff, r.dsp, r.bram_18k) == (11842, 5530, 0, 0)
    assert r.carry == 1406  # from the Primitives table: 7-series has no CARRY row
    assert report.part == "xc7vx690tffg1927-2"
    assert report.utilisation()["lut"] == pytest.approx(11842 / 433200)


def test_parse_errors_name_file_and_element(tmp_path: Path) -> None:
    xml = (VU9P / "myproject_prj/solution1/syn/report/myproject_csynth.xml").read_text()
    broken = tmp_path / "myproject_csynth.xml"
    broken.write_text(xml.replace("<Worst-caseLatency>16</Worst-caseLatency>", ""))
    with pytest.raises(ReportParseError, match=r"myproject_csynth.xml.*Worst-caseLatency"):
        parse_csynth_xml(broken)
    broken.write_text(xml.replace("<LUT>48122</LUT>", ""))
    with pytest.raises(ReportParseError, match=r"Resources/LUT"):
        parse_csynth_xml(broken)
    rpt = tmp_path / "vivado_synth.rpt"
    rpt.write_text((V7 / "vivado_synth.rpt").read_text().replace("Slice LUTs*", "Something*"))
    with pytest.raises(ReportParseError, match=r"vivado_synth.rpt.*CLB LUTs.*Slice LUTs"):
        parse_vivado_synth_rpt(rpt)
    cosim = tmp_path / "x_cosim.rpt"
    cosim.write_text((V7 / "my_prj/solution1/sim/report/my_prj_cosim.rpt").read_text().replace("Pass", "NA"))
    with pytest.raises(ReportParseError, match="both NA"):
        parse_cosim_rpt(cosim)
    with pytest.raises(ReportParseError, match="not found"):
        parse_cosim_rpt(tmp_path / "missing_cosim.rpt")


def test_collect_hls4ml_project_merges_stages() -> None:
    report = VendorRunner().collect(hls4ml_job(), VU9P)
    # csynth names the flow, cosim measures the latency, Vivado gives the final resources
    assert report.tool == "vitis_hls" and report.part == "xcvu9p-flgb2104-2L-e"
    assert report.latency_source == "cosim (Verilog)" and report.latency_max_cycles == 15
    assert report.latency_max_ns == 75.0 and report.cosim_total_cycles == 1014
    assert report.resource_stage == "vsynth" and report.resources.lut == 39874
    assert report.stages["csynth"].lut == 48122 and report.stages["vsynth"].lut == 39874
    assert report.clock_estimated_ns == 3.412
    assert len(report.sources) == 3
    summary = report.to_summary()
    assert summary["latency_max_ns"] == 75.0 and summary["utilisation"]["lut"] == pytest.approx(39874 / 1182240)


def test_collect_csynth_only_keeps_estimate() -> None:
    report = VendorRunner().collect(hls4ml_job(steps=("csynth",)), VU9P)
    assert report.resource_stage == "csynth" and report.latency_max_cycles == 16


def test_collect_conifer_7series_project() -> None:
    report = VendorRunner().collect(conifer_job(), V7)
    assert report.tool == "vivado_hls" and report.latency_max_cycles == 9
    assert report.resources.lut == 11842 and report.available.lut == 433200


def test_collect_fails_on_failed_cosim(tmp_path: Path) -> None:
    project = tmp_path / "prj"
    shutil.copytree(VU9P, project)
    rpt = project / "myproject_prj/solution1/sim/report/myproject_cosim.rpt"
    rpt.write_text(rpt.read_text().replace("|      Pass|", "|      Fail|"))
    with pytest.raises(SynthesisError, match=r"myproject_cosim.rpt.*'Fail'"):
        VendorRunner().collect(hls4ml_job(project), project)


def test_collect_missing_report_names_it(tmp_path: Path) -> None:
    project = tmp_path / "prj"
    shutil.copytree(VU9P, project)
    (project / "vivado_synth.rpt").unlink()
    with pytest.raises(ReportParseError, match=r"vivado_synth.rpt.*did vsynth run"):
        VendorRunner().collect(hls4ml_job(project), project)


def test_missing_vitis_hls_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no Xilinx tool
    runner = VendorRunner()
    with pytest.raises(ToolMissingError, match="'vitis_hls' was not found") as info:
        runner.check(hls4ml_job())
    assert info.value.tool == "vitis_hls"
    with pytest.raises(ToolMissingError, match="'vitis_hls'"):
        runner.run(hls4ml_job(), tmp_path / "work")
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").iterdir())


def test_missing_vivado_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    rtl = tmp_path / "rtl"
    rtl.mkdir()
    (rtl / "top.v").write_text("module top(input a, output b); assign b = a; endmodule\n")
    job = SynthesisJob(
        project_dir=rtl,
        project_kind="rtl",
        tool="vivado",
        steps=("vsynth",),
        part="xc7vx690tffg1927-2",
        clock_period_ns=25.0,
        top="top",
        rtl_files=("top.v",),
        memory_gb=0.1,
    )
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolMissingError, match="'vivado' was not found") as info:
        VendorRunner().run(job, tmp_path / "work")
    assert info.value.tool == "vivado"


def test_project_part_must_match_job(tmp_path: Path) -> None:
    project = tmp_path / "prj"
    shutil.copytree(VU9P, project)
    job = hls4ml_job(project).model_copy(update={"part": "xcvu13p-flga2577-2-e"})
    with pytest.raises(SynthesisError, match=r"project.tcl.*xcvu9p-flgb2104-2L-e.*xcvu13p"):
        check_project_settings(job, project / "project.tcl")


def test_cosim_without_measured_latency_keeps_the_csynth_label(tmp_path: Path) -> None:
    # Vitis 2023.2 writes NA latency cells when one transaction passed through a pipelined top
    project = tmp_path / "prj"
    shutil.copytree(VU9P, project)
    rpt = project / "myproject_prj/solution1/sim/report/myproject_cosim.rpt"
    row = "|   Verilog|      Pass|             15|             15|             15|              1|              1|              1|                  1014|"  # noqa: E501 (the real report row)
    na = "|   Verilog|      Pass|" + "|".join(f"{'NA':>{len(c)}}" for c in row.split("|")[3:-1]) + "|"
    assert row in rpt.read_text()
    rpt.write_text(rpt.read_text().replace(row, na))
    alone = parse_cosim_rpt(rpt)
    assert alone.cosim_status == "Pass" and alone.latency_max_cycles is None and alone.latency_source is None
    report = VendorRunner().collect(hls4ml_job(), project)
    assert report.latency_source == "csynth" and report.latency_max_cycles == 16
