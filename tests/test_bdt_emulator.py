"""The fast BDT emulator against conifer's cpp backend (the reference), word for word."""

from __future__ import annotations

import numpy as np
import pytest

import l1flow  # noqa: F401  (toolchain environment)
from l1flow.firmware.bdt_emulator import BDTEmulator, export_vectors
from l1flow.firmware.conifer_project import convert_xgboost
from l1flow.firmware.fixed import FixedType, quantize
from l1flow.firmware.forest import FirmwareForest
from l1flow.firmware.vectors import VectorSet

xgb = pytest.importorskip("xgboost")

PART = "xcvu9p-flgb2104-2L-e"
N_FEATURES = 5


def _train(objective: str, trees: int, depth: int, seed: int, **extra) -> xgb.Booster:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 2, size=(3000, N_FEATURES))
    if objective.startswith("multi"):
        y = (np.digitize(x[:, 0] + x[:, 1] * x[:, 2], [-1.0, 1.0])).astype(int)
    elif objective.startswith("reg"):
        y = 40 * x[:, 0] + 25 * np.sign(x[:, 1]) * x[:, 2] ** 2
    else:
        y = (x[:, 0] + x[:, 1] ** 2 - x[:, 3] > 1).astype(int)
    params = {"max_depth": depth, "objective": objective, "eta": 0.4, "nthread": 1, **extra}
    return xgb.train(params, xgb.DMatrix(x, y), trees)


def _cpp(booster, folder, precision: str, score_precision: str | None = None):
    return convert_xgboost(
        booster, folder, backend="cpp", input_precision=precision, threshold_precision=precision,
        score_precision=score_precision or precision, part=PART, clock_period_ns=5.0,
    )


def _reference_words(model, x: np.ndarray) -> np.ndarray:
    """conifer cpp scores as words of its score type (its doubles are exact)."""
    y = np.asarray(model.decision_function(x), dtype=np.float64).reshape(len(x), -1)
    return quantize(y, FixedType.parse(model.config.score_precision))


def _events(rng: np.random.Generator, n: int, scale: float = 3.0) -> np.ndarray:
    x = rng.normal(0, scale, size=(n, N_FEATURES))
    x[: n // 20] *= 40  # far outside the input type: wrap or saturate
    return x


def _threshold_events(model, rng: np.random.Generator, lsb: float) -> np.ndarray:
    """For every split: the feature exactly on the threshold, and one LSB either side."""
    rows = []
    for per_tree in model.trees:
        for tree in per_tree:
            for feature, threshold in zip(tree.feature, tree.threshold):
                if feature < 0:
                    continue
                for delta in (0.0, -lsb, lsb):
                    row = rng.normal(0, 2, size=N_FEATURES)
                    row[feature] = threshold + delta
                    rows.append(row)
    return np.array(rows)


@pytest.fixture(scope="module")
def binary(tmp_path_factory):
    booster = _train("binary:logistic", trees=12, depth=3, seed=1)
    return _cpp(booster, tmp_path_factory.mktemp("bdt") / "binary", "ap_fixed<16,6>")


@pytest.fixture(scope="module")
def saturating(tmp_path_factory):
    # rounding, saturating types that are too narrow on purpose: inputs hit the
    # rails and the running score saturates part-way through the trees
    booster = _train("reg:squarederror", trees=10, depth=3, seed=2, base_score=0.0)
    return _cpp(booster, tmp_path_factory.mktemp("bdt") / "saturating",
                "ap_fixed<12,4,AP_RND,AP_SAT>", "ap_fixed<12,7,AP_RND_CONV,AP_SAT>")


@pytest.fixture(scope="module")
def multiclass(tmp_path_factory):
    booster = _train("multi:softprob", trees=6, depth=2, seed=3, num_class=3)
    return _cpp(booster, tmp_path_factory.mktemp("bdt") / "multiclass", "ap_fixed<14,5>")


@pytest.fixture(scope="module")
def int_features(tmp_path_factory):
    """ap_int<10> features and thresholds (issue 13: 20,308 of 30,000 events were wrong)."""
    booster = _train("binary:logistic", trees=8, depth=3, seed=4)
    return _cpp(booster, tmp_path_factory.mktemp("bdt") / "int_features", "ap_int<10>", "ap_fixed<18,8>")


def _integer_feature_events(model, rng: np.random.Generator, n: int) -> np.ndarray:
    """Real features for ap_int<10>: spread, near zero, halves, thresholds +-0.3/0.5/1, rails and wraps."""
    x = rng.normal(0, 2, size=(n, N_FEATURES))
    x[: n // 5] = rng.uniform(-3, 3, size=(n // 5, N_FEATURES))
    x[n // 5 : 2 * n // 5] = rng.integers(-12, 12, size=(n // 5, N_FEATURES)) / 2.0
    picks = np.array([-0.3, -2.5, -0.5, -0.49, 511.0, 511.9, 512.0, -512.0, -512.7, -513.0, 600.0, -1e4])
    x[2 * n // 5 : n // 2] = rng.choice(picks, size=(n // 2 - 2 * n // 5, N_FEATURES))
    near = _threshold_events(model, rng, 1.0)
    for delta in (0.3, -0.3, 0.5, -0.5):
        near = np.concatenate([near, _threshold_events(model, rng, 0.0) + delta * (rng.random(N_FEATURES) < 0.5)])
    x[n // 2 : n // 2 + len(near)] = near
    return x


@pytest.mark.slow
def test_integer_features_match_conifer_cpp(int_features, tmp_path):
    rng = np.random.default_rng(16)
    x = _integer_feature_events(int_features, rng, 30_000)
    forest = FirmwareForest.from_conifer(int_features)
    assert str(forest.input_type) == "ap_int<10>" and forest.input_type.is_int
    emulator = BDTEmulator(forest)
    in_words = emulator.quantize_inputs(x)
    words = emulator.predict_words(in_words)
    reference = _reference_words(int_features, x)
    assert words.shape == reference.shape == (30_000, 1)
    assert np.count_nonzero(words != reference) == 0
    assert len(np.unique(words)) > 20
    # negative non-integer thresholds truncate (or, above -0.5, become +1) instead of flooring
    thresholds = np.concatenate([np.asarray(t.threshold)[np.asarray(t.feature) >= 0]
                                 for per_tree in int_features.trees for t in per_tree])
    assert np.count_nonzero(np.trunc(thresholds) != np.floor(thresholds)) > 5
    # the comparison can fail: flooring inputs and thresholds (ap_fixed<10,10>) instead of truncating
    floored = FirmwareForest.from_conifer(int_features)
    floored_t = forest.input_type.with_modes()
    floored_trees = tuple(
        tuple(type(t)(t.feature, np.where(t.feature >= 0, quantize(np.asarray(src.threshold), floored_t), 0),
                      t.children_left, t.children_right, t.value)
              for t, src in zip(per_tree, per_src))
        for per_tree, per_src in zip(floored.trees, int_features.trees)
    )
    floored = FirmwareForest(**{**forest.__dict__, "trees": floored_trees, "input_type": floored_t,
                                "threshold_type": floored_t})
    floored_emulator = BDTEmulator(floored)
    wrong = floored_emulator.predict_words(floored_emulator.quantize_inputs(x)) != reference
    assert np.count_nonzero(wrong) > 3000
    # integer ports travel as their values in the test vectors
    export_vectors(forest, in_words, words, {"name": "bdt-int"}, tmp_path / "vec")
    loaded = VectorSet.load(tmp_path / "vec")
    assert [p.type for p in loaded.inputs] == ["ap_int<10>"]
    np.testing.assert_array_equal(loaded.input_words, in_words)
    assert in_words.min() >= -512 and in_words.max() <= 511 and np.count_nonzero(in_words == 1) > 100


@pytest.mark.slow
def test_binary_matches_conifer_cpp_word_for_word(binary):
    rng = np.random.default_rng(10)
    x = _events(rng, 4000)
    emulator = BDTEmulator(FirmwareForest.from_conifer(binary))
    words = emulator.predict_words(emulator.quantize_inputs(x))
    reference = _reference_words(binary, x)
    assert words.shape == reference.shape == (4000, 1)
    assert np.count_nonzero(words != reference) == 0
    # the scores are spread out, not a constant that would match trivially
    assert len(np.unique(words)) > 50
    np.testing.assert_array_equal(emulator.predict(x), binary.decision_function(x).reshape(-1, 1))


@pytest.mark.slow
def test_inputs_on_split_thresholds_follow_the_strict_less_than(binary):
    rng = np.random.default_rng(11)
    lsb = 2.0**-10
    x = _threshold_events(binary, rng, lsb)
    assert len(x) >= 3 * 12 * 3  # every split of every tree, three ways
    forest = FirmwareForest.from_conifer(binary)
    emulator = BDTEmulator(forest)
    words = emulator.predict_words(emulator.quantize_inputs(x))
    assert np.count_nonzero(words != _reference_words(binary, x)) == 0
    # the comparison direction matters on exactly these events: "<=" differs
    flipped = BDTEmulator(FirmwareForest(**{**forest.__dict__, "splitting_convention": "<="}))
    assert np.count_nonzero(flipped.predict_words(emulator.quantize_inputs(x)) != words) > 0


@pytest.mark.slow
def test_saturating_types_match_conifer_step_by_step(saturating):
    rng = np.random.default_rng(12)
    x = _events(rng, 3000, scale=4.0)
    forest = FirmwareForest.from_conifer(saturating)
    emulator = BDTEmulator(forest)
    in_words = emulator.quantize_inputs(x)
    t = forest.input_type
    assert np.count_nonzero(in_words == t.max_word) > 0 and np.count_nonzero(in_words == t.min_word) > 0
    words = emulator.predict_words(in_words)
    reference = _reference_words(saturating, x)
    assert np.count_nonzero(words != reference) == 0
    s = forest.score_type
    assert np.count_nonzero(reference == s.max_word) + np.count_nonzero(reference == s.min_word) > 0
    # saturating once at the end of an exact sum differs: every step must saturate
    wide = FixedType(40, 40 - s.frac, True, s.rounding, "SAT")
    exact = BDTEmulator(FirmwareForest(**{**forest.__dict__, "sum_type": wide})).predict_words(in_words)
    assert np.count_nonzero(np.clip(exact, s.min_word, s.max_word) != reference) > 0


@pytest.mark.slow
def test_multiclass_matches_conifer_cpp(multiclass):
    rng = np.random.default_rng(13)
    x = np.concatenate([_events(rng, 2000), _threshold_events(multiclass, rng, 2.0**-9)])
    forest = FirmwareForest.from_conifer(multiclass)
    assert forest.n_outputs == 3
    emulator = BDTEmulator(forest)
    words = emulator.predict_words(emulator.quantize_inputs(x))
    assert words.shape == (len(x), 3)
    assert np.count_nonzero(words != _reference_words(multiclass, x)) == 0


@pytest.mark.slow
def test_one_changed_leaf_word_is_caught(binary):
    rng = np.random.default_rng(14)
    x = _events(rng, 2000)
    forest = FirmwareForest.from_conifer(binary)
    emulator = BDTEmulator(forest)
    in_words = emulator.quantize_inputs(x)
    good = emulator.predict_words(in_words)
    tree = forest.trees[0][0]
    leaf = int(np.flatnonzero(tree.feature == -2)[0])
    value = tree.value.copy()
    value[leaf] += 1
    bad_tree = type(tree)(tree.feature, tree.threshold, tree.children_left, tree.children_right, value)
    bad_forest = FirmwareForest(**{**forest.__dict__, "trees": ((bad_tree,),) + forest.trees[1:]})
    differing = np.count_nonzero(BDTEmulator(bad_forest).predict_words(in_words) != good)
    reached = np.count_nonzero(_leaf_of_tree(tree, in_words) == leaf)
    assert differing == reached > 0
    assert bad_forest.content_hash() != forest.content_hash()


def _leaf_of_tree(tree, words: np.ndarray) -> np.ndarray:
    node = np.zeros(len(words), dtype=np.int64)
    for _ in range(16):
        split = tree.feature[node] != -2
        go_left = words[np.arange(len(words)), np.maximum(tree.feature[node], 0)] < tree.threshold[node]
        node = np.where(split, np.where(go_left, tree.children_left[node], tree.children_right[node]), node)
    return node


@pytest.mark.slow
def test_export_vectors_roundtrip(binary, tmp_path):
    rng = np.random.default_rng(15)
    forest = FirmwareForest.from_conifer(binary)
    emulator = BDTEmulator(forest)
    in_words = emulator.quantize_inputs(_events(rng, 500))
    out_words = emulator.predict_words(in_words)
    saved = export_vectors(forest, in_words, out_words, {"name": "bdt-test", "version": "3"}, tmp_path / "vec")
    loaded = VectorSet.load(tmp_path / "vec")
    np.testing.assert_array_equal(loaded.input_words, in_words)
    np.testing.assert_array_equal(loaded.output_words, out_words)
    assert [(p.name, p.type, p.shape) for p in loaded.inputs] == [("x", "ap_fixed<16,6>", (N_FEATURES,))]
    assert [(p.name, p.type, p.shape) for p in loaded.outputs] == [("score", "ap_fixed<16,6>", (1,))]
    assert loaded.model["forest_hash"] == forest.content_hash()
    assert loaded.model["version"] == "3"
    assert loaded.content_hash == saved.content_hash != ""
    with pytest.raises(ValueError, match="input words"):
        export_vectors(forest, in_words + (1 << 20), out_words, {}, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_bad_inputs_are_refused_clearly(binary):
    emulator = BDTEmulator(FirmwareForest.from_conifer(binary))
    with pytest.raises(ValueError, match=r"\(events, 5\)"):
        emulator.predict_words(np.zeros((3, 4), dtype=np.int64))
    with pytest.raises(ValueError, match="ap_fixed<16,6>"):
        emulator.predict_words(np.full((2, N_FEATURES), 1 << 15, dtype=np.int64))
    with pytest.raises(ValueError, match=r"\(events, 5\)"):
        emulator.quantize_inputs(np.zeros(5))
