"""`l1flow verify` on a project brought from elsewhere: ports from its headers, its C++ as reference.

The fixture (tests/fixtures/verify_prj) is an hls4ml-layout project of our own:
a dense layer feeding a table, two output arrays, and Verilog in the layout
Vitis HLS gives a DATAFLOW top (ap_continue, a pipeline-valid helper that reads
``$value$plusargs``, a ROM read with ``$readmemh`` from the synthesis
machine's absolute path), plus co-simulation files in Vitis's ``sim/tv`` format.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import l1flow  # noqa: F401  (sets the toolchain environment)
from l1flow.cli.main import main
from l1flow.errors import BadInputError
from l1flow.hardware.hls_verilog import find_top
from l1flow.hardware.verilator import simulator_words
from l1flow.verify.brought import generated_stimulus
from l1flow.verify.project import read_project

FIXTURE = Path(__file__).parent / "fixtures" / "verify_prj"
SOLUTION = FIXTURE / "myproject_prj" / "solution1"
ROM = "myproject_table_lookup_s_table3_ROM_AUTO_1R.dat"


@pytest.fixture(scope="session")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's Verilator cache (shared with test_hls_verilog, so Verilator's runtime is built once);
    the C++ reference is cached beside it."""
    return tmp_path_factory.getbasetemp() / "verilator-cache"


def copy_project(tmp_path: Path) -> Path:
    target = tmp_path / "verify_prj"
    shutil.copytree(FIXTURE, target)
    return target


def verify(project: Path, cache: Path, *against: str, extra: tuple[str, ...] = ()) -> tuple[int, dict]:
    out = project.parent / "verify.json"
    out.unlink(missing_ok=True)
    args = ["verify", str(project), "--cache", str(cache), "--json", str(out), *extra]
    for source in against:
        args += ["--against", source]
    code = main(args)
    return code, (json.loads(out.read_text()) if out.exists() else {})


def test_ports_come_from_defines_and_the_top_signature(tmp_path):
    project = read_project(FIXTURE)
    assert (project.kind, project.top) == ("hls4ml", "myproject")
    assert [(p.name, p.type, p.shape) for p in project.input_ports] == [("input_1", "ap_fixed<8,3>", (4,))]
    assert [(p.name, p.type, p.shape) for p in project.output_ports] == [
        ("layer2_out", "ap_fixed<12,5>", (3,)), ("layer3_out", "ap_ufixed<8,0>", (2,)),
    ]
    # sizes as products of #defines and a typedef of a typedef, as hls4ml writes them
    copy = copy_project(tmp_path)
    defines = copy / "firmware" / "defines.h"
    defines.write_text(defines.read_text().replace("#define N_INPUT_1_1 4", "#define N_INPUT_1_1 2\n#define N_INPUT_2_1 2")
                       .replace("typedef ap_fixed<8,3> input_t;", "typedef ap_fixed<8,3> in_base_t;\ntypedef in_base_t input_t;"))
    header = copy / "firmware" / "myproject.h"
    header.write_text(header.read_text().replace("input_1[N_INPUT_1_1]", "input_1[N_INPUT_1_1*N_INPUT_2_1]"))
    assert read_project(copy).input_ports == project.input_ports
    header.write_text(header.read_text().replace("N_INPUT_2_1]", "N_INPUT_9_1]"))
    with pytest.raises(BadInputError, match=r"myproject\.h: argument .*uses N_INPUT_9_1, which firmware/defines\.h"):
        read_project(copy)


def test_generated_stimulus_covers_rails_and_zero():
    ports = read_project(FIXTURE).input_ports
    words = generated_stimulus(ports, 500, seed=3)
    assert words.shape == (500, 4) and words.min() == -128 and words.max() == 127
    for column in words.T:
        assert {-128, -127, -1, 0, 1, 126, 127} <= set(column.tolist())
    assert np.array_equal(words, generated_stimulus(ports, 500, seed=3))
    assert not np.array_equal(words, generated_stimulus(ports, 500, seed=4))


def test_cosim_passes_and_the_json_names_every_source(tmp_path, cache, capsys):
    project = copy_project(tmp_path)
    code, report = verify(project, cache, f"cosim:{project / 'myproject_prj'}")
    assert code == 0
    (source,) = report["sources"]
    assert source["source"] == f"cosim:{project / 'myproject_prj'}"
    assert (source["events"], source["mismatched_events"], source["mismatched_words"], source["passed"]) == (24, 0, 0, True)
    assert source["reference"].startswith("project C++")
    assert "reference project C++" in capsys.readouterr().out


def test_one_flipped_output_bit_in_cosim_is_caught(tmp_path, cache, capsys):
    project = copy_project(tmp_path)
    path = project / "myproject_prj/solution1/sim/tv/rtldatafile/rtl.myproject.autotvout_layer3_out_1.dat"
    lines = path.read_text().splitlines()
    k = lines.index("[[transaction]] 5") + 1
    lines[k] = f"0x{int(lines[k], 16) ^ 0x10:03x}"
    path.write_text("\n".join(lines) + "\n")
    code, report = verify(project, cache, f"cosim:{project / 'myproject_prj/solution1/sim/tv'}")
    assert code == 1
    (source,) = report["sources"]
    assert (source["mismatched_events"], source["mismatched_words"], source["passed"]) == (1, 1, False)
    (first,) = source["first_mismatches"]
    assert first["event"] == 5 and first["words"][0]["port"] == "layer3_out"
    assert first["words"][0]["index"] == 1 and first["words"][0]["differing_bits"] == [4]
    assert len(first["input_words"]) == 4
    assert "event 5: layer3_out[1]" in capsys.readouterr().out


def test_vivado_V_names_in_cosim_pass(tmp_path, cache):
    project = copy_project(tmp_path)
    for path in (project / "myproject_prj/solution1/sim/tv").rglob("*.dat"):
        path.rename(path.with_name(path.stem + "_V.dat"))
    code, report = verify(project, cache, f"cosim:{project / 'myproject_prj/solution1'}")
    assert code == 0 and report["sources"][0]["events"] == 24


def test_truncated_transaction_file_exits_2_naming_it(tmp_path, cache, capsys):
    project = copy_project(tmp_path)
    path = project / "myproject_prj/solution1/sim/tv/rtldatafile/rtl.myproject.autotvout_layer2_out_1.dat"
    path.write_text("\n".join(path.read_text().splitlines()[:30]) + "\n")
    code, _ = verify(project, cache, f"cosim:{project / 'myproject_prj'}")
    assert code == 2
    assert "rtl.myproject.autotvout_layer2_out_1.dat" in capsys.readouterr().err


def test_wrong_port_type_exits_2_for_cosim_and_verilog(tmp_path, cache, capsys):
    project = copy_project(tmp_path)
    defines = project / "firmware" / "defines.h"
    original = defines.read_text()
    defines.write_text(original.replace("typedef ap_fixed<8,3> input_t;", "typedef ap_fixed<10,3> input_t;"))
    assert verify(project, cache, f"cosim:{project / 'myproject_prj'}")[0] == 2
    err = capsys.readouterr().err
    assert "c.myproject.autotvin_input_1.dat:3: port autotvin_input_1, transaction 0" in err
    assert "has 9 hex digits, but the declared type 4 x ap_fixed<10,3> needs 10 (40 bits)" in err
    assert verify(project, cache, f"verilog:{SOLUTION}")[0] == 2
    assert "input_1 has 32 bits, but firmware port input_1 needs 4 x 10 = 40" in capsys.readouterr().err
    # one element too few: the RTL and the co-simulation have a third layer2_out
    defines.write_text(original.replace("#define N_LAYER_2 3", "#define N_LAYER_2 2"))
    assert verify(project, cache, f"cosim:{project / 'myproject_prj'}")[0] == 2
    assert "rtl.myproject.autotvout_layer2_out_2.dat: the RTL has element 2 of autotvout_layer2_out" in capsys.readouterr().err
    assert verify(project, cache, f"verilog:{SOLUTION}")[0] == 2
    assert "port layer2_out_2, element 2 of layer2_out" in capsys.readouterr().err


def test_bad_inputs_exit_2_naming_what_is_wrong(tmp_path, cache, capsys):
    assert main(["verify", str(tmp_path / "nowhere"), "--against", f"cosim:{SOLUTION}"]) == 2
    assert "nowhere: no such project folder" in capsys.readouterr().err
    assert main(["verify", str(FIXTURE), "--against", f"rtl:{SOLUTION}"]) == 2
    assert "expected KIND:PATH with KIND one of verilog, cosim, board, vectors" in capsys.readouterr().err
    assert main(["verify", str(FIXTURE), "--against", f"verilog:{FIXTURE / 'firmware'}"]) == 2
    assert "no *.v files" in capsys.readouterr().err
    assert main(["verify", str(FIXTURE), "--against", f"verilog:{SOLUTION}", "--top", "mytop", "--cache", str(cache)]) == 2
    assert "no module named 'mytop'" in capsys.readouterr().err


def test_result_folder_answering_a_stimulus_set(tmp_path, cache, capsys):
    from l1flow.firmware.vectors import VectorSet
    from l1flow.verify.reference import CppReference

    project = read_project(FIXTURE)
    words = generated_stimulus(project.input_ports, 400, seed=9)
    outputs = CppReference(project, cache.parent / "cpp-reference").predict_words(words)
    stimulus = VectorSet(project.input_ports, project.output_ports, words, outputs, model={"name": "fixture"})
    stimulus.save(tmp_path / "stimulus")
    stimulus.result(outputs, source="board").save(tmp_path / "result")
    args = ["--stimulus", str(tmp_path / "stimulus")]
    assert verify(FIXTURE, cache, f"vectors:{tmp_path / 'result'}", extra=tuple(args))[0] == 0
    wrong = outputs.copy()
    wrong[17, 3] ^= 1 << 2
    stimulus.result(wrong, source="board").save(tmp_path / "result")
    code, report = verify(FIXTURE, cache, f"vectors:{tmp_path / 'result'}", extra=tuple(args))
    assert code == 1 and report["sources"][0]["mismatched_events"] == 1
    assert report["sources"][0]["first_mismatches"][0]["words"][0]["differing_bits"] == [2]
    # without the stimulus it answers, a result folder cannot be checked
    assert verify(FIXTURE, cache, f"vectors:{tmp_path / 'result'}")[0] == 2
    assert "give that stimulus set with --stimulus DIR" in capsys.readouterr().err


def test_a_runs_model_names_its_firmware_project(tmp_path, cache):
    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run / "firmware" / "ae" / "hls4ml_prj")
    summary = {"models": {"ae": {"artifacts": {"model": "models/ae", "firmware": "firmware/ae", "vectors": "vectors/ae"}}}}
    (run / "summary.json").write_text(json.dumps(summary))
    out = tmp_path / "run.json"
    assert main(["verify", f"{run}:ae", "--against", f"cosim:{SOLUTION}", "--cache", str(cache), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["sources"][0]["events"] == 24
    assert main(["verify", f"{run}:bdt", "--against", f"cosim:{SOLUTION}"]) == 2


def test_unknown_registry_version_exits_2(tmp_path, capsys):
    code = main(["verify", "no_such_model@production", "--workspace", str(tmp_path / "ws"), "--against", f"cosim:{SOLUTION}"])
    assert code == 2
    assert "no_such_model@production" in capsys.readouterr().err


def test_find_top_on_a_hundred_modules():
    # a chain m0 -> m1 -> ... -> m99 plus parameterised and port-named instances
    modules = {
        f"m{i}": f"module m{i} (input clk); m{i + 1} #(.W(8)) u_{i} (.clk(clk)); wire m{i}_x; endmodule"
        for i in range(99)
    }
    modules["m99"] = "module m99 (input clk); endmodule"
    assert find_top(modules) == "m0"
    modules["other"] = "module other (input clk); m1 u (.clk(clk)); endmodule"
    with pytest.raises(BadInputError, match=r"candidates \['m0', 'other'\]; pass --top"):
        find_top(modules)


def test_simulator_words_keep_stdout_and_stderr():
    text = simulator_words("line\n" * 50 + "%Error: Verilog called $value$plusargs\nAborting...\n", "harness: exit 6\n")
    assert "[stdout]" in text and "Aborting..." in text and "[stderr]\nharness: exit 6" in text
    assert text.count("line") == 28  # the last 30 lines of stdout
    assert simulator_words("", "") == "(nothing on stdout or stderr)"


@pytest.mark.slow
def test_verilog_with_plusargs_rom_and_dataflow_matches_the_cpp(tmp_path, cache):
    project = copy_project(tmp_path)
    code, report = verify(project, cache, f"verilog:{project / 'myproject_prj'}",
                          f"cosim:{project / 'myproject_prj'}", extra=("--events", "3000"))
    assert code == 0
    verilog, cosim = report["sources"]
    assert (verilog["events"], verilog["mismatched_events"], verilog["passed"]) == (3000, 0, True)
    assert verilog["top"] == "myproject" and verilog["verilog_dir"].endswith("syn/verilog")
    assert (cosim["events"], cosim["passed"]) == (24, True)
    assert report["stimulus"] == {"kind": "generated (full range, rails, zero)", "seed": 12, "events": 3000,
                                  "project": str(project)}
    # the project's own test bench inputs (real values, quantized to input_t) as the stimulus
    code, report = verify(project, cache, f"verilog:{project / 'myproject_prj'}", extra=("--stimulus", "tb"))
    assert code == 0 and report["sources"][0]["events"] == 6 and report["stimulus"]["kind"] == "given"


@pytest.mark.slow
def test_one_changed_rom_word_is_caught(tmp_path, cache):
    project = copy_project(tmp_path)
    rom = project / "myproject_prj/solution1/syn/verilog" / ROM
    words = rom.read_text().split()
    assert words[128] == "80"
    words[128] = "81"
    rom.write_text("\n".join(words) + "\n")
    code, report = verify(project, cache, f"verilog:{project / 'myproject_prj/solution1/syn/verilog'}",
                          extra=("--events", "3000"))
    assert code == 1
    (source,) = report["sources"]
    assert source["mismatched_events"] > 0
    # only the table's outputs differ, by the one bit that changed
    words_wrong = [w for m in source["first_mismatches"] for w in m["words"]]
    assert {w["port"] for w in words_wrong} == {"layer3_out"}
    assert all(w["expected"] == 128 and w["actual"] == 129 and w["differing_bits"] == [0] for w in words_wrong)


def _qkeras_model():  # type: ignore[no-untyped-def]
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu
    from tensorflow.keras.layers import Input
    from tensorflow.keras.models import Model

    inp = Input((6,), name="objects")
    x = QActivation(quantized_bits(10, 4, alpha=1), name="q_in")(inp)
    x = QDense(4, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1),
               name="enc")(x)
    x = QActivation(quantized_relu(8, 3), name="relu")(x)
    x = QDense(3, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1),
               name="out")(x)
    model = Model(inp, x)
    rng = np.random.default_rng(3)
    for layer in model.layers:
        if layer.get_weights():
            layer.set_weights([rng.normal(0, 0.6, w.shape) for w in layer.get_weights()])
    return model


@pytest.mark.slow
def test_saved_keras_model_makes_the_emulator_the_reference(tmp_path, cache, capsys):
    from l1flow.firmware.hls4ml_project import convert_keras
    from l1flow.hardware.imported import write_cosim_tv
    from l1flow.verify.reference import CppReference, emulator_reference

    convert_keras(_qkeras_model(), tmp_path / "prj", part="xcvu9p-flgb2104-2L-e", clock_period_ns=5.0)
    project = read_project(tmp_path / "prj")
    assert project.keras_model == tmp_path / "prj" / "keras_model.keras"
    emulator, why_not = emulator_reference(project, tmp_path / "emu")
    assert emulator is not None and why_not == ""
    words = generated_stimulus(project.input_ports, 2000, seed=1)
    cpp = CppReference(project, cache.parent / "cpp-reference")
    # the "hardware" here is the project's own C++; the emulator of its Keras model must agree bit for bit
    hardware = cpp.predict_words(words)
    assert np.count_nonzero(emulator.predict_words(words) != hardware) == 0 and len(np.unique(hardware)) > 500
    sim = tmp_path / "solution1" / "sim" / "tv"
    write_cosim_tv(sim, "myproject", project.input_ports, project.output_ports, words, hardware)
    code, report = verify(tmp_path / "prj", cache, f"cosim:{sim.parent.parent}")
    assert code == 0 and report["sources"][0]["reference"].startswith("l1flow fast emulator")
    assert report["sources"][0]["events"] == 2000
    # one LSB of one weight in the firmware the C++ loads: the emulator of the model catches it
    weights = tmp_path / "prj" / "firmware" / "weights" / "w3.txt"
    values = [float(v) for v in weights.read_text().replace("\n", "").split(",") if v.strip()]
    values[0] += -1 / 32 if values[0] > 0 else 1 / 32
    weights.write_text(", ".join(f"{v:.5f}" for v in values))
    changed = CppReference(read_project(tmp_path / "prj"), cache.parent / "cpp-reference").predict_words(words)
    write_cosim_tv(sim, "myproject", project.input_ports, project.output_ports, words, changed)
    code, report = verify(tmp_path / "prj", cache, f"cosim:{sim.parent.parent}")
    assert code == 1 and report["sources"][0]["mismatched_events"] == int(np.count_nonzero((changed != hardware).any(axis=1)))
    assert report["sources"][0]["mismatched_events"] > 0
    assert "l1flow fast emulator" in capsys.readouterr().out


@pytest.mark.slow
def test_conifer_project_against_a_board_capture(tmp_path, cache, capsys):
    import conifer
    import xgboost as xgb

    from l1flow.hardware.imported import write_board_capture
    from l1flow.verify.reference import CppReference

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 4))
    booster = xgb.XGBClassifier(n_estimators=3, max_depth=2).fit(x, (x[:, 0] + x[:, 1] > 0).astype(int)).get_booster()
    config = conifer.backends.xilinxhls.auto_config()
    config.update(OutputDir=str(tmp_path / "bdt"), ProjectName="my_prj", InputPrecision="ap_fixed<12,4>",
                  ThresholdPrecision="ap_fixed<12,4>", ScorePrecision="ap_fixed<14,6>")
    conifer.converters.convert_from_xgboost(booster, config).write()
    project = read_project(tmp_path / "bdt")
    assert (project.kind, project.top) == ("conifer", "my_prj")
    assert [(p.name, p.type, p.shape) for p in project.input_ports + project.output_ports] == [
        ("x", "ap_fixed<12,4>", (4,)), ("score", "ap_fixed<14,6>", (2,)),
    ]
    words = generated_stimulus(project.input_ports, 300, seed=2)
    scores = CppReference(project, cache.parent / "cpp-reference").predict_words(words)
    assert len(np.unique(scores[:, 0])) > 5
    capture = tmp_path / "capture.txt"
    write_board_capture(capture, project.input_ports, project.output_ports, words, scores)
    code, report = verify(tmp_path / "bdt", cache, f"board:{capture}")
    assert code == 0 and report["sources"][0]["events"] == 300
    scores[40, 0] += 1
    write_board_capture(capture, project.input_ports, project.output_ports, words, scores)
    code, report = verify(tmp_path / "bdt", cache, f"board:{capture}")
    assert code == 1 and report["sources"][0]["first_mismatches"][0]["event"] == 40
