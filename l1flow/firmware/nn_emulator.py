"""Fast, bit-exact emulation of an hls4ml io_parallel net from its `FirmwareNet`.

Two paths compute the same integers:

- the fast path holds words as float64. Integer products and sums are exact
  in float64 while magnitudes stay below 2**53; that bound is checked per
  layer from the input type and the actual weights when the emulator is built,
  so BLAS dgemm does the integer matrix products and one numba pass per
  matmul (fused with the activation or batchnorm after it) does the
  accumulator wrap, the clamp and the rounding/overflow casts. The kernels are
  compiled per combination of modes, so the element loop has no data
  branches; casts whose source range provably fits skip overflow handling.
  Chunks of events run in parallel threads with single-threaded BLAS;
- the exact path uses int64 and `l1flow.firmware.fixed.convert` step by step,
  exactly in the order the hls4ml templates write it (each product cast to the
  accumulator, each partial sum cast back). It counts saturations and wraps
  for the overflow report, and serves any layer whose bound or modes the fast
  path cannot take (e.g. a saturating accumulator).

An accumulator with WRAP overflow and at least the product's fraction bits
makes the step-by-step casts a sum modulo 2**W, so the fast path may wrap
once at the end.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from l1flow.firmware.fixed import (
    OVERFLOW_MODES,
    ROUNDING_MODES,
    FixedType,
    FixedTypeError,
    OverflowCount,
    conversion_rules,
    convert,
    product_type,
    quantize,
    sum_type,
    to_float,
)
from l1flow.firmware.netgraph import (
    ActivationLayer,
    BatchNormLayer,
    Conv2DLayer,
    DenseLayer,
    FirmwareLayer,
    FirmwareNet,
    MaxPool2DLayer,
    ReshapeLayer,
    UnsupportedLayerError,
)

EXACT_FLOAT = 2.0**53
NO_OVERFLOW = len(OVERFLOW_MODES)  # a cast whose source range fits: no overflow handling
CHUNK_EVENTS = 2048


@dataclass
class LayerOverflow:
    """Values of one cast in one layer that hit a saturation rail or wrapped."""

    layer: str
    stage: str  # "product", "accumulator" or "result"
    values: int
    saturated_high: int
    saturated_low: int
    wrapped: int

    @property
    def overflowed(self) -> int:
        return self.saturated_high + self.saturated_low + self.wrapped


# ---------------------------------------------------------------------------
# numba kernel: y * col_scale + col_offset, optional accumulator wrap and relu
# clamp, then the cast to the result type. Everything is an exact integer in
# float64 (bounds checked by the caller).
# ---------------------------------------------------------------------------


def _make_cast(shift_down: bool, qmode: int, omode: int) -> Any:
    """A scalar cast specialised on its modes, so the kernel has no data branches.

    Parameters at run time: down = 2**-shift, up = 2**shift (one of them 1),
    the destination's lowest and highest word and 2**width.
    """

    @numba.njit(nogil=True, inline="always")
    def cast(v, down, up, lo, hi, modulus):  # type: ignore[no-untyped-def]
        if shift_down:
            s = v * down
            q = np.floor(s)
            r = s - q
            neg = v < 0.0
            above = r > 0.5
            tie = r == 0.5
            # bitwise & / | (not and / or) keep the loop free of branches
            if qmode == 0:  # TRN
                inc = False
            elif qmode == 1:  # TRN_ZERO
                inc = neg & (r != 0.0)
            elif qmode == 2:  # RND
                inc = r >= 0.5
            elif qmode == 3:  # RND_ZERO
                inc = above | (tie & neg)
            elif qmode == 4:  # RND_MIN_INF
                inc = above
            elif qmode == 5:  # RND_INF
                inc = above | (tie & (not neg))
            else:  # RND_CONV
                inc = above | (tie & ((q - 2.0 * np.floor(q * 0.5)) != 0.0))
            v = q + (1.0 if inc else 0.0)
        else:
            v = v * up
        if omode == NO_OVERFLOW:
            return v
        if omode == 0:  # WRAP
            return v - modulus * np.floor((v - lo) * (1.0 / modulus))
        if omode == 1:  # SAT
            return min(max(v, lo), hi)
        if omode == 2:  # SAT_ZERO
            return 0.0 if ((v > hi) | (v < lo)) else v
        # SAT_SYM: the most negative word moves up too (signed types)
        return min(max(v, -hi if lo < 0.0 else lo), hi)

    return cast


_KERNELS: dict[tuple[Any, ...], Any] = {}


def _epilogue_kernel(key: tuple[Any, ...]) -> Any:
    """out = cast2(relu2(y2 * scale2 + offset2)), y2 = cast1(relu1(wrap(y * scale1 + offset1))).

    Compiled once per combination of modes and flags (`key`); the optional
    second stage is an activation or batchnorm after a matmul.
    """
    if key in _KERNELS:
        return _KERNELS[key]
    acc_wrap, relu1, down1, q1, o1, has2, relu2, down2, q2, o2 = key
    cast1 = _make_cast(down1, q1, o1)
    cast2 = _make_cast(down2, q2, o2)

    @numba.njit(nogil=True)
    def kernel(y, scale1, offset1, acc_lo, acc_modulus, c1, scale2, offset2, c2, out):  # type: ignore[no-untyped-def]
        rows, cols = y.shape
        for i in range(rows):
            for j in range(cols):
                v = y[i, j] * scale1[j] + offset1[j]
                if acc_wrap:
                    v = v - acc_modulus * np.floor((v - acc_lo) * (1.0 / acc_modulus))
                if relu1:
                    v = max(v, 0.0)
                v = cast1(v, c1[0], c1[1], c1[2], c1[3], c1[4])
                if has2:
                    v = v * scale2[j] + offset2[j]
                    if relu2:
                        v = max(v, 0.0)
                    v = cast2(v, c2[0], c2[1], c2[2], c2[3], c2[4])
                out[i, j] = v

    _KERNELS[key] = kernel
    return kernel


@dataclass(frozen=True)
class _Cast:
    """Parameters of one cast from words with `src_frac` fraction bits to `dst`."""

    down: float
    up: float
    qmode: int
    omode: int
    lo: float
    hi: float
    modulus: float

    def as_array(self) -> np.ndarray:
        return np.array([self.down, self.up, self.lo, self.hi, self.modulus])

    @property
    def key(self) -> tuple[bool, int, int]:
        return (self.down != 1.0, self.qmode, self.omode)

    @classmethod
    def between(cls, src: FixedType, dst: FixedType, src_range: tuple[float, float] | None = None) -> _Cast:
        """The cast; `src_range` (lowest, highest source word) lets it skip overflow handling."""
        # an integer destination truncates toward zero and wraps, whatever its modes
        dst = conversion_rules(src, dst)
        shift = src.frac - dst.frac
        omode = OVERFLOW_MODES.index(dst.overflow)
        if src_range is not None:
            # rounding moves a value by at most one destination step
            lowest = np.floor(src_range[0] * 2.0**-shift) - 1
            highest = np.ceil(src_range[1] * 2.0**-shift) + 1
            sym_ok = dst.overflow != "SAT_SYM" or lowest > dst.min_word
            if lowest >= dst.min_word and highest <= dst.max_word and sym_ok:
                omode = NO_OVERFLOW
        return cls(
            down=2.0**-shift if shift > 0 else 1.0,
            up=2.0 ** (-shift) if shift < 0 else 1.0,
            qmode=ROUNDING_MODES.index(dst.rounding),
            omode=omode,
            lo=float(dst.min_word),
            hi=float(dst.max_word),
            modulus=float(2**dst.width),
        )


def _run_epilogue(
    y: np.ndarray,
    col_scale: np.ndarray,
    col_offset: np.ndarray,
    cast: _Cast,
    relu: bool = False,
    acc: FixedType | None = None,
    then: _Op | None = None,
) -> np.ndarray:
    """One epilogue pass over `y`, optionally followed by an elementwise op `then`."""
    out = np.empty_like(y)
    second = then if then is not None else _Op(0, 0, None, col_scale, col_offset, None, False, cast)
    kernel = _epilogue_kernel(
        (acc is not None, relu, *cast.key, then is not None, second.relu, *second.cast.key)
    )
    kernel(
        np.ascontiguousarray(y),
        col_scale,
        col_offset,
        float(acc.min_word) if acc is not None else 0.0,
        float(2**acc.width) if acc is not None else 1.0,
        cast.as_array(),
        second.col_scale,
        second.col_offset,
        second.cast.as_array(),
        out,
    )
    return out


@dataclass
class _Op:
    """One fusable operation: an optional integer matmul, then the epilogue and cast."""

    n_in: int
    n_out: int
    weight: np.ndarray | None  # (n_in, n_out) float64 words, or None
    col_scale: np.ndarray
    col_offset: np.ndarray
    wrap: FixedType | None  # accumulator to wrap into, when it can overflow
    relu: bool
    cast: _Cast


class _Program:
    """Fused ops: each matmul (BLAS dgemm) and the elementwise op after it share one pass."""

    def __init__(self, ops: list[_Op]) -> None:
        self.passes: list[tuple[_Op, _Op | None]] = []
        k = 0
        while k < len(ops):
            op = ops[k]
            following = ops[k + 1] if k + 1 < len(ops) else None
            if following is not None and following.weight is None and following.wrap is None:
                self.passes.append((op, following))
                k += 2
            else:
                self.passes.append((op, None))
                k += 1

    def __call__(self, x: np.ndarray) -> np.ndarray:
        for op, then in self.passes:
            y = x @ op.weight if op.weight is not None else x
            x = _run_epilogue(y, op.col_scale, op.col_offset, op.cast, op.relu, op.wrap, then)
        return x


def _max_abs(t: FixedType) -> int:
    return max(abs(t.min_word), abs(t.max_word))


# ---------------------------------------------------------------------------
# exact int64 helpers shared by dense and convolution
# ---------------------------------------------------------------------------


def _windows(x: np.ndarray, shape: tuple[int, ...], kernel: tuple[int, ...], strides: tuple[int, int],
             padding: tuple[int, int, int, int], pad_value: float | int) -> np.ndarray:
    """(events, out_h, out_w, kh, kw, channels) windows of channels-last images."""
    h, w, c = shape
    images = x.reshape(-1, h, w, c)
    top, bottom, left, right = padding
    if any(padding):
        images = np.pad(images, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=pad_value)
    # numpy 1.26 accepts a tuple of axes, its stubs only one axis
    view = np.lib.stride_tricks.sliding_window_view(images, kernel, axis=(1, 2))  # type: ignore[call-overload]
    view = view[:, :: strides[0], :: strides[1]]  # (n, oh, ow, c, kh, kw)
    return view.transpose(0, 1, 2, 4, 5, 3)


def _accumulate_exact(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray,
    input_type: FixedType,
    weight_type: FixedType,
    bias_type: FixedType,
    acc: FixedType,
    counters: dict[str, OverflowCount],
) -> np.ndarray:
    """nnet::dense_latency in int64: x (rows, n_in) @ weight (n_in, n_out) + bias -> accum words."""
    prod_t = product_type(input_type, weight_type)
    acc_bias = convert(bias, bias_type, acc)
    wrap_exact = acc.overflow == "WRAP" and acc.frac >= prod_t.frac
    bound = float(_max_abs(input_type)) * float(np.abs(weight).sum(axis=0).max(initial=0)) * 2.0 ** (acc.frac - prod_t.frac)
    if wrap_exact and bound + _max_abs(acc) < 2.0**62:
        # Modular accumulation: one exact sum, then one wrap (counted).
        total = (x @ weight) * np.int64(2 ** (acc.frac - prod_t.frac)) + acc_bias
        return convert(total, FixedType(64, 64 - acc.frac), acc, counters["accumulator"])
    total = np.broadcast_to(acc_bias, (x.shape[0], weight.shape[1])).copy()
    step_t = sum_type(acc, acc)
    for i in range(weight.shape[0]):
        products = x[:, i : i + 1] * weight[i][None, :]
        total = convert(total + convert(products, prod_t, acc, counters["product"]), step_t, acc, counters["accumulator"])
    return total


# ---------------------------------------------------------------------------
# layer steps
# ---------------------------------------------------------------------------


class _Step(ABC):
    """One layer: `fast` on float64 words (when `fast_ok`), `exact` on int64 words with counters."""

    name: str
    fast_ok: bool

    @abstractmethod
    def fast(self, x: np.ndarray) -> np.ndarray:
        """Float64 words in, float64 words out."""

    @abstractmethod
    def exact(self, x: np.ndarray, counters: dict[str, OverflowCount]) -> np.ndarray:
        """Int64 words in, int64 words out; casts counted into `counters`."""

    def ops(self) -> list[_Op] | None:
        """The step as fusable per-event ops, or None if it runs on whole arrays."""
        return None


class _FusedStep(_Step):
    """Consecutive fusable steps run in one per-event kernel pass."""

    def __init__(self, steps: list[_Step]) -> None:
        self.steps = steps
        self.name = "+".join(step.name for step in steps)
        self.fast_ok = True
        ops = [op for step in steps for op in (step.ops() or [])]
        self.program = _Program(ops) if ops else None

    def fast(self, x: np.ndarray) -> np.ndarray:
        return self.program(x) if self.program is not None else x

    def exact(self, x: np.ndarray, counters: dict[str, OverflowCount]) -> np.ndarray:
        for step in self.steps:
            x = step.exact(x, counters)
        return x


class _MatmulStep(_Step):
    """Dense or Conv2D: integer dgemm, bias, accumulator wrap, cast to result."""

    def __init__(self, layer: DenseLayer | Conv2DLayer, relu: bool = False) -> None:
        self.layer = layer
        self.name = layer.name
        k = int(np.prod(layer.weight.shape[:-1]))
        self.weight_int = layer.weight.reshape(k, layer.weight.shape[-1]).astype(np.int64)
        self.weight_f = self.weight_int.astype(np.float64)
        prod_t = product_type(layer.input_type, layer.weight_type)
        acc = layer.accum_type
        self.acc_shift = acc.frac - prod_t.frac
        acc_bias = convert(layer.bias, layer.bias_type, acc)
        self.col_scale = np.full(self.weight_int.shape[1], 2.0**self.acc_shift)
        self.col_offset = acc_bias.astype(np.float64)
        column_sums = np.abs(self.weight_int).sum(axis=0).max(initial=0)
        bound = float(_max_abs(layer.input_type)) * float(column_sums) * 2.0**max(self.acc_shift, 0)
        bound += float(np.abs(acc_bias).max(initial=0))
        # bit_exact accumulators never overflow; skip the wrap when the bound shows it
        self.wrap = acc if bound > acc.max_word or -bound < acc.min_word else None
        acc_range = (float(acc.min_word), float(acc.max_word)) if self.wrap is not None else (-bound, bound)
        self.cast = _Cast.between(acc, layer.result_type, acc_range)
        up_bound = float(_max_abs(acc)) * self.cast.up
        self.fast_ok = (
            acc.overflow == "WRAP"
            and self.acc_shift >= 0
            and bound < EXACT_FLOAT
            and up_bound < EXACT_FLOAT
            and acc.width <= 52
        )

    def _columns(self, x: np.ndarray) -> np.ndarray:
        layer = self.layer
        if isinstance(layer, Conv2DLayer):
            win = _windows(x, layer.input_shape, layer.weight.shape[:2], layer.strides, layer.padding, 0)
            return win.reshape(-1, self.weight_int.shape[0])
        return x

    def ops(self) -> list[_Op] | None:
        if isinstance(self.layer, Conv2DLayer):
            return None
        n_in, n_out = self.weight_f.shape
        return [_Op(n_in, n_out, self.weight_f, self.col_scale, self.col_offset, self.wrap, False, self.cast)]

    def fast(self, x: np.ndarray) -> np.ndarray:
        y = self._columns(x) @ self.weight_f
        out = _run_epilogue(y, self.col_scale, self.col_offset, self.cast, acc=self.wrap)
        return out.reshape(x.shape[0], -1)

    def exact(self, x: np.ndarray, counters: dict[str, OverflowCount]) -> np.ndarray:
        layer = self.layer
        acc = _accumulate_exact(
            self._columns(x), self.weight_int, layer.bias, layer.input_type,
            layer.weight_type, layer.bias_type, layer.accum_type, counters,
        )
        out = convert(acc, layer.accum_type, layer.result_type, counters["result"])
        return out.reshape(x.shape[0], -1)


class _ActivationStep(_Step):
    def __init__(self, layer: ActivationLayer) -> None:
        self.layer = layer
        self.name = layer.name
        self.relu = layer.activation == "relu"
        t = layer.input_type
        self.cast = _Cast.between(
            t, layer.result_type, (0.0 if self.relu else float(t.min_word), float(max(t.max_word, 0)))
        )
        self.fast_ok = float(_max_abs(layer.input_type)) * self.cast.up < EXACT_FLOAT
        n = int(np.prod(layer.output_shape))
        self.ones = np.ones(n)
        self.zeros = np.zeros(n)

    def ops(self) -> list[_Op] | None:
        n = len(self.ones)
        return [_Op(n, n, None, self.ones, self.zeros, None, self.relu, self.cast)]

    def fast(self, x: np.ndarray) -> np.ndarray:
        return _run_epilogue(x, self.ones, self.zeros, self.cast, relu=self.relu)

    def exact(self, x: np.ndarray, counters: dict[str, OverflowCount]) -> np.ndarray:
        if self.relu:
            x = np.maximum(x, 0)
        return convert(x, self.layer.input_type, self.layer.result_type, counters["result"])


class _BatchNormStep(_Step):
    def __init__(self, layer: BatchNormLayer) -> None:
        self.layer = layer
        self.name = layer.name
        n = int(np.prod(layer.output_shape))
        reps = n // len(layer.scale)
        # per channel (last axis) when the scale is shorter than the tensor
        self.scale = np.tile(layer.scale, reps).astype(np.int64)
        self.bias = np.tile(layer.bias, reps).astype(np.int64)
        prod_t = product_type(layer.input_type, layer.scale_type)
        self.sum_t = sum_type(prod_t, layer.bias_type)
        self.prod_shift = self.sum_t.frac - prod_t.frac
        self.bias_shift = self.sum_t.frac - layer.bias_type.frac
        self.col_scale = self.scale * 2.0**self.prod_shift
        self.col_offset = self.bias * 2.0**self.bias_shift
        bound = float(_max_abs(layer.input_type)) * float(np.abs(self.col_scale).max(initial=0))
        bound += float(np.abs(self.col_offset).max(initial=0))
        self.cast = _Cast.between(self.sum_t, layer.result_type, (-bound, bound))
        self.fast_ok = bound < EXACT_FLOAT and bound * self.cast.up < EXACT_FLOAT
        if self.sum_t.width > 62:
            raise ValueError(f"layer {self.name!r}: x * scale + bias needs {self.sum_t.width} bits, more than int64 holds")

    def ops(self) -> list[_Op] | None:
        n = len(self.col_scale)
        return [_Op(n, n, None, self.col_scale, self.col_offset, None, False, self.cast)]

    def fast(self, x: np.ndarray) -> np.ndarray:
        return _run_epilogue(x, self.col_scale, self.col_offset, self.cast)

    def exact(self, x: np.ndarray, counters: dict[str, OverflowCount]) -> np.ndarray:
        total = (x * self.scale) * np.int64(2**self.prod_shift) + self.bias * np.int64(2**self.bias_shift)
        return convert(total, self.sum_t, self.layer.result_type, counters["result"])


class _MaxPoolStep(_Step):
    def __init__(self, layer: MaxPool2DLayer) -> None:
        self.layer = layer
        self.name = layer.name
        self.to_accum = _Cast.between(layer.input_type, layer.accum_type)
        self.to_result = _Cast.between(layer.accum_type, layer.result_type)
        n = int(np.prod(layer.output_shape))
        self.ones = np.ones(n)
        self.zeros = np.zeros(n)
        self.fast_ok = max(self.to_accum.up, self.to_result.up) * _max_abs(layer.input_type) < EXACT_FLOAT

    def fast(self, x: np.ndarray) -> np.ndarray:
        pooled = _run_epilogue(self._pool(x), self.ones, self.zeros, self.to_accum)
        return _run_epilogue(pooled, self.ones, self.zeros, self.to_result)

    def _pool(self, x: np.ndarray) -> np.ndarray:
        layer = self.layer
        win = _windows(x, layer.input_shape, layer.pool_size, layer.strides, layer.padding, layer.input_type.min_word)
        return win.max(axis=(3, 4)).reshape(x.shape[0], -1)

    def exact(self, x: np.ndarray, counters: dict[str, OverflowCount]) -> np.ndarray:
        layer = self.layer
        pooled = convert(self._pool(x), layer.input_type, layer.accum_type, counters["accumulator"])
        return convert(pooled, layer.accum_type, layer.result_type, counters["result"])


class _ReshapeStep(_Step):
    def __init__(self, layer: ReshapeLayer) -> None:
        self.name = layer.name
        self.fast_ok = True

    def ops(self) -> list[_Op] | None:
        return []

    def fast(self, x: np.ndarray) -> np.ndarray:
        return x

    def exact(self, x: np.ndarray, counters: dict[str, OverflowCount]) -> np.ndarray:
        return x


def _make_step(layer: FirmwareLayer) -> _Step:
    try:
        return _step_of(layer)
    except FixedTypeError as exc:
        raise UnsupportedLayerError(f"layer {layer.name!r}: {exc}") from exc


def _step_of(layer: FirmwareLayer) -> _Step:
    if isinstance(layer, (DenseLayer, Conv2DLayer)):
        return _MatmulStep(layer)
    if isinstance(layer, ActivationLayer):
        return _ActivationStep(layer)
    if isinstance(layer, BatchNormLayer):
        return _BatchNormStep(layer)
    if isinstance(layer, MaxPool2DLayer):
        return _MaxPoolStep(layer)
    if isinstance(layer, ReshapeLayer):
        return _ReshapeStep(layer)
    raise TypeError(f"no emulation for layer {layer!r}")


def _fuse(steps: list[_Step]) -> list[_Step]:
    """Group runs of fast, fusable steps (dense, activation, batchnorm, reshape)."""
    grouped: list[_Step] = []
    run: list[_Step] = []
    for step in steps:
        if step.fast_ok and step.ops() is not None:
            run.append(step)
            continue
        if run:
            grouped.append(_FusedStep(run))
            run = []
        grouped.append(step)
    if run:
        grouped.append(_FusedStep(run))
    return grouped


def _new_counters() -> dict[str, OverflowCount]:
    return {"product": OverflowCount(), "accumulator": OverflowCount(), "result": OverflowCount()}


class NNEmulator:
    """Bit-exact emulation of `net` (same words as ``hls_model.predict``)."""

    def __init__(self, net: FirmwareNet, chunk_events: int = CHUNK_EVENTS, workers: int | None = None) -> None:
        self.net = net
        self.chunk_events = chunk_events
        self.workers = workers or os.cpu_count() or 1
        self.layer_steps = [_make_step(layer) for layer in net.layers]
        self.steps = _fuse(self.layer_steps)

    def quantize_inputs(self, x: np.ndarray) -> np.ndarray:
        """Input words for real inputs, as the C++ top level casts doubles to the input type."""
        x = np.asarray(x, dtype=np.float64)
        return quantize(self._flat(x, "inputs"), self.net.input.type)

    def _flat(self, x: np.ndarray, what: str) -> np.ndarray:
        n_in = self.net.n_inputs
        if x.ndim == 1 and x.size == n_in:
            x = x[None, :]
        if x.ndim < 2 or int(np.prod(x.shape[1:])) != n_in:
            raise ValueError(
                f"{what} have shape {x.shape}; the net's input {self.net.input.name} needs "
                f"(events, {', '.join(map(str, self.net.input.shape))}) = {n_in} values per event"
            )
        return x.reshape(len(x), n_in)

    def predict_words(self, input_words: np.ndarray) -> np.ndarray:
        """Output words (events, n_out) for input words (events, n_in) of the input type."""
        words = self._flat(np.asarray(input_words), "input words").astype(np.int64, copy=False)
        t = self.net.input.type
        if words.size and (words.min() < t.min_word or words.max() > t.max_word):
            raise ValueError(
                f"input words span [{words.min()}, {words.max()}] but the input type {t} "
                f"holds [{t.min_word}, {t.max_word}]"
            )
        out = np.empty((len(words), self.net.n_outputs), dtype=np.int64)

        def run(start: int) -> None:
            out[start : start + self.chunk_events] = self._forward(words[start : start + self.chunk_events])

        # Chunks in parallel threads (dgemm and the numba kernels release the
        # GIL), each with single-threaded BLAS: nested thread pools spin-wait
        # against each other and were 10x slower here.
        starts = range(0, len(words), self.chunk_events)
        with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(self.workers) as pool:
            list(pool.map(run, starts))
        return out

    def _forward(self, words: np.ndarray) -> np.ndarray:
        fast = True
        x: np.ndarray = words.astype(np.float64)
        counters = _new_counters()
        for step in self.steps:
            if step.fast_ok:
                if not fast:
                    x = x.astype(np.float64)
                    fast = True
                x = step.fast(x)
            else:
                if fast:
                    x = x.astype(np.int64)
                    fast = False
                x = step.exact(x, counters)
        return x.astype(np.int64) if fast else x

    def predict_words_exact(self, input_words: np.ndarray) -> np.ndarray:
        """The same words through the int64 step-by-step path only (a cross-check)."""
        words = self._flat(np.asarray(input_words), "input words").astype(np.int64)
        for step in self.layer_steps:
            words = step.exact(words, _new_counters())
        return words

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Real outputs for real inputs (what ``hls_model.predict`` returns for float64)."""
        return to_float(self.predict_words(self.quantize_inputs(x)), self.net.output.type)

    def overflow_report(self, input_words: np.ndarray) -> list[LayerOverflow]:
        """Per layer and cast: how many values saturated or wrapped on this sample."""
        words = self._flat(np.asarray(input_words), "input words").astype(np.int64)
        report: list[LayerOverflow] = []
        for step in self.layer_steps:
            counters = _new_counters()
            words = step.exact(words, counters)
            for stage, count in counters.items():
                if count.values:
                    report.append(
                        LayerOverflow(step.name, stage, count.values, count.saturated_high,
                                      count.saturated_low, count.wrapped)
                    )
        return report
