"""The raw-word HLS test bench compiled with g++: a real C simulation without Vivado.

Its output words must equal the fast emulator's and hls_model.predict's; the
vector folders it reads and the result files it writes go through vectors.py,
whose errors on truncated or malformed files are checked here too.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from l1flow.firmware.fixed import quantize
from l1flow.firmware.hls4ml_project import (
    Hls4mlProjectError,
    build_raw_testbench,
    convert_keras,
    project_info,
    run_raw_testbench,
    write_raw_testbench,
)
from l1flow.firmware.netgraph import FirmwareNet, export_vectors
from l1flow.firmware.nn_emulator import NNEmulator
from l1flow.firmware.vectors import INPUTS_FILE, OUTPUTS_FILE, VectorFormatError, VectorSet, read_words

EVENTS = 2000


def _model() -> Any:
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu
    from tensorflow.keras.layers import Input
    from tensorflow.keras.models import Model

    inp = Input((10,), name="objects")
    x = QActivation(quantized_bits(12, 5, alpha=1), name="q_in")(inp)
    x = QDense(6, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1),
               name="enc")(x)
    x = QActivation(quantized_relu(8, 3), name="relu")(x)
    x = QDense(10, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1),
               name="dec")(x)
    model = Model(inp, x, name="tb_ae")
    rng = np.random.default_rng(3)
    for layer in model.layers:
        if layer.get_weights():
            layer.set_weights([rng.normal(0, 0.6, w.shape) for w in layer.get_weights()])
    return model


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("hls_tb")
    hls_model = convert_keras(_model(), work / "prj", part="xc7vx690tffg1927-2", clock_period_ns=25.0,
                              project_name="tb_ae")
    net = FirmwareNet.from_hls_model(hls_model)
    emulator = NNEmulator(net)
    x = np.random.default_rng(4).normal(0, 4, (EVENTS, 10))
    input_words = emulator.quantize_inputs(x)
    output_words = emulator.predict_words(input_words)
    vectors = export_vectors(net, input_words, output_words, {"version": "test-1"}, work / "vectors")
    write_raw_testbench(hls_model, work / "vectors")
    executable = build_raw_testbench(hls_model, work / "build")
    return {"work": work, "hls_model": hls_model, "net": net, "x": x, "vectors": vectors,
            "executable": executable, "emulator": emulator}


@pytest.mark.slow
def test_csim_words_equal_emulator_and_hls4ml(project: dict[str, Any]) -> None:
    vectors: VectorSet = project["vectors"]
    csim = run_raw_testbench(project["executable"], vectors.input_words, project["net"].n_outputs,
                             project["work"] / "csim")
    hls = quantize(np.asarray(project["hls_model"].predict(project["x"])), project["net"].output.type)
    assert csim.shape == (EVENTS, 10)
    assert np.count_nonzero(csim != vectors.output_words) == 0
    assert np.count_nonzero(csim != hls) == 0
    assert len(np.unique(csim)) > 50


@pytest.mark.slow
def test_csim_result_is_an_exact_record_and_catches_a_flipped_bit(project: dict[str, Any]) -> None:
    vectors: VectorSet = VectorSet.load(project["work"] / "vectors")
    csim = run_raw_testbench(project["executable"], vectors.input_words, project["net"].n_outputs,
                             project["work"] / "csim2")
    result = vectors.result(csim, source="gxx-csim")
    result.save(project["work"] / "result")
    loaded = VectorSet.load(project["work"] / "result")
    assert loaded.stimulus_hash == vectors.content_hash and loaded.source == "gxx-csim"
    assert np.array_equal(loaded.output_words, vectors.output_words)
    flipped = vectors.input_words.copy()
    flipped[17, 3] ^= 1 << 6
    again = run_raw_testbench(project["executable"], flipped, project["net"].n_outputs, project["work"] / "csim3")
    assert np.count_nonzero(np.any(again != vectors.output_words, axis=1)) == 1


@pytest.mark.slow
def test_default_paths_read_tb_data(project: dict[str, Any]) -> None:
    """Vendor C-sim runs the bench without arguments from a folder holding tb_data/."""
    import subprocess

    info = project_info(project["hls_model"])
    run_dir = project["work"] / "vendor_like"
    (run_dir / "tb_data").mkdir(parents=True)
    shutil.copy(info.project_dir / "tb_data" / "raw_inputs.txt", run_dir / "tb_data")
    subprocess.run([str(project["executable"])], cwd=run_dir, check=True, capture_output=True)
    words = read_words(run_dir / "tb_data" / "raw_outputs.txt", 10)
    assert np.array_equal(words, project["vectors"].output_words)


@pytest.mark.slow
def test_testbench_reports_a_short_row(project: dict[str, Any]) -> None:
    bad = project["work"] / "bad_inputs.txt"
    bad.write_text("1 2 3 4 5 6 7 8 9 10\n1 2 3\n")
    import subprocess

    run = subprocess.run([str(project["executable"]), str(bad), str(project["work"] / "bad_out.txt")],
                         capture_output=True, text=True)
    assert run.returncode == 2
    assert "line 2: expected 10 integer words, found 3" in run.stderr


@pytest.mark.slow
def test_vectors_refuse_a_mismatched_project(project: dict[str, Any], tmp_path: Path) -> None:
    vectors: VectorSet = project["vectors"]
    other = VectorSet(inputs=vectors.inputs, outputs=vectors.inputs, input_words=vectors.input_words,
                      output_words=vectors.input_words, model=vectors.model)
    other.save(tmp_path / "other")
    with pytest.raises(Hls4mlProjectError, match="ports"):
        write_raw_testbench(project["hls_model"], tmp_path / "other")


@pytest.mark.slow
def test_export_vectors_metadata_and_range_check(project: dict[str, Any], tmp_path: Path) -> None:
    meta = json.loads((project["work"] / "vectors" / "meta.json").read_text())
    assert meta["ports"]["inputs"] == [{"name": "objects", "type": "ap_fixed<12,6,AP_RND_CONV,AP_SAT>",
                                        "shape": [10]}]
    assert meta["ports"]["outputs"][0]["shape"] == [10]
    assert meta["model"] == {"project": "tb_ae", "version": "test-1"}
    assert meta["events"] == EVENTS and len(meta["content_hash"]) == 64
    net = project["net"]
    words = project["vectors"].input_words.copy()
    words[0, 0] = 1 << 12  # outside ap_fixed<12,...>
    with pytest.raises(ValueError, match="input words for objects"):
        export_vectors(net, words, project["vectors"].output_words, {}, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_truncated_and_malformed_result_files_are_refused(tmp_path: Path) -> None:
    from l1flow.firmware.vectors import Port

    ports = [Port("x", "ap_fixed<8,3>", (3,))]
    stimulus = VectorSet(ports, ports, np.arange(12).reshape(4, 3), np.arange(12).reshape(4, 3))
    stimulus.save(tmp_path / "s")
    result = stimulus.result(np.arange(12).reshape(4, 3), source="csim")
    result.save(tmp_path / "r")
    outputs = tmp_path / "r" / OUTPUTS_FILE
    text = outputs.read_text()
    outputs.write_text(text[: len(text) // 2])
    with pytest.raises(VectorFormatError, match="sha256|truncated"):
        VectorSet.load(tmp_path / "r")
    # a short row, read directly as a test bench's file
    bad = tmp_path / "short.txt"
    bad.write_text("1 2 3\n4 5\n")
    with pytest.raises(VectorFormatError, match="short.txt"):
        read_words(bad, 3)
    bad.write_text("1 2 x\n")
    with pytest.raises(VectorFormatError, match="malformed"):
        read_words(bad, 3)
    bad.write_text("1 2 3 4\n")
    with pytest.raises(VectorFormatError, match="4 words per row, expected 3"):
        read_words(bad, 3)
    (tmp_path / "s" / INPUTS_FILE).write_text("0 1 2\n")
    with pytest.raises(VectorFormatError, match="sha256"):
        VectorSet.load(tmp_path / "s")
