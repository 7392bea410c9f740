"""Train one model from its spec: from scratch or warm-started from production.

Determinism: the same training sample, spec and seed give identical weights.
Python's, NumPy's and TensorFlow's seeds are set and TensorFlow's op
determinism is switched on before anything is built; xgboost gets the seed and
a fixed thread count (its ``hist`` method is deterministic for a given one).

Unsupervised models (autoencoders, VAE, CICADA pair, BDT student) train on the
background events of the sample only; the BDT classifier needs both.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
import xgboost as xgb

from l1flow.data.layout import REGION_SHAPE
from l1flow.data.sample import EventSample
from l1flow.errors import BadInputError
from l1flow.training import networks
from l1flow.training.model import ModelFileError, TrainedModel, build_networks, region_grid
from l1flow.training.preprocessing import PowerOfTwoScaling, object_feature_groups
from l1flow.training.specs import (
    BDTClassifierSpec,
    BDTStudentSpec,
    CicadaSpec,
    DenseAESpec,
    QuantizerSpec,
    VAEEncoderSpec,
)

# Floor of a teacher score before its log: the MSE of a perfect reconstruction is 0.
_LOG_FLOOR = 2.0**-24


class TrainingError(BadInputError):
    """A model cannot be trained from the given spec, samples or starting point."""


def train_model(
    spec: Any,
    train: EventSample,
    validation: EventSample,
    *,
    seed: int,
    warm_start_from: Path | None = None,
    teacher: TrainedModel | None = None,
) -> TrainedModel:
    """Train the model ``spec`` describes.

    ``seed`` is the pipeline seed; ``spec.seed`` overrides it. When
    ``spec.warm_start`` is true and ``warm_start_from`` names a saved model
    (the current production version), training continues from its weights
    and keeps its input scaling; otherwise it starts from scratch.
    ``teacher`` is the trained autoencoder a ``bdt_student`` regresses.
    """
    seed = spec.seed if spec.seed is not None else seed
    _seed_everything(seed)
    start = None
    if spec.warm_start and warm_start_from is not None:
        start = _load_start(spec, Path(warm_start_from))
    began = time.perf_counter()
    if isinstance(spec, (DenseAESpec, VAEEncoderSpec, CicadaSpec)):
        model = _train_network(spec, train, validation, start)
    elif isinstance(spec, BDTClassifierSpec):
        model = _train_classifier(spec, train, validation, seed, start)
    elif isinstance(spec, BDTStudentSpec):
        if teacher is None:
            raise TrainingError(
                f"model {spec.name!r} (bdt_student) regresses the score of model {spec.teacher!r}; "
                "train that model first and pass it as teacher="
            )
        model = _train_student_bdt(spec, train, validation, seed, start, teacher)
    else:
        raise TrainingError(f"model {getattr(spec, 'name', '?')!r}: unknown kind {getattr(spec, 'kind', '?')!r}")
    model.train_seconds = time.perf_counter() - began
    model.metadata.update(
        {
            "seed": seed,
            "train_events": len(train),
            "validation_events": len(validation),
            "warm_started_from": str(warm_start_from) if start is not None else None,
        }
    )
    return model


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    tf.keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def _load_start(spec: Any, folder: Path) -> TrainedModel:
    try:
        start = TrainedModel.load(folder)
    except ModelFileError as exc:
        raise TrainingError(f"model {spec.name!r}: cannot warm-start from {folder}: {exc}") from exc
    if start.kind != spec.kind:
        raise TrainingError(
            f"model {spec.name!r}: cannot warm-start a {spec.kind} from {folder}, which holds a {start.kind}"
        )
    return start


def _background(sample: EventSample, spec: Any, role: str) -> EventSample:
    background = sample.select(~sample.is_signal())
    if len(background) == 0:
        raise TrainingError(f"model {spec.name!r}: the {role} sample has no background events to train on")
    return background


# -- neural networks ------------------------------------------------------------


def _scaling(spec: Any, hardware: np.ndarray, start: TrainedModel | None) -> PowerOfTwoScaling:
    if start is not None:
        if start.preprocessing.quantizer != spec.input_quantizer:
            raise TrainingError(
                f"model {spec.name!r}: input_quantizer {spec.input_quantizer} differs from the production "
                f"model's {start.preprocessing.quantizer}; train from scratch (warm_start: false) to change it"
            )
        return start.preprocessing
    groups = ("et",) * hardware.shape[1] if isinstance(spec, CicadaSpec) else object_feature_groups(hardware.shape[1])
    return PowerOfTwoScaling.fit(hardware, groups, spec.input_quantizer, saturate=spec.saturate_inputs)


def _adopt_weights(spec: Any, target: dict[str, tf.keras.Model], start: TrainedModel) -> None:
    source = {"firmware": start.firmware_model, **start.companions}
    for key, model in target.items():
        weights = source[key].get_weights()
        if [w.shape for w in weights] != [w.shape for w in model.get_weights()]:
            raise TrainingError(
                f"model {spec.name!r}: the production model's {key} network has a different architecture; "
                "train from scratch (warm_start: false) after changing layers"
            )
        model.set_weights(weights)


def _fit(model: tf.keras.Model, spec: Any, x: np.ndarray, y: np.ndarray, validation: tuple[np.ndarray, np.ndarray],
         epochs: int) -> dict[str, list[float]]:
    result = model.fit(
        x.astype(np.float32),
        y.astype(np.float32),
        batch_size=spec.batch_size,
        epochs=epochs,
        shuffle=True,
        validation_data=(validation[0].astype(np.float32), validation[1].astype(np.float32)),
        verbose=0,
    )
    return {k: [float(v) for v in vs] for k, vs in result.history.items()}


def _train_network(spec: Any, train: EventSample, validation: EventSample, start: TrainedModel | None) -> TrainedModel:
    train_bg = _background(train, spec, "training")
    val_bg = _background(validation, spec, "validation")
    if isinstance(spec, CicadaSpec):
        hw_train, hw_val = region_grid(train_bg, spec.name), region_grid(val_bg, spec.name)
        metadata: dict[str, Any] = {"grid": list(REGION_SHAPE)}
    else:
        hw_train, hw_val = train_bg.hardware_features(), val_bg.hardware_features()
        metadata = {}
    scaling = _scaling(spec, hw_train, start)
    firmware, companions = build_networks(spec, hw_train.shape[1], metadata)
    if start is not None:
        _adopt_weights(spec, {"firmware": firmware, **companions}, start)
    x_train, x_val = scaling.apply(hw_train), scaling.apply(hw_val)
    model = TrainedModel(spec=spec, firmware_model=firmware, preprocessing=scaling, companions=companions,
                         metadata=metadata)
    if isinstance(spec, DenseAESpec):
        presence = networks.presence_source_columns(scaling.groups)
        firmware.compile(optimizer=networks.optimizer(spec.optimizer), loss=networks.masked_mse_loss(presence))
        model.history = _fit(firmware, spec, x_train, x_train, (x_val, x_val), spec.epochs)
    elif isinstance(spec, VAEEncoderSpec):
        presence = networks.presence_source_columns(scaling.groups)
        vae = companions["vae"]
        vae.compile(optimizer=networks.optimizer(spec.optimizer), loss=networks.masked_mse_loss(presence))
        model.history = _fit(vae, spec, x_train, x_train, (x_val, x_val), spec.epochs)
    else:
        model.history = _train_cicada_pair(spec, model, x_train, x_val, warm=start is not None)
    return model


def cicada_teacher_log_score(model: TrainedModel, inputs: np.ndarray) -> np.ndarray:
    """log(MSE) of the CICADA teacher's reconstruction of the (N, 252) scaled grid; float64 (N,)."""
    teacher = model.companions["teacher"]
    grid = inputs.reshape(len(inputs), *teacher.input_shape[1:3], 1).astype(np.float32)
    reco = teacher.predict(grid, batch_size=16384, verbose=0)
    mse = np.mean((grid.astype(np.float64) - reco) ** 2, axis=(1, 2, 3))
    return np.log(np.maximum(mse, _LOG_FLOOR))


def _train_cicada_pair(spec: CicadaSpec, model: TrainedModel, x_train: np.ndarray, x_val: np.ndarray,
                       warm: bool) -> dict[str, list[float]]:
    teacher = model.companions["teacher"]
    shape = (-1, *teacher.input_shape[1:3], 1)
    teacher.compile(optimizer=networks.optimizer(spec.optimizer), loss="mse")
    teacher_history = _fit(teacher, spec, x_train.reshape(shape), x_train.reshape(shape),
                           (x_val.reshape(shape), x_val.reshape(shape)), spec.teacher_epochs)
    target_train = cicada_teacher_log_score(model, x_train)
    target_val = cicada_teacher_log_score(model, x_val)
    student = model.firmware_model
    if not warm:
        # Start the output at the mean target so training fits the shape, not the offset.
        output = student.get_layer("score")
        kernel, bias = output.get_weights()
        output.set_weights([kernel, np.full_like(bias, np.mean(target_train))])
    student.compile(optimizer=networks.optimizer(spec.optimizer), loss="mse")
    history = _fit(student, spec, x_train, target_train, (x_val, target_val), spec.epochs)
    history.update({f"teacher_{k}": v for k, v in teacher_history.items()})
    return history


# -- BDTs -------------------------------------------------------------------------


def _bdt_scaling(hardware: np.ndarray, start: TrainedModel | None) -> PowerOfTwoScaling:
    """BDT inputs are the hardware integers themselves (shift 0, no fractional bits)."""
    if start is not None:
        return start.preprocessing
    widest = max(1, int(np.abs(hardware).max(initial=0)).bit_length())
    quantizer = QuantizerSpec(bits=widest + 1, integer=widest)
    groups = object_feature_groups(hardware.shape[1])
    return PowerOfTwoScaling(groups=groups, shifts={g: 0 for g in dict.fromkeys(groups)}, quantizer=quantizer)


def _boost(spec: Any, params: dict[str, Any], train: xgb.DMatrix, validation: xgb.DMatrix, seed: int,
           start: TrainedModel | None) -> tuple[xgb.Booster, dict[str, list[float]]]:
    params = {
        **params,
        "max_depth": spec.max_depth,
        "eta": spec.learning_rate,
        "subsample": spec.subsample,
        "seed": seed,
        "nthread": spec.threads,
        "tree_method": "hist",
    }
    evals_result: dict[str, dict[str, list[float]]] = {}
    if start is None:
        booster = xgb.train(params, train, num_boost_round=spec.n_trees,
                            evals=[(train, "train"), (validation, "validation")], evals_result=evals_result,
                            verbose_eval=False)
    else:
        # Continuous retraining keeps the production trees' structure (and so the
        # firmware's size) and refits their leaf values on the new sample.
        production: xgb.Booster = start.firmware_model
        rounds = production.num_boosted_rounds()
        if rounds != spec.n_trees:
            raise TrainingError(
                f"model {spec.name!r}: the production booster has {rounds} trees but n_trees = {spec.n_trees}; "
                "train from scratch (warm_start: false) to change the number of trees"
            )
        refresh = {**params, "process_type": "update", "updater": "refresh", "refresh_leaf": True}
        booster = xgb.train(refresh, train, num_boost_round=rounds, xgb_model=production.copy(),
                            evals=[(train, "train"), (validation, "validation")], evals_result=evals_result,
                            verbose_eval=False)
    history = {f"{split}_{metric}": [float(v) for v in values]
               for split, metrics in evals_result.items() for metric, values in metrics.items()}
    return booster, history


def _train_classifier(spec: BDTClassifierSpec, train: EventSample, validation: EventSample, seed: int,
                      start: TrainedModel | None) -> TrainedModel:
    for role, sample in (("training", train), ("validation", validation)):
        signal = int(sample.is_signal().sum())
        if signal == 0 or signal == len(sample):
            raise TrainingError(
                f"model {spec.name!r} (bdt_classifier): the {role} sample needs both background and signal "
                f"events; it has {len(sample) - signal} background and {signal} signal"
            )
    hw_train = train.hardware_features()
    scaling = _bdt_scaling(hw_train, start)
    dtrain = xgb.DMatrix(scaling.apply(hw_train).astype(np.float32), label=train.is_signal().astype(np.float32))
    dval = xgb.DMatrix(scaling.apply(validation.hardware_features()).astype(np.float32),
                       label=validation.is_signal().astype(np.float32))
    # base_score 0.5 is a margin of 0: the firmware's sum of trees is the score.
    params = {"objective": "binary:logistic", "eval_metric": "logloss", "base_score": 0.5}
    booster, history = _boost(spec, params, dtrain, dval, seed, start)
    return TrainedModel(spec=spec, firmware_model=booster, preprocessing=scaling, history=history)


def teacher_log_score(teacher: TrainedModel, sample: EventSample) -> np.ndarray:
    """The quantity a BDT student regresses: log of an autoencoder score (a CICADA student's score already is one)."""
    score = teacher.score(sample)
    if isinstance(teacher.spec, CicadaSpec) or isinstance(teacher.spec, (BDTClassifierSpec, BDTStudentSpec)):
        return score
    return np.log(np.maximum(score, _LOG_FLOOR))


def _train_student_bdt(spec: BDTStudentSpec, train: EventSample, validation: EventSample, seed: int,
                       start: TrainedModel | None, teacher: TrainedModel) -> TrainedModel:
    if teacher.name != spec.teacher:
        raise TrainingError(f"model {spec.name!r}: teacher is {spec.teacher!r} but the model passed is {teacher.name!r}")
    train_bg = _background(train, spec, "training")
    val_bg = _background(validation, spec, "validation")
    hw_train = train_bg.hardware_features()
    scaling = _bdt_scaling(hw_train, start)
    target_train = teacher_log_score(teacher, train_bg)
    dtrain = xgb.DMatrix(scaling.apply(hw_train).astype(np.float32), label=target_train)
    dval = xgb.DMatrix(scaling.apply(val_bg.hardware_features()).astype(np.float32),
                       label=teacher_log_score(teacher, val_bg))
    params = {"objective": "reg:squarederror", "eval_metric": "rmse", "base_score": float(np.mean(target_train))}
    booster, history = _boost(spec, params, dtrain, dval, seed, start)
    return TrainedModel(spec=spec, firmware_model=booster, preprocessing=scaling, history=history,
                        metadata={"teacher": teacher.name, "teacher_weights_sha256": teacher.weights_hash()})
