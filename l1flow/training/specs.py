"""Model specifications: what to train, how to quantize it, how to pick its firmware precision.

One pydantic model per model kind, told apart by the ``kind`` field, so a
pipeline configuration holds ``models: list[ModelSpec]`` and a YAML entry such
as::

    - kind: dense_ae
      name: axol1tl_ae
      encoder: [{units: 32}, {units: 16}]
      latent: {units: 3}
      epochs: 5

validates into a :class:`DenseAESpec`. Every field has a default that trains a
small, sensible model; unknown fields are rejected so a typo names itself.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: names that are safe as one folder name: letters, digits, "_", "." and "-", not starting with "." or "-"
NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def check_folder_name(value: str) -> str:
    """``value`` if it can name one folder; otherwise a ValueError saying what a name may hold."""
    if not NAME_PATTERN.fullmatch(value):
        raise ValueError(
            f"{value!r} cannot name a folder: use letters, digits, '_', '.' and '-', not starting with "
            "'.' or '-' and without path separators (e.g. axol1tl_ae)"
        )
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class QuantizerSpec(_Strict):
    """A QKeras ``quantized_bits(bits, integer)``: signed, ``bits`` in total, ``integer`` above the point.

    The representable step is ``2**-(bits - integer - 1)`` (one bit is the sign).
    """

    bits: int = Field(8, ge=2, le=32)
    integer: int = Field(0, ge=0, le=31)

    @model_validator(mode="after")
    def _integer_fits(self) -> QuantizerSpec:
        if self.integer > self.bits - 1:
            raise ValueError(
                f"integer={self.integer} leaves no room for the sign bit in bits={self.bits}; "
                f"use integer <= {self.bits - 1}"
            )
        return self

    @property
    def fractional(self) -> int:
        return self.bits - self.integer - 1


class DenseLayerSpec(_Strict):
    """One quantized dense layer: width, weight/bias quantizers and its output quantizer.

    Hidden layers apply ``quantized_relu(activation.bits, activation.integer)``;
    latent and output layers are linear and apply
    ``quantized_bits(activation.bits, activation.integer)``.
    """

    units: int = Field(ge=1, le=4096)
    weights: QuantizerSpec = QuantizerSpec(bits=8, integer=0)
    biases: QuantizerSpec = QuantizerSpec(bits=8, integer=0)
    activation: QuantizerSpec = QuantizerSpec(bits=10, integer=5)


class OptimizerSpec(_Strict):
    name: Literal["adam", "sgd", "rmsprop"] = "adam"
    learning_rate: float = Field(1e-3, gt=0, le=1.0)


class FirmwarePrecisionSpec(_Strict):
    """How the firmware precision of a model is chosen (l1flow.backends).

    - ``output_agreement_target``: fraction of training events whose emulated
      firmware score lies within ``max_score_deviation`` of the software score.
    - ``decision_agreement_target``: fraction of events whose trigger decision
      (score above the working-point threshold) is the same in software and
      emulation.
    - ``max_score_deviation``: allowed |software - emulation| score difference,
      relative to the spread (standard deviation) of the background scores.
    - ``min_fractional_bits`` / ``max_fractional_bits``: search bounds.
    - ``max_total_bits``: no type the search proposes may exceed this width.
    - ``integer_margin_bits``: headroom added above the largest value seen.
    """

    output_agreement_target: float = Field(0.999, gt=0.0, le=1.0)
    decision_agreement_target: float = Field(0.999, gt=0.0, le=1.0)
    max_score_deviation: float = Field(0.05, gt=0.0)
    min_fractional_bits: int = Field(2, ge=0, le=32)
    max_fractional_bits: int = Field(18, ge=0, le=40)
    max_total_bits: int = Field(40, ge=2, le=64)
    integer_margin_bits: int = Field(1, ge=0, le=8)

    @model_validator(mode="after")
    def _bounds_ordered(self) -> FirmwarePrecisionSpec:
        if self.min_fractional_bits > self.max_fractional_bits:
            raise ValueError(
                f"min_fractional_bits={self.min_fractional_bits} is above "
                f"max_fractional_bits={self.max_fractional_bits}"
            )
        return self


class _ModelSpecBase(_Strict):
    # The name becomes a folder in the run (firmware/<name>, vectors/<name>): it must not start with a
    # dot, so "." and ".." (which would write into the run folder's root) are refused.
    name: str = Field(min_length=1, max_length=64)
    seed: int | None = Field(None, ge=0, description="overrides the pipeline seed for this model")
    warm_start: bool = Field(
        False, description="start from the current production model's weights instead of from scratch"
    )
    firmware: FirmwarePrecisionSpec = FirmwarePrecisionSpec()

    _name_is_folder = field_validator("name")(check_folder_name)


class _NeuralSpecBase(_ModelSpecBase):
    # Inputs are hardware integers shifted by a power of two per feature type
    # (l1flow.training.preprocessing) to about unit scale.
    input_quantizer: QuantizerSpec = QuantizerSpec(bits=16, integer=8)
    saturate_inputs: bool = Field(
        False,
        description="keep the unit-scale shifts and saturate values beyond the input type's range "
        "(false: raise the shift so the largest training value fits)",
    )
    optimizer: OptimizerSpec = OptimizerSpec()
    batch_size: int = Field(1024, ge=1, le=1 << 20)
    epochs: int = Field(5, ge=1, le=10_000)


def _default_encoder() -> list[DenseLayerSpec]:
    return [DenseLayerSpec(units=32), DenseLayerSpec(units=16)]


class DenseAESpec(_NeuralSpecBase):
    """Dense autoencoder on the 57 object features, scored by masked reconstruction MSE.

    The decoder mirrors ``encoder`` unless ``decoder`` is given; the output
    layer has one linear unit per input feature with ``output`` quantizers.
    """

    kind: Literal["dense_ae"] = "dense_ae"
    # Saturating at 4x the RMS keeps the QCD tail of very hard jets from
    # dominating the reconstruction error (efficiency at 1 kHz: tau_met 0.4% -> 20%).
    input_quantizer: QuantizerSpec = QuantizerSpec(bits=11, integer=2)
    saturate_inputs: bool = True
    encoder: list[DenseLayerSpec] = Field(default_factory=_default_encoder, min_length=1)
    latent: DenseLayerSpec = DenseLayerSpec(units=3)
    decoder: list[DenseLayerSpec] | None = None
    output: DenseLayerSpec = DenseLayerSpec(
        units=57, weights=QuantizerSpec(bits=8, integer=0), activation=QuantizerSpec(bits=16, integer=8)
    )

    def decoder_layers(self) -> list[DenseLayerSpec]:
        return list(self.decoder) if self.decoder is not None else list(reversed(self.encoder))


class VAEEncoderSpec(_NeuralSpecBase):
    """Variational autoencoder; only the encoder's mean goes to firmware, scored by sum(mu^2)."""

    kind: Literal["vae"] = "vae"
    input_quantizer: QuantizerSpec = QuantizerSpec(bits=11, integer=2)
    saturate_inputs: bool = True
    encoder: list[DenseLayerSpec] = Field(default_factory=_default_encoder, min_length=1)
    latent_dim: int = Field(3, ge=1, le=256)
    mu: QuantizerSpec = QuantizerSpec(bits=12, integer=4)
    decoder_units: list[int] = Field(default_factory=lambda: [16, 32])
    beta: float = Field(0.5, ge=0.0, description="weight of the KL term in the loss")


class ConvLayerSpec(_Strict):
    filters: int = Field(ge=1, le=256)
    kernel: int = Field(3, ge=1, le=7)


class CicadaSpec(_NeuralSpecBase):
    """CICADA-style pair on the 18 x 14 region grid.

    The teacher is a float convolutional autoencoder scored by log(MSE); the
    student (dense layers on the flattened grid, io_parallel friendly) regresses
    the teacher's log score and is what goes to firmware.
    """

    kind: Literal["cicada_student"] = "cicada_student"
    teacher_filters: list[ConvLayerSpec] = Field(
        default_factory=lambda: [ConvLayerSpec(filters=8), ConvLayerSpec(filters=8)], min_length=1
    )
    teacher_latent: int = Field(16, ge=1, le=512)
    teacher_epochs: int = Field(5, ge=1, le=10_000)
    student: list[DenseLayerSpec] = Field(
        default_factory=lambda: [DenseLayerSpec(units=16)], min_length=1
    )
    student_output: QuantizerSpec = QuantizerSpec(bits=16, integer=6)
    input_quantizer: QuantizerSpec = QuantizerSpec(bits=14, integer=6)


class _BDTSpecBase(_ModelSpecBase):
    n_trees: int = Field(100, ge=1, le=10_000)
    max_depth: int = Field(4, ge=1, le=12)
    learning_rate: float = Field(0.3, gt=0.0, le=1.0)
    subsample: float = Field(1.0, gt=0.0, le=1.0)
    threads: int = Field(2, ge=1, le=256)


class BDTClassifierSpec(_BDTSpecBase):
    """xgboost signal-vs-background classifier; its score is the raw margin (log-odds)."""

    kind: Literal["bdt_classifier"] = "bdt_classifier"


class BDTStudentSpec(_BDTSpecBase):
    """xgboost regression of an autoencoder's log score; ``teacher`` names that model."""

    kind: Literal["bdt_student"] = "bdt_student"
    teacher: str = Field(min_length=1)


ModelSpec = Annotated[
    DenseAESpec | VAEEncoderSpec | CicadaSpec | BDTClassifierSpec | BDTStudentSpec,
    Field(discriminator="kind"),
]

NeuralSpec = DenseAESpec | VAEEncoderSpec | CicadaSpec
BDTSpec = BDTClassifierSpec | BDTStudentSpec
