"""TrainedModel: a trained network or BDT with its input scaling, scores and files.

One class serves every model kind; what differs per kind is small and stated
here in one place:

=============== ========= ============================ ===========================
kind            framework firmware model                trigger score
=============== ========= ============================ ===========================
dense_ae        qkeras    the autoencoder               masked reconstruction MSE
vae             qkeras    the encoder (inputs -> mu)    sum of mu^2
cicada_student  qkeras    the student (grid -> 1)       student output (log score)
bdt_classifier  xgboost   the booster                   margin (log-odds)
bdt_student     xgboost   the booster                   regressed log teacher score
=============== ========= ============================ ===========================

The score is always computed from what the firmware outputs
(:meth:`TrainedModel.score_from_firmware_outputs`), so software and emulation
scores go through the same arithmetic and differ only by the firmware's
outputs.

On disk a model is one folder: ``model.json`` (spec, input scaling, history,
metadata, weights hash) and ``weights.npz`` (Keras) or ``booster.json``
(xgboost), written under a temporary name and renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import tensorflow as tf
import xgboost as xgb
from pydantic import TypeAdapter, ValidationError

from l1flow.data.layout import REGION_SHAPE
from l1flow.data.sample import EventSample
from l1flow.errors import BadInputError
from l1flow.fileio import atomic_folder
from l1flow.training import networks
from l1flow.training.preprocessing import PowerOfTwoScaling
from l1flow.training.specs import CicadaSpec, DenseAESpec, ModelSpec, VAEEncoderSpec

MODEL_FORMAT = "l1flow-trained-model/1"
MODEL_FILE = "model.json"
KERAS_WEIGHTS_FILE = "weights.npz"
BOOSTER_FILE = "booster.json"

Framework = Literal["qkeras", "xgboost"]
_SPEC_ADAPTER: TypeAdapter[Any] = TypeAdapter(ModelSpec)
_PREDICT_BATCH = 16384


class ModelFileError(BadInputError):
    """A saved model folder is missing, incomplete or does not match its spec."""


def framework_of(spec: Any) -> Framework:
    return "xgboost" if spec.kind in ("bdt_classifier", "bdt_student") else "qkeras"


def region_grid(sample: EventSample, model_name: str) -> np.ndarray:
    """(N, 252) int64 region ET words of ``sample``; an error naming the model when it has none."""
    if sample.regions is None:
        raise ValueError(
            f"model {model_name!r} reads the calorimeter region grid, but this sample has no regions; "
            "generate or read events with regions (EventSample.regions)"
        )
    return sample.regions.reshape(len(sample), -1).astype(np.int64)


@dataclass
class TrainedModel:
    """A trained model, ready to score events and to be converted to firmware.

    - ``firmware_model``: the Keras model that goes to hls4ml, or the xgboost
      Booster that goes to conifer.
    - ``preprocessing``: hardware integers -> exact firmware input values.
    - ``companions``: networks trained alongside that never go to firmware
      (the full VAE, the CICADA teacher).
    - ``history``: loss curves per epoch / boosting round.
    - ``metadata``: seed, event counts, warm-start origin.
    """

    spec: Any  # one of the ModelSpec classes
    firmware_model: Any  # keras.Model | xgb.Booster
    preprocessing: PowerOfTwoScaling
    history: dict[str, list[float]] = field(default_factory=dict)
    train_seconds: float = 0.0
    companions: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.spec.name)

    @property
    def kind(self) -> str:
        return str(self.spec.kind)

    @property
    def framework(self) -> Framework:
        return framework_of(self.spec)

    # -- inputs, outputs, scores ------------------------------------------------

    def hardware_inputs(self, sample: EventSample) -> np.ndarray:
        """The detector's integer words this model reads, (N, n_inputs) int64."""
        if isinstance(self.spec, CicadaSpec):
            return region_grid(sample, self.name)
        return sample.hardware_features()

    def firmware_inputs(self, sample: EventSample) -> np.ndarray:
        """Exact firmware input values (float64, (N, n_inputs)): hardware words shifted by a power of two."""
        return self.preprocessing.apply(self.hardware_inputs(sample))

    def software_outputs(self, inputs: np.ndarray) -> np.ndarray:
        """What the firmware model computes in software (QKeras / xgboost), float64 (N, n_outputs)."""
        inputs = np.asarray(inputs)
        if self.framework == "xgboost":
            margin = self.firmware_model.predict(xgb.DMatrix(inputs.astype(np.float32)), output_margin=True)
            return np.asarray(margin, dtype=np.float64).reshape(len(inputs), -1)
        out = self.firmware_model.predict(inputs.astype(np.float32), batch_size=_PREDICT_BATCH, verbose=0)
        return np.asarray(out, dtype=np.float64).reshape(len(inputs), -1)

    def score_from_firmware_outputs(self, inputs: np.ndarray, outputs: np.ndarray) -> np.ndarray:
        """The trigger score (float64 (N,)) from the firmware's inputs and outputs."""
        outputs = np.asarray(outputs, dtype=np.float64).reshape(len(inputs), -1)
        if isinstance(self.spec, DenseAESpec):
            presence = networks.presence_source_columns(self.preprocessing.groups)
            return networks.masked_mse_numpy(inputs, outputs, presence)
        if isinstance(self.spec, VAEEncoderSpec):
            return np.sum(outputs**2, axis=1)
        return outputs[:, 0].copy()

    def score(self, sample: EventSample) -> np.ndarray:
        """Software trigger score of every event, float64 (N,)."""
        inputs = self.firmware_inputs(sample)
        return self.score_from_firmware_outputs(inputs, self.software_outputs(inputs))

    # -- identity -----------------------------------------------------------------

    def weight_arrays(self) -> dict[str, np.ndarray]:
        """Every Keras weight, keyed ``<network>/<index>`` (firmware network first)."""
        arrays: dict[str, np.ndarray] = {}
        for key, model in self._keras_models().items():
            for i, w in enumerate(model.get_weights()):
                arrays[f"{key}/{i:03d}"] = np.asarray(w)
        return arrays

    def weights_hash(self) -> str:
        """sha256 of the weights: every Keras array's dtype, shape and bytes, or the booster's JSON."""
        digest = hashlib.sha256()
        if self.framework == "xgboost":
            digest.update(bytes(self.firmware_model.save_raw("json")))
            return digest.hexdigest()
        for key, array in self.weight_arrays().items():
            digest.update(f"{key}:{array.dtype.str}:{array.shape}".encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()

    def _keras_models(self) -> dict[str, tf.keras.Model]:
        return {"firmware": self.firmware_model, **self.companions}

    # -- files --------------------------------------------------------------------

    def save(self, folder: str | Path) -> Path:
        """Write the model to ``folder`` atomically (a temporary folder renamed into place)."""
        folder = Path(folder)
        with atomic_folder(folder) as staging:
            if self.framework == "xgboost":
                (staging / BOOSTER_FILE).write_bytes(bytes(self.firmware_model.save_raw("json")))
            else:
                with open(staging / KERAS_WEIGHTS_FILE, "wb") as handle:
                    np.savez(handle, **self.weight_arrays())
            document = {
                "format": MODEL_FORMAT,
                "name": self.name,
                "kind": self.kind,
                "framework": self.framework,
                "spec": self.spec.model_dump(mode="json"),
                "preprocessing": self.preprocessing.to_dict(),
                "history": self.history,
                "train_seconds": self.train_seconds,
                "metadata": self.metadata,
                "weights_sha256": self.weights_hash(),
            }
            (staging / MODEL_FILE).write_text(json.dumps(document, indent=2, sort_keys=True))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> TrainedModel:
        """Read a folder written by :meth:`save`; checks the weights against the recorded hash."""
        folder = Path(folder)
        meta_path = folder / MODEL_FILE
        if not meta_path.is_file():
            raise ModelFileError(f"{folder}: no {MODEL_FILE}; is this a folder written by TrainedModel.save?")
        try:
            document = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise ModelFileError(f"{meta_path}: not valid JSON ({exc})") from exc
        if document.get("format") != MODEL_FORMAT:
            raise ModelFileError(f"{meta_path}: format {document.get('format')!r}, expected {MODEL_FORMAT!r}")
        try:
            spec = _SPEC_ADAPTER.validate_python(document["spec"])
        except ValidationError as exc:
            raise ModelFileError(f"{meta_path}: field 'spec' is not a valid model spec:\n{exc}") from exc
        preprocessing = PowerOfTwoScaling.from_dict(document["preprocessing"])
        metadata = dict(document.get("metadata", {}))
        if framework_of(spec) == "xgboost":
            booster_path = folder / BOOSTER_FILE
            if not booster_path.is_file():
                raise ModelFileError(f"{folder}: {BOOSTER_FILE} is missing")
            booster = xgb.Booster()
            try:
                booster.load_model(bytearray(booster_path.read_bytes()))
            except xgb.core.XGBoostError as exc:
                raise ModelFileError(
                    f"{booster_path}: truncated or damaged booster file ({str(exc).splitlines()[0]}); "
                    "restore the model folder or train it again"
                ) from exc
            firmware_model, companions = booster, dict[str, Any]()
        else:
            firmware_model, companions = build_networks(spec, len(preprocessing.groups), metadata)
            _load_keras_weights(folder / KERAS_WEIGHTS_FILE, {"firmware": firmware_model, **companions})
        model = cls(
            spec=spec,
            firmware_model=firmware_model,
            preprocessing=preprocessing,
            history={k: [float(v) for v in vs] for k, vs in document.get("history", {}).items()},
            train_seconds=float(document.get("train_seconds", 0.0)),
            companions=companions,
            metadata=metadata,
        )
        recorded = document.get("weights_sha256")
        if recorded != model.weights_hash():
            raise ModelFileError(
                f"{folder}: the weights do not match the hash recorded in {MODEL_FILE}; the folder was altered "
                "or written by a different model"
            )
        return model


def build_networks(spec: Any, n_inputs: int, metadata: dict[str, Any]) -> tuple[tf.keras.Model, dict[str, Any]]:
    """Fresh (untrained) firmware network and companions of a neural spec."""
    if isinstance(spec, DenseAESpec):
        return networks.build_dense_ae(spec, n_inputs), {}
    if isinstance(spec, VAEEncoderSpec):
        vae = networks.build_vae(spec, n_inputs)
        return vae.encoder, {"vae": vae.vae}
    if isinstance(spec, CicadaSpec):
        grid = tuple(metadata.get("grid", REGION_SHAPE))
        return networks.build_cicada_student(spec, n_inputs), {
            "teacher": networks.build_cicada_teacher(spec, (int(grid[0]), int(grid[1])))
        }
    raise TypeError(f"model {spec.name!r} of kind {spec.kind!r} is not a neural network")


def _load_keras_weights(path: Path, models: dict[str, tf.keras.Model]) -> None:
    if not path.is_file():
        raise ModelFileError(f"{path.parent}: {path.name} is missing")
    try:
        stored = np.load(path)
        with stored:
            weights = {name: stored[name] for name in stored.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ModelFileError(
            f"{path}: truncated or damaged weights file ({exc}); restore the model folder or train it again"
        ) from exc
    for key, model in models.items():
        expected = model.get_weights()
        arrays = [weights[f"{key}/{i:03d}"] for i in range(len(expected)) if f"{key}/{i:03d}" in weights]
        shapes = [a.shape for a in arrays]
        if shapes != [w.shape for w in expected]:
            raise ModelFileError(
                f"{path}: the weights of network {key!r} have shapes {shapes}, but its spec builds "
                f"{[w.shape for w in expected]}"
            )
        model.set_weights(arrays)
