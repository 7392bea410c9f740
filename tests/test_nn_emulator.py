"""NNEmulator against hls_model.predict (the compiled hls4ml C++) on tiny nets.

Every model is converted and compiled once per module; each is small so that
compilation dominates. The nets cover Dense, ReLU and quantized activations,
a convolution with padding and stride, max pooling, Flatten, BatchNormalization,
saturating and wrapping result types, and a saturating accumulator (which
forces the step-by-step path).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from l1flow.firmware.fixed import FixedType, OverflowCount, convert, quantize
from l1flow.firmware.hls4ml_project import convert_keras, hls_config_for
from l1flow.firmware.netgraph import (
    ActivationLayer,
    BatchNormLayer,
    Conv2DLayer,
    DenseLayer,
    FirmwareNet,
    MaxPool2DLayer,
    TensorPort,
    UnsupportedLayerError,
)
from l1flow.firmware.nn_emulator import NNEmulator

pytestmark = pytest.mark.slow

EVENTS = 3000
PART = "xcvu9p-flgb2104-2L-e"


def _randomize(model: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        if type(layer).__name__ == "BatchNormalization":
            gamma, beta, mean, var = weights
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.5, beta.shape),
                               rng.normal(0, 0.5, mean.shape), rng.uniform(0.5, 2.0, var.shape)])
        else:
            layer.set_weights([rng.normal(0, 0.6, w.shape) for w in weights])


def _dense_model(n_in: int, hidden: list[int], input_bits: tuple[int, int], weight_bits: int, name: str) -> Any:
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu
    from tensorflow.keras.layers import Input
    from tensorflow.keras.models import Model

    inp = Input((n_in,), name="x")
    x = QActivation(quantized_bits(*input_bits, alpha=1), name="q_in")(inp)
    for i, units in enumerate(hidden):
        x = QDense(units, kernel_quantizer=quantized_bits(weight_bits, 0, alpha=1),
                   bias_quantizer=quantized_bits(weight_bits, 0, alpha=1), name=f"d{i}")(x)
        if i < len(hidden) - 1:
            x = QActivation(quantized_relu(8, 3), name=f"r{i}")(x)
    model = Model(inp, x, name=name)
    _randomize(model, 1)
    return model


def _conv_model() -> Any:
    from qkeras import QActivation, QConv2D, QDense, quantized_bits, quantized_relu
    from tensorflow.keras.layers import BatchNormalization, Flatten, Input, MaxPooling2D
    from tensorflow.keras.models import Model

    inp = Input((9, 7, 1), name="regions")
    x = QActivation(quantized_bits(10, 6, alpha=1), name="q_in")(inp)
    x = QConv2D(3, (3, 3), strides=(2, 1), padding="same", kernel_quantizer=quantized_bits(6, 0, alpha=1),
                bias_quantizer=quantized_bits(6, 0, alpha=1), name="c1")(x)
    x = QActivation(quantized_relu(6, 3), name="r1")(x)
    x = QConv2D(2, (2, 2), padding="valid", kernel_quantizer=quantized_bits(6, 0, alpha=1),
                bias_quantizer=quantized_bits(6, 0, alpha=1), name="c2")(x)
    x = QActivation(quantized_relu(6, 3), name="r2")(x)
    x = MaxPooling2D((2, 2), name="p1")(x)
    x = Flatten(name="flat")(x)
    x = QDense(5, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1),
               name="d1")(x)
    x = BatchNormalization(name="bn")(x)
    x = QActivation(quantized_bits(8, 2, alpha=1), name="q_bn")(x)
    x = QDense(1, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1),
               name="score")(x)
    model = Model(inp, x, name="student")
    _randomize(model, 2)
    return model


def _inputs(model: Any, seed: int, scale: float) -> np.ndarray:
    shape = (EVENTS, *model.input_shape[1:])
    rng = np.random.default_rng(seed)
    x = rng.normal(0, scale, shape)
    # exact ties and values beyond the input's saturation
    x[: EVENTS // 10] = np.round(x[: EVENTS // 10] * 64) / 64 + 1 / 128
    x[EVENTS // 10 : EVENTS // 5] *= 40
    return x


def _build(model: Any, tmp: Path, overrides: dict[str, dict[str, str]] | None = None) -> tuple[Any, FirmwareNet]:
    hls_model = convert_keras(model, tmp / model.name, part=PART, clock_period_ns=5.0, precision_overrides=overrides)
    return hls_model, FirmwareNet.from_hls_model(hls_model)


@pytest.fixture(scope="module")
def dense_net(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any, FirmwareNet]:
    model = _dense_model(12, [8, 4, 8, 12], (12, 4), 6, "ae")
    return (model, *_build(model, tmp_path_factory.mktemp("dense")))


@pytest.fixture(scope="module")
def wrap_net(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any, FirmwareNet]:
    """Narrow, wrapping and saturating types set by hand, and a saturating accumulator.

    bit_exact=True derives accumulators itself, so this net is converted
    without it: the emulator must follow whatever types the graph holds.
    """
    import hls4ml

    model = _dense_model(6, [5, 3], (8, 2), 4, "wrapping")
    overrides = {
        "r0": {"result": "ufixed<4,1,RND,WRAP>"},
        "d0": {"accum": "fixed<14,5>", "result": "fixed<10,5,RND_CONV,WRAP>"},
        "d1": {"accum": "fixed<7,2,RND_ZERO,SAT_SYM>", "result": "fixed<6,1,RND_INF,SAT>"},
    }
    hls_model = hls4ml.converters.convert_from_keras_model(
        model,
        hls_config=hls_config_for(model, "Vitis", overrides),
        output_dir=str(tmp_path_factory.mktemp("wrap") / "wrapping"),
        backend="Vitis",
        io_type="io_parallel",
        part=PART,
    )
    hls_model.compile()
    return model, hls_model, FirmwareNet.from_hls_model(hls_model)


@pytest.fixture(scope="module")
def conv_net(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any, FirmwareNet]:
    model = _conv_model()
    return (model, *_build(model, tmp_path_factory.mktemp("conv"), {"q_bn": {"result": "fixed<6,1,RND,WRAP>"}}))


@pytest.fixture(scope="module")
def int_net(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any, FirmwareNet]:
    """An ``int<8>`` input and an ``int<7>`` dense result (issue 13: 8,664 of 20,000 events were wrong).

    Set by hand, so converted without bit_exact (which would derive its own types).
    """
    import hls4ml

    model = _dense_model(6, [5, 2], (8, 7), 6, "intnet")
    overrides = {"x": {"result": "int<8>"}, "d0": {"result": "int<7>"}}
    hls_model = hls4ml.converters.convert_from_keras_model(
        model,
        hls_config=hls_config_for(model, "Vitis", overrides),
        output_dir=str(tmp_path_factory.mktemp("int") / "intnet"),
        backend="Vitis",
        io_type="io_parallel",
        part=PART,
    )
    hls_model.compile()
    return model, hls_model, FirmwareNet.from_hls_model(hls_model)


def _integer_inputs(n: int, n_in: int, seed: int) -> np.ndarray:
    """Real values for an ap_int<8> input: spread, near zero (-0.5 < x < 0 becomes +1), halves, rails, wraps."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 20, (n, n_in))
    x[: n // 4] = rng.uniform(-3, 3, (n // 4, n_in))
    x[n // 4 : n // 2] = rng.integers(-300, 300, (n // 4, n_in)) / 2.0
    picks = np.array([-0.3, -2.5, -0.5, -0.49, 0.3, 127.0, 127.7, 128.0, -128.0, -128.6, -129.0, 200.0, -1000.5])
    x[n // 2 : n // 2 + n // 8] = rng.choice(picks, (n // 8, n_in))
    return x


def test_integer_types_match_hls4ml_predict(int_net: tuple[Any, Any, FirmwareNet]) -> None:
    _, hls_model, net = int_net
    assert str(net.input.type) == "ap_int<8>"
    d0 = next(layer for layer in net.layers if layer.name == "d0")
    assert str(d0.result_type) == "ap_int<7>"
    x = _integer_inputs(20_000, 6, 21)
    expected = _hls_words(hls_model, net, x)
    emulator = NNEmulator(net)
    words = emulator.quantize_inputs(x)
    assert np.count_nonzero(emulator.predict_words(words) != expected) == 0
    assert np.count_nonzero(emulator.predict_words_exact(words) != expected) == 0
    assert len(np.unique(expected)) > 20
    # the comparison can fail: flooring the input (ap_fixed<8,8>'s TRN) instead of truncating
    floored = quantize(emulator._flat(x, "inputs"), net.input.type.with_modes())
    wrong_events = np.count_nonzero(np.any(emulator.predict_words(floored) != expected, axis=1))
    assert wrong_events > 2000
    # ...and so can flooring the int<7> dense result
    d0.result_type = d0.result_type.with_modes()
    try:
        floored_dense = NNEmulator(net).predict_words(words)
    finally:
        d0.result_type = FixedType.parse("ap_int<7>")
    assert np.count_nonzero(np.any(floored_dense != expected, axis=1)) > 2000


def test_an_integer_cast_the_header_leaves_undefined_is_refused() -> None:
    layer = ActivationLayer("a", "linear", FixedType(8, -1), FixedType.parse("ap_int<4>"), (3,))
    net = FirmwareNet(TensorPort("x", FixedType(8, -1), (3,)), [layer], TensorPort("y", layer.result_type, (3,)))
    with pytest.raises(UnsupportedLayerError, match="'a'.*ap_fixed<8,-1> -> ap_int<4>.*uninitialised"):
        NNEmulator(net)


def _hls_words(hls_model: Any, net: FirmwareNet, x: np.ndarray) -> np.ndarray:
    y = np.asarray(hls_model.predict(np.ascontiguousarray(x, dtype=np.float64))).reshape(len(x), -1)
    return quantize(y, net.output.type)


@pytest.mark.parametrize("fixture", ["dense_net", "wrap_net", "conv_net"])
def test_emulator_words_equal_hls4ml_predict(fixture: str, request: pytest.FixtureRequest) -> None:
    model, hls_model, net = request.getfixturevalue(fixture)
    emulator = NNEmulator(net)
    x = _inputs(model, 7, 3.0)
    expected = _hls_words(hls_model, net, x)
    words = emulator.quantize_inputs(x)
    fast = emulator.predict_words(words)
    exact = emulator.predict_words_exact(words)
    assert np.count_nonzero(fast != expected) == 0
    assert np.count_nonzero(exact != expected) == 0
    assert np.array_equal(emulator.predict(x), hls_model.predict(x).reshape(len(x), -1))
    # the outputs are not trivially constant
    assert len(np.unique(expected)) > 20


def test_graph_is_read_not_guessed(conv_net: tuple[Any, Any, FirmwareNet], wrap_net: tuple[Any, Any, FirmwareNet]) -> None:
    _, _, net = conv_net
    kinds = [layer.kind for layer in net.layers]
    assert kinds == ["conv2d", "activation", "conv2d", "activation", "maxpool2d", "reshape", "dense",
                     "batchnorm", "dense"]
    assert net.input.type == FixedType(10, 7, True, "RND_CONV", "SAT")  # quantized_bits(10, 6) + sign
    assert net.input.shape == (9, 7, 1)
    conv = net.layers[0]
    assert isinstance(conv, Conv2DLayer)
    assert conv.padding == (1, 1, 1, 1) and conv.strides == (2, 1) and conv.output_shape == (5, 7, 3)
    assert conv.weight.shape == (3, 3, 1, 3) and conv.weight.dtype == np.int64
    assert isinstance(net.layers[4], MaxPool2DLayer)
    bn = net.layers[7]
    assert isinstance(bn, BatchNormLayer) and bn.result_type == FixedType.parse("ap_fixed<6,1,AP_RND>")
    _, _, wnet = wrap_net
    by_name = {layer.name: layer for layer in wnet.layers}
    d1 = by_name["d1"]
    assert isinstance(d1, DenseLayer)
    assert d1.accum_type == FixedType(7, 2, True, "RND_ZERO", "SAT_SYM")
    assert d1.result_type == FixedType(6, 1, True, "RND_INF", "SAT")
    assert by_name["r0"].result_type == FixedType(4, 1, False, "RND", "WRAP")


def test_saturating_accumulator_takes_the_exact_path(wrap_net: tuple[Any, Any, FirmwareNet]) -> None:
    _, _, net = wrap_net
    emulator = NNEmulator(net)
    slow = [step.name for step in emulator.steps if not step.fast_ok]
    assert slow == ["d1"]


def test_overflow_report_counts_wraps_and_saturations(wrap_net: tuple[Any, Any, FirmwareNet]) -> None:
    model, _, net = wrap_net
    emulator = NNEmulator(net)
    words = emulator.quantize_inputs(_inputs(model, 11, 3.0))
    report = {(r.layer, r.stage): r for r in emulator.overflow_report(words)}
    wrapped_relu = report[("r0", "result")]
    assert wrapped_relu.values == EVENTS * 5 and wrapped_relu.saturated_high == 0
    # The same relu outputs cast to a saturating twin of the type: every
    # value that wrapped must saturate there, and nothing else.
    d0_words = emulator.layer_steps[0].exact(words, {k: OverflowCount() for k in ("product", "accumulator", "result")})
    relu = next(layer for layer in net.layers if layer.name == "r0")
    for step in emulator.layer_steps[1 : net.layers.index(relu)]:
        d0_words = step.exact(d0_words, {k: OverflowCount() for k in ("product", "accumulator", "result")})
    twin = OverflowCount()
    convert(np.maximum(d0_words, 0), relu.input_type, relu.result_type.with_modes(overflow="SAT"), twin)
    assert wrapped_relu.wrapped == twin.saturated_high > 100
    acc = report[("d1", "accumulator")]
    assert acc.values > 0 and acc.saturated_high + acc.saturated_low > 0 and acc.wrapped == 0


def test_a_flipped_weight_bit_is_caught(dense_net: tuple[Any, Any, FirmwareNet]) -> None:
    model, hls_model, net = dense_net
    x = _inputs(model, 5, 3.0)
    expected = _hls_words(hls_model, net, x)
    layer = net.layers[0]
    assert isinstance(layer, DenseLayer)
    original = layer.weight.copy()
    try:
        layer.weight[3, 2] ^= 1
        emulator = NNEmulator(net)
        words = emulator.predict_words(emulator.quantize_inputs(x))
        assert np.count_nonzero(np.any(words != expected, axis=1)) > 50
    finally:
        layer.weight[:] = original


def test_input_errors_are_clear(dense_net: tuple[Any, Any, FirmwareNet]) -> None:
    _, _, net = dense_net
    emulator = NNEmulator(net)
    with pytest.raises(ValueError, match=r"needs \(events, 12\)"):
        emulator.predict(np.zeros((4, 11)))
    with pytest.raises(ValueError, match="input type ap_fixed<12,5,AP_RND_CONV,AP_SAT>"):
        emulator.predict_words(np.full((2, 12), 5000))


def test_unsupported_layer_is_refused(tmp_path: Path) -> None:
    import hls4ml
    from qkeras import QActivation, QDense, quantized_bits
    from tensorflow.keras.layers import Activation, Input
    from tensorflow.keras.models import Model

    inp = Input((4,))
    x = QActivation(quantized_bits(8, 3, alpha=1))(inp)
    x = QDense(3, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1))(x)
    x = Activation("sigmoid", name="sig")(x)
    hls_model = hls4ml.converters.convert_from_keras_model(
        Model(inp, x), output_dir=str(tmp_path / "p"), backend="Vitis", io_type="io_parallel", bit_exact=True
    )
    with pytest.raises(UnsupportedLayerError, match="sig.*sigmoid"):
        FirmwareNet.from_hls_model(hls_model)


@pytest.mark.parametrize("dst", [FixedType(8, 5), FixedType(7, 4, False), FixedType(12, 10),
                                 FixedType.parse("ap_int<6>"), FixedType.parse("ap_uint<5>"),
                                 FixedType.parse("ap_int<1>")])
def test_fast_cast_kernel_equals_fixed_convert_in_every_mode(dst: FixedType) -> None:
    """The float64 kernel's casts against l1flow.firmware.fixed (itself checked against ap_fixed).

    An integer destination carries the modes too, and must ignore them.
    """
    import itertools

    from l1flow.firmware import nn_emulator
    from l1flow.firmware.fixed import OVERFLOW_MODES, ROUNDING_MODES

    src = FixedType(16, 8)
    rng = np.random.default_rng(0)
    x = rng.integers(src.min_word, src.max_word, (4000, 7), endpoint=True)
    x[:500] = (x[:500] >> 4 << 4) | 8  # exact ties
    x[500:510] = src.min_word
    for q, o in itertools.product(ROUNDING_MODES, OVERFLOW_MODES):
        t = FixedType(dst.width, dst.integer, dst.signed, q, o, dst.is_int)
        cast = nn_emulator._Cast.between(src, t)
        got = nn_emulator._run_epilogue(x.astype(np.float64), np.ones(7), np.zeros(7), cast).astype(np.int64)
        assert np.count_nonzero(got != convert(x, src, t)) == 0, str(t)
