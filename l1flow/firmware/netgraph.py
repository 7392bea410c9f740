"""The firmware net: what an hls4ml io_parallel project computes, as plain data.

`FirmwareNet.from_hls_model` walks an hls4ml ``ModelGraph`` and records, per
layer, the integer weight and bias words and every fixed-point type the graph
assigned (weight, bias, accumulator, result, the input it reads). Precisions
are read from the graph, never re-guessed. Weights are read from the project's
``firmware/weights/*.txt`` when the project has been written, because that
decimal text (parsed to double, then assigned with the weight type's modes)
is what the C simulation loads; otherwise from the graph's arrays, the same
way.

The dataclasses hold numpy arrays and nothing tool-specific, so the fast
emulator, da4ml tracing and the reports can all walk the same object.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from l1flow.errors import BadInputError
from l1flow.firmware.fixed import FixedType, FixedTypeError, check_words, quantize
from l1flow.firmware.vectors import Port, VectorSet


class UnsupportedLayerError(BadInputError):
    """The hls4ml graph holds a layer (or option) the firmware net cannot describe."""


@dataclass(frozen=True)
class TensorPort:
    """A top-level port: its C++ variable name, element type and array shape."""

    name: str
    type: FixedType
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


@dataclass
class DenseLayer:
    """``nnet::dense`` (latency): products and bias cast to accum, summed, cast to result."""

    name: str
    input_type: FixedType
    weight: np.ndarray  # (n_in, n_out) words of weight_type
    bias: np.ndarray  # (n_out,) words of bias_type
    weight_type: FixedType
    bias_type: FixedType
    accum_type: FixedType
    result_type: FixedType
    output_shape: tuple[int, ...]
    kind: str = "dense"


@dataclass
class Conv2DLayer:
    """``nnet::conv_2d_cl`` (channels last): a dense layer over every padded window."""

    name: str
    input_type: FixedType
    input_shape: tuple[int, int, int]  # (height, width, channels)
    weight: np.ndarray  # (filt_height, filt_width, channels, filters) words
    bias: np.ndarray  # (filters,) words
    weight_type: FixedType
    bias_type: FixedType
    accum_type: FixedType
    result_type: FixedType
    strides: tuple[int, int]
    padding: tuple[int, int, int, int]  # top, bottom, left, right
    output_shape: tuple[int, int, int]
    kind: str = "conv2d"


@dataclass
class ActivationLayer:
    """``nnet::relu`` / ``nnet::linear``: an optional clamp at 0, then a cast to result."""

    name: str
    activation: str  # "relu" or "linear"
    input_type: FixedType
    result_type: FixedType
    output_shape: tuple[int, ...]
    kind: str = "activation"


@dataclass
class BatchNormLayer:
    """``nnet::normalize``: exact ``x * scale + bias`` cast to result, per channel."""

    name: str
    input_type: FixedType
    scale: np.ndarray  # (channels,) words of scale_type
    bias: np.ndarray  # (channels,) words of bias_type
    scale_type: FixedType
    bias_type: FixedType
    result_type: FixedType
    output_shape: tuple[int, ...]
    kind: str = "batchnorm"


@dataclass
class MaxPool2DLayer:
    """``nnet::pooling2d_cl`` with Max: window maximum, cast to accum, then to result."""

    name: str
    input_type: FixedType
    input_shape: tuple[int, int, int]
    pool_size: tuple[int, int]
    strides: tuple[int, int]
    padding: tuple[int, int, int, int]
    accum_type: FixedType
    result_type: FixedType
    output_shape: tuple[int, int, int]
    kind: str = "maxpool2d"


@dataclass
class ReshapeLayer:
    """Flatten / Reshape: no operation on io_parallel arrays (channels-last order kept)."""

    name: str
    input_type: FixedType
    result_type: FixedType
    output_shape: tuple[int, ...]
    kind: str = "reshape"


FirmwareLayer = DenseLayer | Conv2DLayer | ActivationLayer | BatchNormLayer | MaxPool2DLayer | ReshapeLayer


@dataclass
class FirmwareNet:
    """One input port, the layers in execution order, the output port."""

    input: TensorPort
    layers: list[FirmwareLayer]
    output: TensorPort
    project_name: str = "myproject"
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def n_inputs(self) -> int:
        return self.input.size

    @property
    def n_outputs(self) -> int:
        return self.output.size

    def content_hash(self) -> str:
        """sha256 of the ports and every layer's words and types: the firmware's identity."""
        digest = hashlib.sha256(f"{self.input}|{self.output}".encode())
        for layer in self.layers:
            for name, value in sorted(vars(layer).items()):
                digest.update(name.encode())
                if isinstance(value, np.ndarray):
                    digest.update(str(value.shape).encode() + np.ascontiguousarray(value, dtype=np.int64).tobytes())
                else:
                    digest.update(repr(value).encode())
        return digest.hexdigest()

    @classmethod
    def from_hls_model(cls, hls_model: Any) -> FirmwareNet:
        """Read the net from a converted hls4ml ``ModelGraph`` (io_parallel)."""
        return _read_graph(hls_model)


def fixed_type_from_hls(precision: Any, where: str) -> FixedType:
    """FixedType of an hls4ml precision object (FixedPrecisionType / IntegerPrecisionType)."""
    from hls4ml.model.types import FixedPrecisionType, IntegerPrecisionType

    if isinstance(precision, IntegerPrecisionType):
        return FixedType(int(precision.width), int(precision.width), bool(precision.signed), is_int=True)
    if not isinstance(precision, FixedPrecisionType):
        raise UnsupportedLayerError(
            f"{where}: precision {precision} ({type(precision).__name__}) is not a fixed-point or integer type"
        )
    rounding = getattr(precision, "rounding_mode", None)
    saturation = getattr(precision, "saturation_mode", None)
    saturation_bits = getattr(precision, "saturation_bits", 0) or 0
    if saturation_bits:
        raise UnsupportedLayerError(f"{where}: saturation bits N={saturation_bits} in {precision} are not supported")
    return FixedType(
        int(precision.width),
        int(precision.integer),
        bool(precision.signed),
        rounding.name if rounding is not None else "TRN",
        saturation.name if saturation is not None else "WRAP",
    )


def _type_of(layer: Any, key: str) -> FixedType:
    try:
        precision = layer.types[key].precision
    except KeyError as exc:
        raise UnsupportedLayerError(
            f"layer {layer.name!r} ({layer.class_name}) has no {key!r} in the graph; "
            f"it has {sorted(layer.types)}"
        ) from exc
    try:
        return fixed_type_from_hls(precision, f"layer {layer.name!r} {key}")
    except FixedTypeError as exc:
        raise UnsupportedLayerError(f"layer {layer.name!r} ({layer.class_name}) {key}: {exc}") from exc


def _weights_dir(hls_model: Any) -> Path | None:
    output_dir = hls_model.config.get_output_dir()
    folder = Path(output_dir) / "firmware" / "weights"
    return folder if folder.is_dir() else None


def _weight_words(hls_model: Any, layer: Any, key: str, t: FixedType) -> np.ndarray:
    """Words of one weight array as the C simulation loads them."""
    variable = layer.weights[key]
    shape = tuple(int(s) for s in np.shape(variable.data))
    folder = _weights_dir(hls_model)
    text_file = folder / f"{variable.name}.txt" if folder is not None else None
    if text_file is not None and text_file.exists():
        tokens = [tok for tok in text_file.read_text().replace("\n", ",").split(",") if tok.strip()]
        values = np.array([float(tok) for tok in tokens], dtype=np.float64)
        if values.size != int(np.prod(shape)):
            raise UnsupportedLayerError(
                f"{text_file}: {values.size} values, layer {layer.name!r} {key} needs {int(np.prod(shape))}"
            )
    else:
        values = np.asarray(variable.data, dtype=np.float64).ravel()
    return quantize(values, t).reshape(shape)


def _shape(variable: Any) -> tuple[int, ...]:
    return tuple(int(s) for s in variable.shape)


def _read_graph(hls_model: Any) -> FirmwareNet:
    io_type = hls_model.config.get_config_value("IOType")
    if io_type != "io_parallel":
        raise UnsupportedLayerError(f"the firmware net reads io_parallel projects; this one is {io_type}")
    inputs = hls_model.get_input_variables()
    outputs = hls_model.get_output_variables()
    if len(inputs) != 1 or len(outputs) != 1:
        raise UnsupportedLayerError(
            f"the firmware net handles one input and one output port; the model has "
            f"{len(inputs)} inputs and {len(outputs)} outputs"
        )
    in_var = inputs[0]
    input_port = TensorPort(in_var.name, fixed_type_from_hls(in_var.type.precision, "model input"), _shape(in_var))
    layers: list[FirmwareLayer] = []
    current_type = input_port.type
    current_shape = input_port.shape
    for layer in hls_model.get_layers():
        cls = layer.class_name
        if cls == "Input":
            continue
        if cls in ("Activation", "ReLU"):
            activation = str(layer.get_attr("activation", "relu")).lower()
            if activation not in ("relu", "linear"):
                raise UnsupportedLayerError(
                    f"layer {layer.name!r}: activation {activation!r} is not supported (relu, linear; "
                    "table-based activations are not emulated)"
                )
        result_type = _type_of(layer, "result_t")
        output_shape = _shape(layer.get_output_variable())
        name = layer.name
        if cls == "Dense":
            weight_type, bias_type = _type_of(layer, "weight_t"), _type_of(layer, "bias_t")
            _require_latency(layer)
            entry: FirmwareLayer = DenseLayer(
                name,
                current_type,
                _weight_words(hls_model, layer, "weight", weight_type).reshape(
                    int(layer.get_attr("n_in")), int(layer.get_attr("n_out"))
                ),
                _weight_words(hls_model, layer, "bias", bias_type).reshape(-1),
                weight_type,
                bias_type,
                _type_of(layer, "accum_t"),
                result_type,
                output_shape,
            )
        elif cls == "Conv2D":
            _require_latency(layer)
            if layer.get_attr("data_format", "channels_last") != "channels_last":
                raise UnsupportedLayerError(f"layer {name!r}: only channels_last convolutions are supported")
            weight_type, bias_type = _type_of(layer, "weight_t"), _type_of(layer, "bias_t")
            a = layer.get_attr
            entry = Conv2DLayer(
                name,
                current_type,
                (int(a("in_height")), int(a("in_width")), int(a("n_chan"))),
                _weight_words(hls_model, layer, "weight", weight_type).reshape(
                    int(a("filt_height")), int(a("filt_width")), int(a("n_chan")), int(a("n_filt"))
                ),
                _weight_words(hls_model, layer, "bias", bias_type).reshape(-1),
                weight_type,
                bias_type,
                _type_of(layer, "accum_t"),
                result_type,
                (int(a("stride_height")), int(a("stride_width"))),
                (int(a("pad_top")), int(a("pad_bottom")), int(a("pad_left")), int(a("pad_right"))),
                (int(a("out_height")), int(a("out_width")), int(a("n_filt"))),
            )
        elif cls in ("Activation", "ReLU"):
            activation = str(layer.get_attr("activation", "relu")).lower()
            entry = ActivationLayer(name, activation, current_type, result_type, output_shape)
        elif cls == "BatchNormalization":
            scale_type, bias_type = _type_of(layer, "scale_t"), _type_of(layer, "bias_t")
            entry = BatchNormLayer(
                name,
                current_type,
                _weight_words(hls_model, layer, "scale", scale_type).reshape(-1),
                _weight_words(hls_model, layer, "bias", bias_type).reshape(-1),
                scale_type,
                bias_type,
                result_type,
                output_shape,
            )
        elif cls == "Pooling2D":
            a = layer.get_attr
            if a("pool_op") != "Max" or a("data_format", "channels_last") != "channels_last":
                raise UnsupportedLayerError(
                    f"layer {name!r}: only channels_last max pooling is supported, got {a('pool_op')}"
                )
            entry = MaxPool2DLayer(
                name,
                current_type,
                (int(a("in_height")), int(a("in_width")), int(a("n_filt"))),
                (int(a("pool_height")), int(a("pool_width"))),
                (int(a("stride_height")), int(a("stride_width"))),
                (int(a("pad_top")), int(a("pad_bottom")), int(a("pad_left")), int(a("pad_right"))),
                _type_of(layer, "accum_t"),
                result_type,
                (int(a("out_height")), int(a("out_width")), int(a("n_filt"))),
            )
        elif cls == "Reshape":
            if result_type != current_type:
                raise UnsupportedLayerError(
                    f"layer {name!r}: a reshape that changes the type ({current_type} -> {result_type})"
                )
            entry = ReshapeLayer(name, current_type, result_type, output_shape)
        else:
            raise UnsupportedLayerError(
                f"layer {name!r} of class {cls} is not supported by the firmware net "
                "(Dense, Conv2D, Activation relu/linear, BatchNormalization, MaxPooling2D, Reshape/Flatten)"
            )
        if int(np.prod(output_shape)) != int(np.prod(_expected_size(entry, current_shape))):
            raise UnsupportedLayerError(f"layer {name!r}: output shape {output_shape} does not follow its input")
        layers.append(entry)
        current_type = result_type
        current_shape = output_shape
    out_var = outputs[0]
    output_port = TensorPort(out_var.name, fixed_type_from_hls(out_var.type.precision, "model output"), _shape(out_var))
    if output_port.type != current_type:
        raise UnsupportedLayerError(
            f"the output port type {output_port.type} differs from the last layer's result {current_type}"
        )
    return FirmwareNet(
        input=input_port,
        layers=layers,
        output=output_port,
        project_name=str(hls_model.config.get_project_name()),
    )


def _require_latency(layer: Any) -> None:
    strategy = str(layer.get_attr("strategy", "latency")).lower()
    if strategy != "latency":
        raise UnsupportedLayerError(
            f"layer {layer.name!r}: strategy {strategy!r}; the firmware net reads the latency strategy"
        )


def _expected_size(entry: FirmwareLayer, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    if isinstance(entry, (ActivationLayer, BatchNormLayer, ReshapeLayer)):
        return input_shape
    return entry.output_shape


def export_vectors(
    net: FirmwareNet,
    input_words: np.ndarray,
    output_words: np.ndarray,
    model_info: dict[str, Any],
    folder: Path | str,
    source: str = "emulator",
) -> VectorSet:
    """Save input and output words of `net` as a test-vector folder (docs/formats.md, "Test vectors").

    Port types are the C++ spellings of the graph's types; words outside a
    port's type are refused before anything is written.
    """
    inputs = [Port(net.input.name, str(net.input.type), net.input.shape)]
    outputs = [Port(net.output.name, str(net.output.type), net.output.shape)]
    input_words = np.asarray(input_words, dtype=np.int64).reshape(len(input_words), -1)
    output_words = np.asarray(output_words, dtype=np.int64).reshape(len(output_words), -1)
    check_words(input_words, net.input.type, f"input words for {net.input.name}")
    check_words(output_words, net.output.type, f"output words for {net.output.name}")
    vectors = VectorSet(
        inputs=inputs,
        outputs=outputs,
        input_words=input_words,
        output_words=output_words,
        model={"project": net.project_name, **model_info},
        source=source,
    )
    vectors.save(Path(folder))
    return vectors
