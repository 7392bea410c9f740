"""Making conifer BDT projects: settings checked up front, nothing half-written."""

from __future__ import annotations

import numpy as np
import pytest

import l1flow  # noqa: F401  (toolchain environment)
from l1flow.firmware.conifer_project import ConiferProjectError, convert_xgboost
from l1flow.hardware.ghdl import read_conifer_vhdl_project

xgb = pytest.importorskip("xgboost")

PART = "xcvu9p-flgb2104-2L-e"


@pytest.fixture(scope="module")
def booster():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 4))
    return xgb.train({"max_depth": 2, "objective": "binary:logistic", "nthread": 1},
                     xgb.DMatrix(x, (x[:, 0] > x[:, 1]).astype(int)), 3)


def _convert(booster, folder, backend="cpp", precision="ap_fixed<16,6>", **overrides):
    settings = dict(input_precision=precision, threshold_precision=precision, score_precision=precision,
                    part=PART, clock_period_ns=5.0)
    settings.update(overrides)
    return convert_xgboost(booster, folder, backend=backend, **settings)


@pytest.mark.parametrize(
    ("backend", "overrides", "message"),
    [
        ("verilog", {}, "choose one of cpp, vhdl, xilinxhls"),
        ("cpp", {"input_precision": "fixed<16,6>", "threshold_precision": "fixed<16,6>"}, "not an ap_ type"),
        ("cpp", {"score_precision": "ap_fixed<16;6>"}, "score_precision"),
        ("cpp", {"threshold_precision": "ap_fixed<18,8>"}, "input_precision == threshold_precision"),
        ("vhdl", {"score_precision": "ap_fixed<18,8>"}, "one type for inputs, thresholds and scores"),
        ("vhdl", {"input_precision": "ap_ufixed<16,6>", "threshold_precision": "ap_ufixed<16,6>",
                  "score_precision": "ap_ufixed<16,6>"}, "unsigned"),
        ("cpp", {"clock_period_ns": 0.0}, "clock_period_ns"),
        ("cpp", {"project_name": "my prj"}, "identifier"),
    ],
)
def test_bad_settings_are_refused_before_anything_is_written(booster, tmp_path, backend, overrides, message):
    with pytest.raises(ConiferProjectError, match=message):
        _convert(booster, tmp_path / "prj", backend=backend, **overrides)
    assert list(tmp_path.iterdir()) == []


def test_a_non_xgboost_model_is_refused(tmp_path):
    with pytest.raises(ConiferProjectError, match="expected an xgboost Booster"):
        _convert({"trees": []}, tmp_path / "prj")


@pytest.mark.slow
def test_failed_compile_leaves_nothing_behind(booster, tmp_path):
    # a spelling the checks accept but the ap_fixed headers do not
    with pytest.raises(ConiferProjectError, match="could not convert or compile"):
        _convert(booster, tmp_path / "prj", precision="ap_fixed<16,6,AP_NOSUCHMODE>")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_vhdl_project_is_written_analysed_and_replaces_the_folder(booster, tmp_path):
    folder = tmp_path / "prj"
    folder.mkdir()
    (folder / "stale.txt").write_text("from an earlier project")
    model = _convert(booster, folder, backend="vhdl", precision="ap_fixed<12,4>", project_name="bdt_a")
    assert model.config.output_dir == str(folder.resolve())
    project = read_conifer_vhdl_project(folder)
    assert (project.n_features, project.n_classes, project.word_width, project.n_trees) == (4, 1, 12, 3)
    assert (folder / "bdt_a.json").exists()
    assert not (folder / "stale.txt").exists()  # replaced whole, not merged
    assert not list(folder.glob(".fp_converter_*"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prj"]  # no staging folders left
