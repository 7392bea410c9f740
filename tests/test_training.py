"""Training: input scaling, the five model kinds, determinism, save/load, warm start."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from l1flow.conditions.payload import ConditionsPayload
from l1flow.data.generator import generate_events
from l1flow.data.sample import EventSample
from l1flow.training import networks
from l1flow.training.metrics import roc_auc
from l1flow.training.model import ModelFileError, TrainedModel
from l1flow.training.preprocessing import PowerOfTwoScaling, object_feature_groups
from l1flow.training.specs import (
    BDTClassifierSpec,
    BDTStudentSpec,
    CicadaSpec,
    DenseAESpec,
    DenseLayerSpec,
    QuantizerSpec,
    VAEEncoderSpec,
)
from l1flow.training.train import TrainingError, train_model

SMALL_AE = dict(encoder=[DenseLayerSpec(units=16), DenseLayerSpec(units=8)], latent=DenseLayerSpec(units=3),
                batch_size=256, epochs=2)


@pytest.fixture(scope="module")
def train_sample() -> EventSample:
    return generate_events(ConditionsPayload(), 4000, 300, seed=11)


@pytest.fixture(scope="module")
def validation_sample() -> EventSample:
    return generate_events(ConditionsPayload(), 2000, 300, seed=12)


@pytest.fixture(scope="module")
def ae(train_sample: EventSample, validation_sample: EventSample) -> TrainedModel:
    return train_model(DenseAESpec(name="ae", **SMALL_AE), train_sample, validation_sample, seed=1)


# -- input scaling ------------------------------------------------------------------


def test_scaling_words_are_hardware_integers_shifted() -> None:
    hw = np.array([[4095, -128, 71], [1, 127, -72], [0, 0, 0]], dtype=np.int64)
    q = QuantizerSpec(bits=12, integer=6)  # 5 fractional bits
    scaling = PowerOfTwoScaling(groups=("pt", "eta", "phi"), shifts={"pt": 7, "eta": 1, "phi": 0}, quantizer=q)
    words = scaling.words(hw)
    # pt: shift 7 > 5 fractional bits -> 2 low bits dropped (floor); eta: word = hw * 2**(5-1); phi: hw * 2**5
    assert words[:, 0].tolist() == [4095 >> 2, 0, 0]
    assert words[:, 1].tolist() == [-128 * 16, 127 * 16, 0]
    assert words[:, 2].tolist() == [71 * 32 if 71 * 32 < 2047 else 2047, -72 * 32 if -72 * 32 >= -2048 else -2048, 0]
    values = scaling.apply(hw)
    assert np.array_equal(values * 2**5, words)  # exactly representable


def test_scaling_fit_gives_unit_scale_fits_the_range_and_saturates_beyond() -> None:
    rng = np.random.default_rng(0)
    hw = np.c_[rng.integers(0, 2048, 500), rng.integers(-100, 100, 500), rng.integers(-72, 72, 500)].astype(np.int64)
    q = QuantizerSpec(bits=16, integer=4)
    scaling = PowerOfTwoScaling.fit(hw, ("pt", "eta", "phi"), q)
    values = scaling.apply(hw)
    rms = np.sqrt(np.mean(values**2, axis=0))
    assert np.all((rms > 2**-0.5) & (rms < 2**0.5)), rms  # each type at about unit scale
    assert np.abs(values).max() < 2**4
    narrow = PowerOfTwoScaling.fit(hw, ("pt", "eta", "phi"), QuantizerSpec(bits=16, integer=0))
    assert narrow.shifts["pt"] == 11  # 2047 needs 11 bits; none above the point
    assert np.abs(narrow.apply(hw)).max() < 1.0
    saturating = PowerOfTwoScaling.fit(hw, ("pt", "eta", "phi"), QuantizerSpec(bits=10, integer=1), saturate=True)
    assert saturating.shifts == {g: int(np.rint(np.log2(r))) for g, r in zip(
        ("pt", "eta", "phi"), np.sqrt(np.mean(hw.astype(float) ** 2, axis=0)))}  # unit scale only
    clipped = saturating.apply(hw)
    assert clipped.max() == 2**1 - 2**-8 and (clipped == clipped.max()).sum() > 0  # the hardest pT saturate
    beyond = scaling.apply(np.array([[10**6, 0, 0]], dtype=np.int64))
    assert beyond[0, 0] == 2**4 - 2**-q.fractional  # saturated at the type's maximum
    assert PowerOfTwoScaling.from_dict(json.loads(json.dumps(scaling.to_dict()))) == scaling


def test_scaling_refuses_floats() -> None:
    with pytest.raises(TypeError, match="hardware units"):
        PowerOfTwoScaling.fit(np.zeros((3, 3)), ("pt", "eta", "phi"), QuantizerSpec())


# -- autoencoder --------------------------------------------------------------------


def test_masked_mse_ignores_padded_objects() -> None:
    groups = object_feature_groups(6)
    presence = networks.presence_source_columns(groups)
    inputs = np.array([[2.0, 1.0, -1.0, 0.0, 0.0, 0.0]])  # second object padded
    outputs = np.array([[1.0, 1.0, -1.0, 5.0, 5.0, 5.0]])
    assert networks.masked_mse_numpy(inputs, outputs, presence)[0] == pytest.approx(1.0 / 3.0)
    import tensorflow as tf

    loss = networks.masked_mse_loss(presence)(tf.constant(inputs, tf.float32), tf.constant(outputs, tf.float32))
    assert float(loss[0]) == pytest.approx(1.0 / 3.0)


def test_ae_firmware_inputs_are_exact_and_scores_separate_signals(ae: TrainedModel,
                                                                  validation_sample: EventSample) -> None:
    assert ae.framework == "qkeras"
    x = ae.firmware_inputs(validation_sample)
    f = ae.preprocessing.quantizer.fractional
    assert np.array_equal(x * 2**f, np.round(x * 2**f))
    # the QActivation on the input leaves these values unchanged
    import tensorflow as tf

    first = tf.keras.Model(ae.firmware_model.input, ae.firmware_model.get_layer("input_quant").output)
    assert np.array_equal(first.predict(x.astype(np.float32), verbose=0), x.astype(np.float32))
    scores = ae.score(validation_sample)
    assert scores.shape == (len(validation_sample),) and scores.dtype == np.float64
    background = scores[validation_sample.labels == 0]
    four_leptons = scores[validation_sample.class_mask("four_leptons")]
    assert roc_auc(background, four_leptons) > 0.6
    assert set(ae.history) == {"loss", "val_loss"} and len(ae.history["loss"]) == 2


def test_ae_score_from_firmware_outputs_matches_score(ae: TrainedModel, validation_sample: EventSample) -> None:
    x = ae.firmware_inputs(validation_sample)
    out = ae.software_outputs(x)
    assert np.array_equal(ae.score_from_firmware_outputs(x, out), ae.score(validation_sample))
    nudged = out.copy()
    nudged[0, 0] += 1.0
    assert ae.score_from_firmware_outputs(x, nudged)[0] != ae.score(validation_sample)[0]


def test_same_seed_same_weights_other_seed_other_weights(ae: TrainedModel, train_sample: EventSample,
                                                         validation_sample: EventSample) -> None:
    again = train_model(DenseAESpec(name="ae", **SMALL_AE), train_sample, validation_sample, seed=1)
    assert again.weights_hash() == ae.weights_hash()
    other = train_model(DenseAESpec(name="ae", **SMALL_AE), train_sample, validation_sample, seed=2)
    assert other.weights_hash() != ae.weights_hash()
    # the spec's own seed overrides the pipeline seed
    pinned = train_model(DenseAESpec(name="ae", seed=1, **SMALL_AE), train_sample, validation_sample, seed=2)
    assert pinned.weights_hash() == ae.weights_hash()


def test_save_load_roundtrip_and_tamper_detection(ae: TrainedModel, validation_sample: EventSample,
                                                  tmp_path: Path) -> None:
    folder = ae.save(tmp_path / "ae")
    assert sorted(p.name for p in folder.iterdir()) == ["model.json", "weights.npz"]
    loaded = TrainedModel.load(folder)
    assert loaded.weights_hash() == ae.weights_hash()
    assert np.array_equal(loaded.score(validation_sample), ae.score(validation_sample))
    assert loaded.history == ae.history and loaded.preprocessing == ae.preprocessing
    ae.save(folder)  # overwriting an existing model folder works and leaves no temporary folders
    assert [p.name for p in tmp_path.iterdir()] == ["ae"]
    document = json.loads((folder / "model.json").read_text())
    document["weights_sha256"] = "0" * 64
    (folder / "model.json").write_text(json.dumps(document))
    with pytest.raises(ModelFileError, match="do not match the hash"):
        TrainedModel.load(folder)
    with pytest.raises(ModelFileError, match="no model.json"):
        TrainedModel.load(tmp_path / "missing")


def test_truncated_weights_file_names_the_file(ae: TrainedModel, tmp_path: Path, capsys) -> None:
    from l1flow.cli.main import main

    folder = ae.save(tmp_path / "ae")
    weights = folder / "weights.npz"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ModelFileError, match=r"weights\.npz: truncated or damaged weights file .*train it again"):
        TrainedModel.load(folder)
    assert main(["model-info", str(folder)]) == 2
    err = capsys.readouterr().err
    assert str(weights) in err and "truncated" in err and "Traceback" not in err


def test_warm_start_continues_from_production(ae: TrainedModel, train_sample: EventSample,
                                              validation_sample: EventSample, tmp_path: Path) -> None:
    production = ae.save(tmp_path / "production")
    spec = DenseAESpec(name="ae", warm_start=True, **{**SMALL_AE, "epochs": 1})
    warm = train_model(spec, train_sample, validation_sample, seed=3, warm_start_from=production)
    cold = train_model(spec.model_copy(update={"warm_start": False}), train_sample, validation_sample, seed=3,
                       warm_start_from=production)
    assert warm.metadata["warm_started_from"] == str(production)
    assert cold.metadata["warm_started_from"] is None
    # one more epoch from the production weights beats one epoch from scratch
    assert warm.history["val_loss"][0] < cold.history["val_loss"][0]
    assert warm.history["val_loss"][0] <= ae.history["val_loss"][-1] * 1.05
    wider = DenseAESpec(name="ae", warm_start=True, **{**SMALL_AE, "encoder": [DenseLayerSpec(units=20)]})
    with pytest.raises(TrainingError, match="different architecture"):
        train_model(wider, train_sample, validation_sample, seed=3, warm_start_from=production)


# -- VAE and CICADA -----------------------------------------------------------------


def test_vae_encoder_scores_sum_of_mu_squared(train_sample: EventSample, validation_sample: EventSample,
                                              tmp_path: Path) -> None:
    spec = VAEEncoderSpec(name="vae", encoder=[DenseLayerSpec(units=16)], latent_dim=2, batch_size=256, epochs=2)
    vae = train_model(spec, train_sample, validation_sample, seed=1)
    assert vae.firmware_model.output_shape == (None, 2)
    x = vae.firmware_inputs(validation_sample)
    mu = vae.software_outputs(x)
    assert np.allclose(vae.score(validation_sample), (mu**2).sum(axis=1))
    loaded = TrainedModel.load(vae.save(tmp_path / "vae"))
    assert loaded.weights_hash() == vae.weights_hash()
    assert np.array_equal(loaded.score(validation_sample), vae.score(validation_sample))


def test_cicada_student_regresses_teacher(train_sample: EventSample, validation_sample: EventSample) -> None:
    from l1flow.training.train import cicada_teacher_log_score

    spec = CicadaSpec(name="cicada", student=[DenseLayerSpec(units=8)], batch_size=128, epochs=12, teacher_epochs=2,
                      optimizer={"learning_rate": 0.005})
    model = train_model(spec, train_sample, validation_sample, seed=1)
    x = model.firmware_inputs(validation_sample)
    assert x.shape == (len(validation_sample), 252)
    target = cicada_teacher_log_score(model, x)
    predicted = model.score(validation_sample)
    assert np.corrcoef(target, predicted)[0, 1] > 0.5
    assert {"loss", "val_loss", "teacher_loss", "teacher_val_loss"} <= set(model.history)
    no_regions = EventSample(objects=validation_sample.objects, labels=validation_sample.labels,
                             classes=validation_sample.classes)
    with pytest.raises(ValueError, match="no regions"):
        model.score(no_regions)


# -- BDTs ---------------------------------------------------------------------------


def test_bdt_classifier_margin_and_determinism(train_sample: EventSample, validation_sample: EventSample,
                                               tmp_path: Path) -> None:
    spec = BDTClassifierSpec(name="bdt", n_trees=20, max_depth=3)
    bdt = train_model(spec, train_sample, validation_sample, seed=4)
    assert bdt.framework == "xgboost" and bdt.firmware_model.num_boosted_rounds() == 20
    x = bdt.firmware_inputs(validation_sample)
    assert np.array_equal(x, validation_sample.hardware_features())  # the integers themselves
    scores = bdt.score(validation_sample)
    probability = bdt.firmware_model.predict(__import__("xgboost").DMatrix(x.astype(np.float32)))
    assert np.allclose(1 / (1 + np.exp(-scores)), probability, atol=1e-6)
    assert roc_auc(scores[validation_sample.labels == 0], scores[validation_sample.labels != 0]) > 0.8
    assert train_model(spec, train_sample, validation_sample, seed=4).weights_hash() == bdt.weights_hash()
    loaded = TrainedModel.load(bdt.save(tmp_path / "bdt"))
    assert np.array_equal(loaded.score(validation_sample), scores)
    cut = bdt.save(tmp_path / "cut") / "booster.json"
    cut.write_bytes(cut.read_bytes()[:1000])
    with pytest.raises(ModelFileError, match=r"booster\.json: truncated or damaged booster file"):
        TrainedModel.load(tmp_path / "cut")
    # warm start keeps the trees (firmware size) and refits their leaves
    warm = train_model(spec.model_copy(update={"warm_start": True}), validation_sample, train_sample, seed=4,
                       warm_start_from=tmp_path / "bdt")
    assert warm.firmware_model.num_boosted_rounds() == 20
    assert warm.weights_hash() != bdt.weights_hash()
    background_only = train_sample.select(train_sample.labels == 0)
    with pytest.raises(TrainingError, match="needs both background and signal"):
        train_model(spec, background_only, validation_sample, seed=4)


def test_bdt_student_regresses_the_autoencoder(ae: TrainedModel, train_sample: EventSample,
                                               validation_sample: EventSample) -> None:
    from l1flow.training.train import teacher_log_score

    spec = BDTStudentSpec(name="student", teacher="ae", n_trees=30, max_depth=4)
    with pytest.raises(TrainingError, match="train that model first"):
        train_model(spec, train_sample, validation_sample, seed=1)
    student = train_model(spec, train_sample, validation_sample, seed=1, teacher=ae)
    target = teacher_log_score(ae, validation_sample)
    assert np.corrcoef(target, student.score(validation_sample))[0, 1] > 0.7
    assert student.metadata["teacher_weights_sha256"] == ae.weights_hash()


def test_cli_model_info_prints_the_weights_hash(ae: TrainedModel, tmp_path: Path, capsys) -> None:
    from l1flow.cli.main import main

    folder = ae.save(tmp_path / "ae")
    assert main(["model-info", str(folder)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["weights_sha256"] == ae.weights_hash() and shown["kind"] == "dense_ae"
    assert main(["model-info", str(tmp_path / "absent")]) == 2
    assert "no model.json" in capsys.readouterr().err
