"""QKeras networks built from the specs, and the losses that train them.

Every firmware network starts with ``QActivation(quantized_bits(...))`` on its
input so hls4ml's bit-exact conversion applies, and uses only layers the
firmware flow supports with ``io_parallel``: QDense, quantized ReLU / linear
quantizers. Float-only helpers (the VAE's log-variance head and decoder, the
CICADA teacher) never go to firmware.

All quantizers use ``alpha=1`` (no automatic per-channel scale), so the
weights are plain fixed-point numbers hls4ml can reproduce exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from qkeras import QActivation, QDense, quantized_bits, quantized_relu

from l1flow.training.specs import (
    CicadaSpec,
    DenseAESpec,
    DenseLayerSpec,
    OptimizerSpec,
    QuantizerSpec,
    VAEEncoderSpec,
)

keras = tf.keras


def bits(q: QuantizerSpec) -> quantized_bits:
    return quantized_bits(q.bits, q.integer, alpha=1)


def relu(q: QuantizerSpec) -> quantized_relu:
    return quantized_relu(q.bits, q.integer)


def _qdense(layer: DenseLayerSpec, name: str) -> QDense:
    return QDense(
        layer.units,
        kernel_quantizer=bits(layer.weights),
        bias_quantizer=bits(layer.biases),
        name=name,
    )


def _dense_stack(x: tf.Tensor, layers: list[DenseLayerSpec], prefix: str) -> tf.Tensor:
    for i, layer in enumerate(layers):
        x = _qdense(layer, f"{prefix}{i}")(x)
        x = QActivation(relu(layer.activation), name=f"{prefix}{i}_relu")(x)
    return x


def _linear(x: tf.Tensor, layer: DenseLayerSpec, name: str) -> tf.Tensor:
    x = _qdense(layer, name)(x)
    return QActivation(bits(layer.activation), name=f"{name}_out")(x)


def _input(n_inputs: int, quantizer: QuantizerSpec) -> tuple[tf.Tensor, tf.Tensor]:
    inputs = keras.Input(shape=(n_inputs,), name="inputs")
    return inputs, QActivation(bits(quantizer), name="input_quant")(inputs)


def presence_source_columns(groups: tuple[str, ...]) -> np.ndarray:
    """For every column, the pT column of its object: an object is present when its pT word is non-zero."""
    source = np.empty(len(groups), dtype=np.int64)
    current = -1
    for i, group in enumerate(groups):
        if group == "pt":
            current = i
        if current < 0:
            raise ValueError(f"column {i} ({group}) comes before any pT column; cannot tell padded objects")
        source[i] = current
    return source


def masked_mse_numpy(inputs: np.ndarray, outputs: np.ndarray, presence: np.ndarray) -> np.ndarray:
    """Per-event MSE over the features of present (non-padded) objects; float64 (N,)."""
    inputs = np.asarray(inputs, dtype=np.float64)
    outputs = np.asarray(outputs, dtype=np.float64)
    mask = (inputs[:, presence] != 0).astype(np.float64)
    squared = mask * (inputs - outputs) ** 2
    return squared.sum(axis=1) / np.maximum(mask.sum(axis=1), 1.0)


def masked_mse_loss(presence: np.ndarray) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """Keras loss: reconstruction MSE that ignores zero-padded objects (their pT, eta and phi)."""
    index = tf.constant(presence, dtype=tf.int32)

    def loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        mask = tf.cast(tf.gather(y_true, index, axis=1) != 0, y_pred.dtype)
        squared = mask * tf.square(y_true - y_pred)
        return tf.reduce_sum(squared, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)

    return loss


def optimizer(spec: OptimizerSpec) -> tf.keras.optimizers.Optimizer:
    kinds = {"adam": keras.optimizers.Adam, "sgd": keras.optimizers.SGD, "rmsprop": keras.optimizers.RMSprop}
    return kinds[spec.name](learning_rate=spec.learning_rate)


def build_dense_ae(spec: DenseAESpec, n_inputs: int) -> tf.keras.Model:
    if spec.output.units != n_inputs:
        raise ValueError(
            f"model {spec.name!r}: output.units = {spec.output.units} must equal the number of inputs ({n_inputs})"
        )
    inputs, x = _input(n_inputs, spec.input_quantizer)
    x = _dense_stack(x, spec.encoder, "enc")
    x = _linear(x, spec.latent, "latent")
    x = _dense_stack(x, spec.decoder_layers(), "dec")
    outputs = _linear(x, spec.output, "reco")
    return keras.Model(inputs, outputs, name=spec.name)


class _KLDivergence(tf.keras.layers.Layer):
    """Adds beta * KL(N(mu, sigma) || N(0, 1)) to the model's losses; passes mu through."""

    def __init__(self, beta: float, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.beta = beta

    def call(self, inputs: list[tf.Tensor]) -> tf.Tensor:
        mu, log_var = inputs
        kl = -0.5 * tf.reduce_sum(1.0 + log_var - tf.square(mu) - tf.exp(log_var), axis=1)
        self.add_loss(self.beta * tf.reduce_mean(kl))
        return mu


class _Sampling(tf.keras.layers.Layer):
    """z = mu + sigma * eps while training (eps from TF's global seed: deterministic runs); mu otherwise."""

    def call(self, inputs: list[tf.Tensor], training: bool | None = None) -> tf.Tensor:
        mu, log_var = inputs
        if not training:
            return mu
        return mu + tf.exp(0.5 * log_var) * tf.random.normal(tf.shape(mu))


@dataclass
class VAENetworks:
    encoder: tf.keras.Model  # inputs -> mu; the firmware model
    vae: tf.keras.Model  # inputs -> reconstruction, KL added as a layer loss; trained


def build_vae(spec: VAEEncoderSpec, n_inputs: int) -> VAENetworks:
    inputs, x = _input(n_inputs, spec.input_quantizer)
    hidden = _dense_stack(x, spec.encoder, "enc")
    mu_layer = DenseLayerSpec(units=spec.latent_dim, weights=spec.encoder[-1].weights,
                              biases=spec.encoder[-1].biases, activation=spec.mu)
    mu = _linear(hidden, mu_layer, "mu")
    log_var = keras.layers.Dense(spec.latent_dim, name="log_var")(hidden)
    mu_out = _KLDivergence(spec.beta, name="kl")([mu, log_var])
    z = _Sampling(name="sampling")([mu_out, log_var])
    y = z
    for i, units in enumerate(spec.decoder_units):
        y = keras.layers.Dense(units, activation="relu", name=f"dec{i}")(y)
    reconstruction = keras.layers.Dense(n_inputs, name="reco")(y)
    return VAENetworks(
        encoder=keras.Model(inputs, mu, name=spec.name),
        vae=keras.Model(inputs, reconstruction, name=f"{spec.name}_vae"),
    )


def build_cicada_teacher(spec: CicadaSpec, grid: tuple[int, int]) -> tf.keras.Model:
    """Float convolutional autoencoder on the region grid (never goes to firmware).

    Grids with odd sizes are zero-padded to even ones for the 2x2 pooling.
    """
    height, width = grid
    padded = (height + height % 2, width + width % 2)
    inputs = keras.Input(shape=(height, width, 1), name="regions")
    x = keras.layers.ZeroPadding2D(((0, padded[0] - height), (0, padded[1] - width)))(inputs)
    first, *rest = spec.teacher_filters
    x = keras.layers.Conv2D(first.filters, first.kernel, padding="same", activation="relu", name="conv0")(x)
    x = keras.layers.AveragePooling2D(2, name="pool")(x)
    for i, conv in enumerate(rest, start=1):
        x = keras.layers.Conv2D(conv.filters, conv.kernel, padding="same", activation="relu", name=f"conv{i}")(x)
    inner = tuple(int(d) for d in x.shape[1:])
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(spec.teacher_latent, activation="relu", name="latent")(x)
    x = keras.layers.Dense(int(np.prod(inner)), activation="relu", name="expand")(x)
    x = keras.layers.Reshape(inner)(x)
    x = keras.layers.UpSampling2D(2)(x)
    x = keras.layers.Conv2D(first.filters, first.kernel, padding="same", activation="relu", name="deconv")(x)
    x = keras.layers.Conv2D(1, first.kernel, padding="same", name="reco")(x)
    outputs = keras.layers.Cropping2D(((0, padded[0] - height), (0, padded[1] - width)))(x)
    return keras.Model(inputs, outputs, name=f"{spec.name}_teacher")


def build_cicada_student(spec: CicadaSpec, n_inputs: int) -> tf.keras.Model:
    """Dense student on the flattened grid; its single output regresses the teacher's log score."""
    inputs, x = _input(n_inputs, spec.input_quantizer)
    x = _dense_stack(x, spec.student, "dense")
    # The output bias carries the mean log score (far outside a hidden layer's
    # bias range), so it gets the output's quantizer.
    out_layer = DenseLayerSpec(units=1, weights=spec.student[-1].weights, biases=spec.student_output,
                               activation=spec.student_output)
    outputs = _linear(x, out_layer, "score")
    return keras.Model(inputs, outputs, name=spec.name)
