"""Synthesis jobs: validation, content hash, serialisation, and the runner's
subprocess handling (arguments, time-out, atomic results, cache).

Vitis HLS and Vivado do not exist on this machine. To exercise the runner's
plumbing end to end, two tests put small stand-in executables named
``vitis_hls`` / ``vivado`` on PATH: they record their arguments and write the
report files a real run would (copied from the real-format fixtures). The
parsers themselves are tested in test_vendor_reports.py; the real open tool
(yosys) in test_yosys_runner.py.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import time
from pathlib import Path

import pytest

from l1flow.synthesis.job import (
    REPORT_FILE,
    InsufficientMemoryError,
    SynthesisError,
    SynthesisJob,
    SynthesisTimeout,
    load_report,
    xilinx_family,
)
from l1flow.synthesis.vendor import VendorRunner

FIXTURES = Path(__file__).parent / "fixtures"
VU9P = FIXTURES / "vendor" / "hls4ml_vitis_vu9p"
RTL = FIXTURES / "rtl_small"


def rtl_job(**changes: object) -> SynthesisJob:
    fields: dict[str, object] = dict(
        project_dir=RTL,
        project_kind="rtl",
        tool="yosys",
        steps=["synth"],
        part="xcvu9p-flgb2104-2L-e",
        clock_period_ns=2.5,
        top="tiny_bdt",
        rtl_files=["tiny_bdt.v"],
        metadata_file="tiny_bdt.json",
        memory_gb=0.1,
    )
    fields.update(changes)
    return SynthesisJob(**fields)  # type: ignore[arg-type]


def hls_job(project: Path, **changes: object) -> SynthesisJob:
    fields: dict[str, object] = dict(
        project_dir=project,
        project_kind="hls4ml",
        tool="vitis_hls",
        steps=["vsynth", "cosim", "csynth"],
        part="xcvu9p-flgb2104-2L-e",
        clock_period_ns=5,
        top="myproject",
        memory_gb=0.1,
        timeout_s=60,
    )
    fields.update(changes)
    return SynthesisJob(**fields)  # type: ignore[arg-type]


# ---------------------------------------------------------------- validation


def test_valid_job_orders_steps() -> None:
    job = hls_job(VU9P)
    assert job.steps == ("csynth", "cosim", "vsynth")
    assert job.family == "xcup" and job.name == "myproject"


@pytest.mark.parametrize(
    "part",
    ["xcvu9p-flgb2104-2L-e", "xc7vx690tffg1927-2", "xczu9eg-ffvb1156-2-e", "xcu50-fsvh2104-2L-e", "xc7z020clg400-1"],
)
def test_part_names_accepted(part: str) -> None:
    assert rtl_job(part=part).part == part


@pytest.mark.parametrize(
    "part", ["xcvu9p", "virtex7", "xcvu9p-flgb2104", "xcvu9p-flgb2104-2L-e; rm -rf /", "xcvu9p flgb2104-2-e", ""]
)
def test_bad_part_rejected(part: str) -> None:
    with pytest.raises(ValueError, match="Xilinx part"):
        rtl_job(part=part)


@pytest.mark.parametrize("top", ["1abc", "my-top", "top;ls", "", "a b"])
def test_bad_names_rejected(top: str) -> None:
    with pytest.raises(ValueError, match="not a valid name"):
        rtl_job(top=top)
    with pytest.raises(ValueError, match="not a valid name"):
        hls_job(VU9P, project_name=top)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("rtl_files", ["../secret.v"], "escapes the project folder"),
        ("rtl_files", ["src/../../x.v"], "escapes the project folder"),
        ("rtl_files", ["/etc/passwd"], "must be relative"),
        ("rtl_files", ["my file.v"], "no spaces"),
        ("rtl_files", ["x.v;rm"], "no spaces"),
        ("metadata_file", "../meta.json", "escapes the project folder"),
        ("project_dir", "/work/../etc", "must not contain '..'"),
    ],
)
def test_path_escapes_rejected(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rtl_job(**{field: value})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"steps": ["csynth"]}, "not steps of yosys"),
        ({"steps": []}, "at least one step"),
        ({"steps": ["synth", "synth"]}, "repeat a step"),
        ({"rtl_files": []}, "needs rtl_files"),
        ({"tool": "vitis_hls", "steps": ["csynth"]}, "needs an hls4ml or conifer"),
        ({"clock_period_ns": 0}, "greater than 0"),
        ({"timeout_s": -1}, "greater than 0"),
        ({"unknown_field": 1}, "Extra inputs"),
    ],
)
def test_inconsistent_jobs_rejected(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rtl_job(**changes)


def test_vendor_step_rules() -> None:
    with pytest.raises(ValueError, match="must include csynth"):
        hls_job(VU9P, steps=["cosim"])
    with pytest.raises(ValueError, match="use tool vitis_hls"):
        hls_job(VU9P, tool="vivado", steps=["vsynth"])


@pytest.mark.parametrize(
    ("part", "family"),
    [
        ("xcvu9p-flgb2104-2L-e", "xcup"),
        ("xczu9eg-ffvb1156-2-e", "xcup"),
        ("xcu50-fsvh2104-2L-e", "xcup"),
        ("xcku115-flvb2104-2-e", "xcu"),
        ("xcvu440-flga2892-2-e", "xcu"),
        ("xc7vx690tffg1927-2", "xc7"),
        ("xc7z020clg400-1", "xc7"),
    ],
)
def test_family_of_part(part: str, family: str) -> None:
    assert xilinx_family(part) == family


# ---------------------------------------------------------------- hash and files


def test_job_hash_tracks_content_not_location(tmp_path: Path) -> None:
    job = rtl_job()
    copy = tmp_path / "elsewhere"
    shutil.copytree(RTL, copy)
    moved = rtl_job(project_dir=copy, timeout_s=5, memory_gb=64)
    assert moved.job_hash() == job.job_hash()  # folder, time-out and memory do not change the result
    assert rtl_job(part="xc7vx690tffg1927-2").job_hash() != job.job_hash()
    assert rtl_job(clock_period_ns=3.0).job_hash() != job.job_hash()
    source = copy / "tiny_bdt.v"
    source.write_text(source.read_text().replace("12'sd310", "12'sd311"))  # one constant
    assert moved.job_hash() != job.job_hash()


def test_hls4ml_files_skip_build_products(tmp_path: Path) -> None:
    project = tmp_path / "prj"
    shutil.copytree(VU9P, project)
    job = hls_job(project)
    files = job.project_files()
    assert "project.tcl" in files and "firmware/myproject.cpp" in files and "tb_data/tb_input_features.dat" in files
    assert not any(f.startswith("myproject_prj/") or f.endswith(".rpt") for f in files)
    before = job.job_hash()
    (project / "firmware" / "myproject-abc123.so").write_bytes(b"\0")
    (project / "tb_data" / "csim_results.log").write_text("0.5\n")
    assert job.job_hash() == before
    (project / "firmware" / "weights").mkdir()
    (project / "firmware" / "weights" / "w2.txt").write_text("1,2,3\n")
    assert job.job_hash() != before


def test_missing_project_file_is_named(tmp_path: Path) -> None:
    project = tmp_path / "prj"
    shutil.copytree(VU9P, project)
    (project / "build_prj.tcl").unlink()
    with pytest.raises(SynthesisError, match=r"missing project file\(s\) \['build_prj.tcl'\]"):
        hls_job(project).job_hash()


def test_symlink_out_of_project_rejected(tmp_path: Path) -> None:
    project = tmp_path / "rtl"
    project.mkdir()
    outside = tmp_path / "outside.v"
    outside.write_text("module tiny_bdt(); endmodule\n")
    (project / "tiny_bdt.v").symlink_to(outside)
    with pytest.raises(SynthesisError, match="outside the project folder"):
        rtl_job(project_dir=project, metadata_file=None, latency_cycles=1).job_hash()


# ---------------------------------------------------------------- serialisation


def test_json_and_yaml_round_trip(tmp_path: Path) -> None:
    job = rtl_job(latency_cycles=None, ii_cycles=1)
    assert SynthesisJob.from_json(job.to_json()) == job
    assert SynthesisJob.from_yaml(job.to_yaml()) == job
    path = tmp_path / "job.yaml"
    path.write_text(job.to_yaml())
    assert SynthesisJob.load(path) == job
    data = json.loads(job.to_json())
    data["part"] = "not-a-part"
    with pytest.raises(ValueError, match=r"bad.json: invalid synthesis job(.|\n)*part"):
        SynthesisJob.from_dict(data, "bad.json")
    data["format"] = "other/9"
    with pytest.raises(ValueError, match="format 'other/9'"):
        SynthesisJob.from_dict(data, "bad.json")


# ---------------------------------------------------------------- runner plumbing

STAND_IN = """#!{python}
# stand-in for a Xilinx tool that does not exist on this machine: records its
# arguments and writes the report files a real run leaves (from the fixtures)
import os, shutil, subprocess, sys, time
from pathlib import Path
name = Path(sys.argv[0]).name
Path(os.environ["STAND_IN_CALLS"]).open("a").write(name + " " + " ".join(sys.argv[1:]) + "\\n")
fixture = Path(os.environ["STAND_IN_FIXTURE"])
mode = os.environ.get("STAND_IN_MODE", "ok")
if mode == "hang":
    child = subprocess.Popen(["sleep", "60"])
    Path(os.environ["STAND_IN_CALLS"]).open("a").write(f"child {{child.pid}}\\n")
    time.sleep(60)
if mode == "fail":
    print("ERROR: [HLS 200-70] stand-in failure")
    sys.exit(1)
if name == "vitis_hls":
    opts = Path("build_opt.tcl").read_text()
    print(opts)
    for rel in ("myproject_prj/solution1/syn/report/myproject_csynth.xml",
                "myproject_prj/solution1/sim/report/myproject_cosim.rpt"):
        Path(rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(fixture / rel, rel)
    verilog = Path("myproject_prj/solution1/syn/verilog")
    verilog.mkdir(parents=True)
    (verilog / "myproject.v").write_text("module myproject(); endmodule\\n")
else:
    # conifer's VHDL synth.tcl writes util.rpt, the other scripts vivado_synth.rpt
    target = "util.rpt" if "synth.tcl" in sys.argv else "vivado_synth.rpt"
    shutil.copy(fixture / "vivado_synth.rpt", target)
"""


@pytest.fixture
def stand_in_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("vitis_hls", "vivado"):
        tool = bin_dir / name
        tool.write_text(STAND_IN.format(python=sys.executable))
        tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    calls = tmp_path / "calls.txt"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin")
    monkeypatch.setenv("STAND_IN_CALLS", str(calls))
    monkeypatch.setenv("STAND_IN_FIXTURE", str(VU9P))
    return calls


def test_vendor_run_stages_runs_collects_and_caches(
    stand_in_tools: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "prj"
    shutil.copytree(VU9P, project, ignore=shutil.ignore_patterns("myproject_prj", "*.rpt"))
    job = hls_job(project)
    work = tmp_path / "work"
    report = VendorRunner().run(job, work)
    calls = stand_in_tools.read_text().splitlines()
    assert calls[0].split()[0] == "vitis_hls" and calls[0].split()[1:] == ["-f", "build_prj.tcl"]
    assert calls[1].split()[0] == "vivado"
    assert calls[1].split()[1:] == ["-mode", "batch", "-nojournal", "-source", "vivado_synth.tcl"]
    result = work / job.job_hash()
    options = (result / "project" / "build_opt.tcl").read_text()
    for line in ("reset      1", "csim 0", "synth 1", "cosim 1", "export 0", "vsynth 0"):
        assert " ".join(line.split()) in " ".join(options.split())
    assert (result / "logs" / "hls.log").is_file() and (result / "logs" / "vivado.log").is_file()
    assert report.job_hash == job.job_hash() and report.latency_max_cycles == 15 and report.resources.lut == 39874
    assert all(not s.startswith("/") for s in report.sources)  # relative to the result folder
    assert load_report(result) == report
    verilog = VendorRunner().hls_verilog_dir(job, result / "project")
    assert (verilog / "myproject.v").is_file()  # the HLS RTL comes back with the result
    with pytest.raises(SynthesisError, match="no HLS Verilog"):
        VendorRunner().hls_verilog_dir(job, project)
    assert [p.name for p in work.iterdir()] == [job.job_hash()]  # no temporary folder left
    # the same firmware is never synthesized twice: no tool needed the second time
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert VendorRunner().run(job, work) == report
    assert len(stand_in_tools.read_text().splitlines()) == 2


def test_vendor_time_out_kills_process_group(
    stand_in_tools: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STAND_IN_MODE", "hang")
    project = tmp_path / "prj"
    shutil.copytree(VU9P, project)
    job = hls_job(project, timeout_s=2)
    work = tmp_path / "work"
    start = time.monotonic()
    with pytest.raises(SynthesisTimeout, match=r"vitis_hls ran past the job time-out.*hls.log"):
        VendorRunner().run(job, work)
    assert time.monotonic() - start < 30
    child = int(next(line for line in stand_in_tools.read_text().splitlines() if line.startswith("child")).split()[1])
    for _ in range(50):  # the orphaned child is killed with its group, then reaped by init
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"child process {child} of the timed-out tool is still alive")
    assert not any(work.iterdir())  # nothing half-written looks done


def test_vendor_tool_failure_reports_log(stand_in_tools: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAND_IN_MODE", "fail")
    project = tmp_path / "prj"
    shutil.copytree(VU9P, project)
    work = tmp_path / "work"
    with pytest.raises(SynthesisError, match=r"vitis_hls exited with status 1(.|\n)*HLS 200-70"):
        VendorRunner().run(hls_job(project), work)
    assert not any(work.iterdir())


def test_memory_need_is_checked(stand_in_tools: Path, tmp_path: Path) -> None:
    job = hls_job(VU9P, memory_gb=1e6)
    with pytest.raises(InsufficientMemoryError, match="needs 1e\\+06 GB"):
        VendorRunner().run(job, tmp_path / "work")
    assert not (tmp_path / "work" / REPORT_FILE).exists()


# ---------------------------------------------------------------- command line


def _cli(argv: list[str]) -> int:
    from l1flow.cli.main import build_parser

    args = build_parser().parse_args(argv)
    return int(args.func(args))


def test_synth_report_command(capsys: pytest.CaptureFixture[str]) -> None:
    files = [
        VU9P / "myproject_prj/solution1/syn/report/myproject_csynth.xml",
        VU9P / "myproject_prj/solution1/sim/report/myproject_cosim.rpt",
        VU9P / "vivado_synth.rpt",
    ]
    assert _cli(["synth", "report", *map(str, files), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["latency_max_ns"] == 75.0 and data["resources"]["lut"] == 39874
    assert _cli(["synth", "report", *map(str, files)]) == 0
    text = capsys.readouterr().out
    assert "latency 15..15 cycles (75 ns at 5 ns)" in text and "LUT 39874 (3.37%)" in text
    with pytest.raises(ValueError, match="unknown report kind"):
        _cli(["synth", "report", str(VU9P / "project.tcl")])


def test_vivado_rtl_job_passes_sources_as_tcl_arguments(stand_in_tools: Path, tmp_path: Path) -> None:
    project = tmp_path / "rtl"
    shutil.copytree(RTL, project)
    job = rtl_job(project_dir=project, tool="vivado", steps=["vsynth"], part="xc7vx690tffg1927-2")
    report = VendorRunner().run(job, tmp_path / "work")
    call = stand_in_tools.read_text().split()
    assert call[0] == "vivado" and call[1:] == [
        "-mode", "batch", "-nojournal", "-source", "vivado_synth_rtl.tcl",
        "-tclargs", "tiny_bdt", "xc7vx690tffg1927-2", "2.5", "tiny_bdt.v",
    ]
    staged_tcl = tmp_path / "work" / job.job_hash() / "project" / "vivado_synth_rtl.tcl"
    assert "synth_design -top $top -part $part -mode out_of_context" in staged_tcl.read_text()
    # resources from Vivado's report, latency from the RTL generator's sidecar
    assert report.tool == "vivado" and report.resources.lut == 39874
    assert (report.latency_max_cycles, report.latency_source) == (2, "generator (tiny_bdt.json)")


def test_hls4ml_vivado_backend_project_is_refused(stand_in_tools: Path, tmp_path: Path) -> None:
    project = tmp_path / "prj"
    shutil.copytree(VU9P, project)
    tcl = project / "project.tcl"
    tcl.write_text(tcl.read_text().replace('set backend "vitis"', 'set backend "vivado"'))
    with pytest.raises(SynthesisError, match="'vivado' backend.*backend='Vitis'"):
        VendorRunner().run(hls_job(project), tmp_path / "work")
    assert not stand_in_tools.exists()  # no tool was started


def test_conifer_vhdl_job_runs_its_synth_tcl(stand_in_tools: Path, tmp_path: Path) -> None:
    project = tmp_path / "bdt_vhdl"
    (project / "firmware").mkdir(parents=True)
    (project / "firmware" / "BDTTop.vhd").write_text("-- conifer VHDL top (placeholder)\n")
    (project / "synth.tcl").write_text(
        "add_files firmware/\nsynth_design -top BDTTop -part xcvu9p-flgb2104-2L-e\nreport_utilization -file util.rpt\n"
    )
    job = SynthesisJob(
        project_dir=project, project_kind="conifer", tool="vivado", steps=["vsynth"],
        part="xcvu9p-flgb2104-2L-e", clock_period_ns=5, top="BDTTop", latency_cycles=7, memory_gb=0.1,
    )
    report = VendorRunner().run(job, tmp_path / "work")
    assert stand_in_tools.read_text().split()[1:] == ["-mode", "batch", "-nojournal", "-source", "synth.tcl"]
    assert report.sources == ["project/util.rpt"] and report.latency_max_ns == 35.0
    other = job.model_copy(update={"part": "xc7vx690tffg1927-2"})
    with pytest.raises(SynthesisError, match="synth.tcl: synthesizes for part xcvu9p-flgb2104-2L-e"):
        VendorRunner().run(other, tmp_path / "work2")
