"""conifer's VHDL BDT in GHDL and (via ghdl synth) in Verilator, against the emulator."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import l1flow  # noqa: F401  (toolchain environment)
from l1flow.firmware.bdt_emulator import BDTEmulator, export_vectors
from l1flow.firmware.conifer_project import convert_xgboost
from l1flow.firmware.forest import FirmwareForest
from l1flow.hardware.ghdl import GHDLSource, read_conifer_vhdl_project
from l1flow.hardware.verilator_bdt import VerilatorBDTSource
from l1flow.toolchain import ToolMissingError

xgb = pytest.importorskip("xgboost")

PRECISION = "ap_fixed<16,6>"
N_FEATURES = 5
needs_ghdl = pytest.mark.skipif(shutil.which("ghdl") is None, reason="Debian's ghdl is not installed")
pytestmark = pytest.mark.slow  # every test here builds or simulates RTL


def _vhdl_project(folder: Path, objective: str, trees: int, depth: int, seed: int, **extra):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 2, size=(3000, N_FEATURES))
    y = np.digitize(x[:, 0] + x[:, 1] * x[:, 2], [-1.0, 1.0]) if objective.startswith("multi") \
        else (x[:, 0] + x[:, 1] ** 2 - x[:, 3] > 1).astype(int)
    booster = xgb.train({"max_depth": depth, "objective": objective, "eta": 0.4, "nthread": 1, **extra},
                        xgb.DMatrix(x, y), trees)
    return convert_xgboost(booster, folder, backend="vhdl", input_precision=PRECISION,
                           threshold_precision=PRECISION, score_precision=PRECISION,
                           part="xcvu9p-flgb2104-2L-e", clock_period_ns=5.0)


def _stimulus(emulator: BDTEmulator, model, n: int, seed: int) -> np.ndarray:
    """Random events, a few far out of range, plus every split threshold exactly."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 3, size=(n, N_FEATURES))
    x[: n // 20] *= 40
    rows = []
    for per_tree in model.trees:
        for tree in per_tree:
            for feature, threshold in zip(tree.feature, tree.threshold):
                if feature >= 0:
                    row = rng.normal(0, 2, size=N_FEATURES)
                    row[feature] = threshold
                    rows.append(row)
    return emulator.quantize_inputs(np.concatenate([x, np.array(rows)]))


@pytest.fixture(scope="module")
def binary(tmp_path_factory):
    if shutil.which("ghdl") is None:
        pytest.skip("Debian's ghdl is not installed")
    folder = tmp_path_factory.mktemp("bdt_rtl") / "binary"
    model = _vhdl_project(folder, "binary:logistic", trees=10, depth=3, seed=5)
    emulator = BDTEmulator(FirmwareForest.from_conifer(model))
    return folder, model, emulator


@pytest.fixture(scope="module")
def binary_verilator(binary):
    folder, _, _ = binary
    source = VerilatorBDTSource(folder)
    source.write()
    source.compile()
    return source


def _leaf_reached(forest: FirmwareForest, words: np.ndarray) -> np.ndarray:
    """conifer node index of tree 0's leaf that each event reaches."""
    tree = forest.trees[0][0]
    node = np.zeros(len(words), dtype=np.int64)
    rows = np.arange(len(words))
    while np.any(tree.feature[node] != -2):
        split = tree.feature[node] != -2
        left = words[rows, np.maximum(tree.feature[node], 0)] < tree.threshold[node]
        node = np.where(split, np.where(left, tree.children_left[node], tree.children_right[node]), node)
    return node


def _change_one_leaf_constant(project: Path, leaf: int, delta: int) -> None:
    """Add `delta` to tree 0's value_int[leaf] in firmware/Arrays0.vhd: one constant."""
    arrays = project / "firmware" / "Arrays0.vhd"
    text = arrays.read_text()
    match = re.search(r"constant value_int\b[^=]*:= \(\(([^)]*)\)", text)
    assert match is not None
    values = [int(v) for v in match.group(1).split(",")]
    values[leaf] += delta
    arrays.write_text(text[: match.start(1)] + ", ".join(map(str, values)) + text[match.end(1):])


@needs_ghdl
def test_project_shape_is_read_from_constants(binary):
    folder, model, _ = binary
    project = read_conifer_vhdl_project(folder)
    assert (project.n_features, project.n_classes, project.word_width) == (N_FEATURES, 1, 16)
    assert (project.n_trees, project.max_depth) == (10, 3)
    with pytest.raises(FileNotFoundError, match="not a conifer VHDL project"):
        read_conifer_vhdl_project(folder / "firmware")


@needs_ghdl
def test_ghdl_matches_emulator_and_saves_result_set(binary, tmp_path):
    folder, model, emulator = binary
    words = _stimulus(emulator, model, 250, seed=21)
    expected = emulator.predict_words(words)
    stimulus = export_vectors(emulator.forest, words, expected, {"name": "bdt"}, tmp_path / "stimulus")
    source = GHDLSource(folder)
    source.write()
    source.compile()
    result = source.simulate(stimulus, tmp_path / "ghdl_result")
    assert result.output_words.shape == expected.shape
    assert np.count_nonzero(result.output_words != expected) == 0
    assert len(np.unique(expected)) > 20
    assert result.stimulus_hash == stimulus.content_hash and result.source == "ghdl"
    assert (tmp_path / "ghdl_result" / "outputs.txt").exists()


@needs_ghdl
def test_verilator_matches_emulator_and_reuses_its_build(binary, binary_verilator):
    folder, model, emulator = binary
    words = _stimulus(emulator, model, 5000, seed=22)
    out = binary_verilator.run(words)
    assert np.count_nonzero(out != emulator.predict_words(words)) == 0
    built_at = binary_verilator.simulator.stat().st_mtime_ns
    again = VerilatorBDTSource(folder)
    again.write()  # same RTL written again: same content hash
    again.compile()
    assert again.simulator == binary_verilator.simulator
    assert again.simulator.stat().st_mtime_ns == built_at  # reused, not rebuilt
    with pytest.raises(ValueError, match="signed 16-bit range"):
        binary_verilator.run(np.full((1, N_FEATURES), 1 << 15))
    np.testing.assert_array_equal(binary_verilator.run(np.zeros((0, N_FEATURES), dtype=np.int64)),
                                  np.zeros((0, 1), dtype=np.int64))


@needs_ghdl
def test_yosys_synthesizes_the_simulated_verilog_with_conifers_latency(binary, binary_verilator, tmp_path):
    from l1flow.synthesis.yosys import YosysRunner

    folder, _, _ = binary
    job = binary_verilator.synthesis_job("yosys", "xcvu9p-flgb2104-2L-e", 5.0, 600)
    assert [p.as_posix() for p in job.rtl_files] == ["verilog/BDTTop.v"]
    report = YosysRunner().run(job, tmp_path / "synth")
    assert report.resources.lut is not None and report.resources.lut > 10
    assert report.resources.ff is not None and report.resources.ff > 16  # registered pipeline
    # 10 trees of depth 3: 1 + 3 + ceil(log2 10) clocks at II 1
    assert (report.latency_max_cycles, report.ii_max) == (8, 1)
    assert report.latency_max_ns == 40.0
    # the same forest written in another folder: no source paths in the Verilog, the same job
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("verilog", "ghdl_*", "*.cf", "verilator_build"))
    other = VerilatorBDTSource(copy)
    other.write()
    assert other.verilog_path.read_text() == binary_verilator.verilog_path.read_text()
    assert other.synthesis_job("yosys", "xcvu9p-flgb2104-2L-e", 5.0, 600).job_hash() == job.job_hash()


@needs_ghdl
def test_one_changed_constant_in_the_vhdl_is_caught_by_both_simulators(tmp_path):
    # a 3-class forest, so the same run also checks every class's word position
    model = _vhdl_project(tmp_path / "multi", "multi:softprob", trees=4, depth=2, seed=6, num_class=3)
    emulator = BDTEmulator(FirmwareForest.from_conifer(model))
    words = _stimulus(emulator, model, 400, seed=23)
    expected = emulator.predict_words(words)
    assert expected.shape == (len(words), 3)
    reached = _leaf_reached(emulator.forest, words)
    leaf = int(np.bincount(reached).argmax())
    _change_one_leaf_constant(tmp_path / "multi", leaf, delta=3)

    ghdl = GHDLSource(tmp_path / "multi")
    ghdl.compile()
    verilator = VerilatorBDTSource(tmp_path / "multi")
    verilator.compile()
    # exactly the events whose class-0 tree 0 reaches the changed leaf differ,
    # by exactly the change, in class 0 only
    hits = reached == leaf
    assert 0 < np.count_nonzero(hits) < len(words)
    for out in (ghdl.run(words), verilator.run(words)):
        np.testing.assert_array_equal(out[:, 1:], expected[:, 1:])
        np.testing.assert_array_equal(out[~hits, 0], expected[~hits, 0])
        np.testing.assert_array_equal(out[hits, 0] - expected[hits, 0], 3)


@needs_ghdl
def test_missing_ghdl_is_named(binary, monkeypatch, tmp_path):
    folder, _, _ = binary
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no tools at all
    with pytest.raises(ToolMissingError, match="'ghdl' was not found"):
        GHDLSource(folder).compile()
    with pytest.raises(ToolMissingError, match="'ghdl' was not found"):
        VerilatorBDTSource(folder).write()
