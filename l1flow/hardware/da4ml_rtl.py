"""RTL for the neural nets without vendor tools: da4ml → Verilog → Verilator.

Layering as in da4ml (trace → optimise → generate code), each stage a plain
object you can inspect:

1. :func:`trace_firmware_net` replays the firmware net's integer arithmetic on
   da4ml's symbolic fixed-point variables. The ``ap_fixed`` types read from the
   hls4ml graph are the contract: every cast (product into accumulator, bias,
   accumulator into result, activation) is traced with that type's rounding
   and overflow. da4ml itself rounds only TRN or RND, so the other ``ap_fixed``
   rounding modes are built from truncation (see :func:`convert`), which is
   exact, ties included.
2. :func:`generate_rtl` turns the traced logic into Verilog (combinational or
   pipelined) and records where each firmware word sits on the packed buses;
   :func:`latency_cutoff_for_clock` picks the pipeline's stage cut from the
   clock period (the delay model is documented there).
3. :func:`build_simulator` compiles the Verilog with Verilator and a C++
   harness (``firmware_templates/verilator_nn``) that streams words from a
   file, no Python per event; builds are cached by a hash of their content.
4. :class:`Da4mlRTLSource` wraps all of it behind the HardwareSource verbs.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from l1flow.errors import BadInputError, VerificationFailed
from l1flow.fileio import atomic_folder, sha256_bytes, sha256_file
from l1flow.firmware import fixed
from l1flow.firmware.fixed import FixedType
from l1flow.firmware.netgraph import ActivationLayer, BatchNormLayer, DenseLayer, FirmwareNet, ReshapeLayer
from l1flow.hardware.base import HardwareSource, RTLTool
from l1flow.hardware.verilator import (
    LATENCY_UNOBSERVABLE,
    LATENCY_UNSETTLED,
    RTLBuildError,
    build_verilated_harness,
    run_simulator,
)
from l1flow.synthesis.job import SynthesisJob
from l1flow.templates import template_path

TEMPLATE_DIR = template_path("verilator_nn")
# Float32 holds integers exactly up to 2**24; da4ml's constant-matrix solver works in float32.
_MAX_EXACT_WEIGHT = 1 << 24


class RTLGenerationError(BadInputError):
    """The firmware net cannot be expressed exactly as da4ml RTL."""


# Delay model of da4ml's latency unit. With da4ml's default hardware
# configuration (adder_size 1, no carry blocks) every adder, subtractor, min or
# max costs one unit whatever its width, and wiring, shifts, negations and
# ReLU cost none, so a stage of c units is c adders (one LUT level feeding a
# carry chain each) in series. One such adder, with the routing into the next,
# is taken as ADDER_DELAY_NS on the parts l1flow targets (7-series -2,
# UltraScale+ -2); each stage also loses REGISTER_OVERHEAD_NS to clock-to-out,
# setup and clock skew. This is an estimate to choose the cut; the logic depth
# yosys reports per stage (l1flow.synthesis.yosys) is what to check it with.
ADDER_DELAY_NS = 1.0
REGISTER_OVERHEAD_NS = 0.5


def latency_cutoff_for_clock(clock_period_ns: float) -> float:
    """da4ml's ``latency_cutoff`` (adders in series per stage) for a clock period, at least one adder.

    5 ns gives 4 adders per stage; the default 57-32-16-3-16-32-57 AE, 59 adders
    deep, becomes 15 stages (75 ns).
    """
    if not clock_period_ns > 0:
        raise RTLGenerationError(f"clock period must be positive, got {clock_period_ns} ns")
    return float(max(1, int((clock_period_ns - REGISTER_OVERHEAD_NS) // ADDER_DELAY_NS)))


@dataclass(frozen=True)
class Format:
    """A firmware type in da4ml's terms: sign bit k, integer bits i (without sign), fraction bits f."""

    type: FixedType

    @property
    def k(self) -> int:
        return int(self.type.signed)

    @property
    def i(self) -> int:
        return self.type.integer - self.k

    @property
    def f(self) -> int:
        return self.type.frac

    @property
    def width(self) -> int:
        return self.type.width

    @property
    def rounding(self) -> str:
        # an ap_int / ap_uint destination truncates toward zero and wraps, whatever its modes
        return self._rules.rounding

    @property
    def overflow(self) -> str:
        return self._rules.overflow

    @property
    def _rules(self) -> FixedType:
        return fixed.int_rules(self.type) if self.type.is_int else self.type

    @property
    def low_word(self) -> int:
        return self.type.min_word

    @property
    def high_word(self) -> int:
        return self.type.max_word


def convert_word(word: int, src_frac: int, dst: Format) -> int:
    """Cast one raw word with ``src_frac`` fraction bits into ``dst`` (ap_fixed's rules, l1flow.firmware.fixed)."""
    # at least one integer bit: ap_int's cast of a source without any is not a truncation
    width = max(word.bit_length(), (-word - 1).bit_length()) + 1
    width = max(width, src_frac + 1)
    src = FixedType(width, width - src_frac, True)
    return int(fixed.convert(np.array([word], dtype=np.int64), src, dst.type)[0])


# --------------------------------------------------------------------------- tracing


def _is_const(v: Any) -> bool:
    return v.low == v.high


def _const_word(v: Any, f: int) -> int:
    scaled = Decimal(v.low) * (Decimal(2) ** f)
    if scaled != scaled.to_integral_value():
        raise RTLGenerationError(f"constant {v.low} is not a multiple of 2**-{f}")
    return int(scaled)


def _times_bit(bit: Any, scale: float) -> Any:
    """``bit`` (a variable or bool in {0, 1} at weight 2**-f) times a power-of-two scale."""
    return bit * scale if not isinstance(bit, bool) else float(bit) * scale


def _round(v: Any, f: int, mode: str) -> Any:
    """Round ``v`` to ``f`` fraction bits in ap_fixed mode ``mode`` using only additions and truncation.

    With x's own LSB ``ulp`` and the target LSB ``lsb``, every mode is
    ``trn(x + offset)`` where the offset depends at most on one bit of x:
    RND adds lsb/2; RND_MIN_INF lsb/2 - ulp; RND_CONV (ties to even) adds
    lsb/2 - ulp + ulp * bit_f(x), the bit of x at the target LSB position,
    so a tie rounds up only from an odd quotient; the sign-dependent modes use
    the sign bit the same way. Checked exhaustively against ap_fixed's rule in
    tests/test_da4ml_rtl.py.
    """
    from da4ml.trace.fixed_variable import FixedVariable

    _, _, fs = v.kif
    if fs <= f:
        return v
    lsb, ulp = 2.0**-f, 2.0**-fs
    half = lsb / 2
    offset: Any
    if mode == "TRN":
        offset = 0.0
    elif mode == "RND":
        offset = half
    elif mode == "RND_MIN_INF":
        offset = half - ulp
    elif mode == "RND_CONV":
        target_bit = v.quantize(0, 1 - f, f, "WRAP", "TRN")  # value bit_f(x) * lsb
        offset = target_bit * (ulp / lsb) + (half - ulp)
    else:
        sign = v.is_negative()  # a 1-bit variable (value 0 or 1), or a bool when the sign is known
        if mode == "RND_ZERO":
            offset = _times_bit(sign, ulp) + (half - ulp)
        elif mode == "RND_INF":
            offset = -_times_bit(sign, ulp) + half
        elif mode == "TRN_ZERO":
            offset = _times_bit(sign, lsb - ulp)
        else:
            raise RTLGenerationError(f"unknown rounding mode {mode!r}")
    shifted = v + offset if isinstance(offset, FixedVariable) or offset != 0 else v
    k, i, _ = shifted.kif
    return shifted.quantize(k, i, f, "WRAP", "TRN")


def _select_below(v: Any, c: Decimal, lsb: Decimal, if_below: Any, otherwise: Any) -> Any:
    """``if_below`` where ``v < c`` else ``otherwise``; ``v`` and ``c`` on a grid of ``lsb``.

    da4ml muxes on the sign bit of a key with a positive scale; a variable
    carrying a negative scale (da4ml's lazy negation) reads as its negation,
    whose sign at exactly zero is the opposite, so that case is keyed on
    ``-v < lsb - c`` (that is ``v >= c``) with the arms swapped.
    """
    if v._factor > 0:
        return (v - c).msb_mux(if_below, otherwise)
    return (-v - (lsb - c)).msb_mux(otherwise, if_below)


def convert(v: Any, dst: Format) -> Any:
    """Trace the ap_fixed cast of da4ml variable ``v`` into format ``dst`` (round, then overflow)."""
    from da4ml.trace.fixed_variable import FixedVariable

    if _is_const(v):
        _, _, fs = v.kif
        fs = max(fs, dst.f)
        word = convert_word(_const_word(v, fs), fs, dst)
        return FixedVariable.from_const(Decimal(word) * Decimal(2) ** -dst.f, hwconf=v.hwconf)
    r = _round(v, dst.f, dst.rounding)
    low = Decimal(dst.low_word) * Decimal(2) ** -dst.f
    high = Decimal(dst.high_word) * Decimal(2) ** -dst.f
    if dst.overflow == "SAT_SYM" and dst.k:
        low = -high
    if dst.overflow in ("SAT", "SAT_SYM"):
        r = r.max_of(float(low)).min_of(float(high))
    elif dst.overflow == "SAT_ZERO":
        zero = FixedVariable.from_const(0, hwconf=r.hwconf)
        lsb = Decimal(2) ** -dst.f
        if r.high > high:
            r = _select_below(r, high + lsb, lsb, r, zero)
        if r.low < low:
            r = _select_below(r, low, lsb, zero, r)
    if _is_const(r):
        return convert(r, dst)
    return r.quantize(dst.k, dst.i, dst.f, "WRAP", "TRN")


def trace_dense(
    x: Any,
    x_format: Format,
    weight_words: np.ndarray,
    weight_format: Format,
    bias_words: np.ndarray | None,
    bias_format: Format | None,
    accum_format: Format,
    result_format: Format,
) -> Any:
    """hls4ml's io_parallel dense layer on a FixedVariableArray of shape (n_in,).

    hls4ml casts every product into ``accum_t``, adds the bias cast into
    ``accum_t`` and casts the sum into ``result_t``. When ``accum_t`` keeps all
    product bits the products are exact, and a WRAP accumulator is modular, so
    the whole sum goes through da4ml's constant-matrix optimiser and wraps once.
    """
    from da4ml.trace import FixedVariableArray

    weight_words = np.asarray(weight_words, dtype=np.int64)
    n_in = x.shape[0]
    if weight_words.ndim != 2 or weight_words.shape[0] != n_in:
        raise RTLGenerationError(f"dense weights have shape {weight_words.shape}, expected ({n_in}, n_out)")
    if np.any(np.abs(weight_words) >= _MAX_EXACT_WEIGHT):
        raise RTLGenerationError(
            f"dense weight words reach {int(np.abs(weight_words).max())}; da4ml's optimiser is exact only below 2**24"
        )
    n_out = weight_words.shape[1]
    bias_acc = np.zeros(n_out, dtype=np.int64)
    if bias_words is not None:
        if bias_format is None:
            raise RTLGenerationError("dense bias words given without a bias type")
        bias_acc = np.array([convert_word(int(b), bias_format.f, accum_format) for b in np.ravel(bias_words)])
        if bias_acc.shape != (n_out,):
            raise RTLGenerationError(f"dense bias has {bias_acc.size} words, expected {n_out}")
    bias_values = bias_acc.astype(np.float64) * 2.0**-accum_format.f

    product_f = x_format.f + weight_format.f
    if accum_format.f >= product_f:
        acc = (x @ weight_words.astype(np.float64)) * 2.0**-weight_format.f
    elif accum_format.rounding in ("TRN", "RND", "RND_MIN_INF"):
        # Products lose bits in accum_t: round each one (these modes commute with adding grid values).
        columns = []
        for j in range(n_out):
            terms = [
                _round(x._vars[i] * float(weight_words[i, j] * 2.0**-weight_format.f), accum_format.f, accum_format.rounding)
                for i in range(n_in)
                if weight_words[i, j] != 0
            ]
            total = terms[0] if terms else 0.0
            for term in terms[1:]:
                total = total + term
            columns.append(total)
        acc = FixedVariableArray(np.array(columns, dtype=object), x.solver_options)
    else:
        raise RTLGenerationError(
            f"accumulator rounds products with {accum_format.rounding}, which depends on the running sum; "
            "give the accumulator at least the products' fraction bits (hls4ml bit_exact does)"
        )
    acc = acc + bias_values
    out = []
    for v in acc._vars:
        if accum_format.overflow != "WRAP" and not _is_const(v):
            low = Decimal(accum_format.low_word) * Decimal(2) ** -accum_format.f
            high = Decimal(accum_format.high_word) * Decimal(2) ** -accum_format.f
            if v.low < low or v.high > high:
                raise RTLGenerationError(
                    f"accumulator saturates ({accum_format.overflow}) and the sum can leave its range; "
                    "the result would depend on the order of additions"
                )
        out.append(convert(convert(v, accum_format), result_format))
    return FixedVariableArray(np.array(out, dtype=object), x.solver_options)


def trace_relu(x: Any, result_format: Format) -> Any:
    """hls4ml's ReLU: ``res = data > 0 ? data : 0`` cast into the result type."""
    from da4ml.trace import FixedVariableArray

    out = [convert(v.relu(), result_format) for v in x._vars]
    return FixedVariableArray(np.array(out, dtype=object), x.solver_options)


def trace_cast(x: Any, result_format: Format) -> Any:
    """A linear activation or any plain cast into ``result_format``."""
    from da4ml.trace import FixedVariableArray

    out = [convert(v, result_format) for v in x._vars]
    return FixedVariableArray(np.array(out, dtype=object), x.solver_options)


def trace_batchnorm(x: Any, scale_words: np.ndarray, scale_format: Format, bias_words: np.ndarray,
                    bias_format: Format, result_format: Format) -> Any:
    """hls4ml's ``normalize``: exact ``x * scale + bias`` per channel (last axis) cast into the result type."""
    from da4ml.trace import FixedVariableArray

    n = x.shape[0]
    scale = np.asarray(scale_words, dtype=np.int64).ravel()
    bias = np.asarray(bias_words, dtype=np.int64).ravel()
    if n % scale.size or scale.size != bias.size:
        raise RTLGenerationError(f"batch norm has {scale.size} scales and {bias.size} biases for {n} values")
    out = []
    for i, v in enumerate(x._vars):
        c = i % scale.size
        total = v * float(scale[c] * 2.0**-scale_format.f) + float(bias[c] * 2.0**-bias_format.f)
        out.append(convert(total, result_format))
    return FixedVariableArray(np.array(out, dtype=object), x.solver_options)


def trace_firmware_net(net: FirmwareNet) -> Any:
    """da4ml combinational logic (``CombLogic``) computing ``net`` word for word."""
    from da4ml.trace import FixedVariableArrayInput, comb_trace

    fin = Format(net.input.type)
    inputs = FixedVariableArrayInput(net.n_inputs)
    x = inputs.quantize(fin.k, fin.i, fin.f)
    for layer in net.layers:
        if isinstance(layer, DenseLayer):
            x = trace_dense(
                x, Format(layer.input_type), layer.weight, Format(layer.weight_type), layer.bias,
                Format(layer.bias_type), Format(layer.accum_type), Format(layer.result_type),
            )
        elif isinstance(layer, ActivationLayer):
            if layer.activation == "relu":
                x = trace_relu(x, Format(layer.result_type))
            elif layer.activation == "linear":
                x = trace_cast(x, Format(layer.result_type))
            else:
                raise RTLGenerationError(f"layer {layer.name!r}: activation {layer.activation!r} has no da4ml RTL")
        elif isinstance(layer, BatchNormLayer):
            x = trace_batchnorm(
                x, layer.scale, Format(layer.scale_type), layer.bias, Format(layer.bias_type), Format(layer.result_type)
            )
        elif isinstance(layer, ReshapeLayer):
            continue  # io_parallel arrays keep their order
        else:
            raise RTLGenerationError(
                f"layer {layer.name!r} ({layer.kind}) has no da4ml RTL here; supported: dense, relu/linear, "
                "batch norm, reshape"
            )
    return comb_trace(inputs._vars, x._vars)


# --------------------------------------------------------------------------- Verilog generation


@dataclass(frozen=True)
class BusSlot:
    """Where one firmware word sits on a packed da4ml bus.

    ``shift`` is how far the RTL value's LSB sits above the firmware type's
    LSB (da4ml drops low bits that are always zero); width 0 means the word
    is constant zero (an unused input, or an output tied to 0).
    """

    offset: int
    width: int
    signed: bool
    shift: int


@dataclass(frozen=True)
class RTLDesign:
    """Generated Verilog of a traced net and the layout of its packed buses."""

    top: str
    sources: dict[str, str]
    inputs: tuple[BusSlot, ...]
    outputs: tuple[BusSlot, ...]
    latency_cycles: int
    estimated_luts: float
    logic_delay: float
    #: the combinational module of each pipeline stage, in order (none for a combinational design)
    stage_modules: tuple[str, ...] = ()

    @property
    def input_bits(self) -> int:
        return sum(s.width for s in self.inputs)

    @property
    def output_bits(self) -> int:
        return sum(s.width for s in self.outputs)

    def to_json(self) -> dict[str, Any]:
        return {
            "top": self.top,
            "inputs": [asdict(s) for s in self.inputs],
            "outputs": [asdict(s) for s in self.outputs],
            "latency_cycles": self.latency_cycles,
            # every stage is pure logic between registers: a new event each clock
            "ii_cycles": 1,
            "estimated_luts": self.estimated_luts,
            "logic_delay": self.logic_delay,
            "stage_modules": list(self.stage_modules),
        }


def _slots(qints: list[Any], formats: list[Format], label: str) -> tuple[BusSlot, ...]:
    from da4ml.cmvm.types import _minimal_kif

    slots, offset = [], 0
    for n, (qint, fmt) in enumerate(zip(qints, formats)):
        k, i, f = (int(v) for v in _minimal_kif(qint))
        width = k + i + f
        if width == 0:
            slots.append(BusSlot(offset, 0, False, 0))
            continue
        if f > fmt.f or k + i > fmt.k + fmt.i:
            raise RTLGenerationError(
                f"{label} word {n}: the RTL value needs (k={k}, i={i}, f={f}), "
                f"more than its firmware type (k={fmt.k}, i={fmt.i}, f={fmt.f})"
            )
        slots.append(BusSlot(offset, width, bool(k), fmt.f - f))
        offset += width
    return tuple(slots)


def generate_rtl(
    comb: Any,
    input_formats: list[Format],
    output_formats: list[Format],
    top: str = "l1flow_nn",
    latency_cutoff: float | None = None,
) -> RTLDesign:
    """Verilog for traced logic: combinational, or pipelined with about ``latency_cutoff`` adder delays per stage."""
    import da4ml.codegen.rtl as rtl_pkg
    from da4ml.codegen.rtl.verilog import comb_logic_gen, pipeline_logic_gen
    from da4ml.trace import to_pipeline

    if len(input_formats) != comb.shape[0] or len(output_formats) != comb.shape[1]:
        raise RTLGenerationError(
            f"traced logic has {comb.shape} inputs/outputs, formats given for "
            f"{len(input_formats)}/{len(output_formats)}"
        )
    inputs = _slots(list(comb.inp_qint), input_formats, "input")
    for n, (slot, fmt) in enumerate(zip(inputs, input_formats)):
        if slot.width and (slot.width != fmt.width or slot.shift != 0):
            raise RTLGenerationError(f"input word {n} was traced as {slot}, not as its firmware type {fmt}")
    sources: dict[str, str] = {}
    stage_modules: tuple[str, ...] = ()
    if latency_cutoff is not None and latency_cutoff > 0:
        pipe = to_pipeline(comb, latency_cutoff, verbose=False)
        for name, code in pipeline_logic_gen(pipe, top, print_latency=False).items():
            sources[f"{name}.v"] = code
        # da4ml registers every stage's input and the output: a result leaves one clock per stage after entry
        latency = len(pipe.solutions)
        stage_modules = tuple(f"{top}_stage{i}" for i in range(latency))
        out_qint = list(pipe.out_qint)
    else:
        sources[f"{top}.v"] = comb_logic_gen(comb, top, print_latency=False, timescale="`timescale 1ns/1ps")
        latency = 0
        out_qint = list(comb.out_qint)
    # Only the library modules the design instantiates: lookup_table.v, for one,
    # reads a ROM file that does not exist and stops yosys when it is read.
    library = {p.stem: p.read_text() for p in (Path(rtl_pkg.__file__).parent / "verilog" / "source").glob("*.v")}
    needed: set[str] = set()
    pending = list(sources.values())
    while pending:
        code = pending.pop()
        for name in library.keys() - needed:
            if re.search(rf"(?<!module )\b{name}\s*(#\s*\(|[A-Za-z_]\w*\s*\()", code):
                needed.add(name)
                pending.append(library[name])
    for name in sorted(needed):
        sources[f"{name}.v"] = library[name]
    outputs = _slots(out_qint, output_formats, "output")
    return RTLDesign(
        top, sources, inputs, tuple(outputs), latency, float(comb.cost), float(comb.latency[1]), stage_modules
    )


def harness_config(design: RTLDesign) -> str:
    """The C++ header that tells the harness the bus layout of ``design``."""

    def array(name: str, values: list[int]) -> str:
        body = ", ".join(str(v) for v in values) if values else "0"
        return f"static const int {name}[] = {{{body}}};"

    return "\n".join(
        [
            "// generated by l1flow.hardware.da4ml_rtl: bus layout of the Verilated design",
            "#pragma once",
            '#include "Vtop.h"',
            "#define TOP_CLASS Vtop",
            f"#define CLOCKED {int(design.latency_cycles > 0)}",
            f"#define LATENCY {design.latency_cycles}",
            f"#define N_IN {len(design.inputs)}",
            f"#define N_OUT {len(design.outputs)}",
            f"#define IN_BITS {max(design.input_bits, 1)}",
            f"#define OUT_BITS {max(design.output_bits, 1)}",
            array("IN_OFFSET", [s.offset for s in design.inputs]),
            array("IN_WIDTH", [s.width for s in design.inputs]),
            array("OUT_OFFSET", [s.offset for s in design.outputs]),
            array("OUT_WIDTH", [s.width for s in design.outputs]),
            array("OUT_SIGNED", [int(s.signed) for s in design.outputs]),
            array("OUT_SHIFT", [s.shift for s in design.outputs]),
            "",
        ]
    )


# --------------------------------------------------------------------------- Verilator build


def build_simulator(
    source_dir: Path,
    top: str,
    config_header: str,
    cache_dir: Path | None = None,
    jobs: int | None = None,
) -> Path:
    """Verilate the ``*.v`` files in ``source_dir`` with the streaming NN harness; return the executable."""
    source_dir = Path(source_dir)
    files = sorted(source_dir.glob("*.v"))
    if not files:
        raise RTLBuildError(f"{source_dir}: no Verilog (*.v) files to build; run write() first")
    return build_verilated_harness(
        {p.name: p.read_text() for p in files},
        top,
        TEMPLATE_DIR / "harness.cpp",
        {"harness_config.h": config_header},
        cache_dir=cache_dir,
        jobs=jobs,
        what=f"{top} from {source_dir}",
    )


# --------------------------------------------------------------------------- the hardware source

DESIGN_FILE = "design.json"
# Bumped when design.json or the generated files change shape, so old project folders are rewritten.
_PROJECT_LAYOUT = 4


def net_digest(net: FirmwareNet, latency_cutoff: float | None) -> str:
    """Content hash of everything the generated RTL depends on."""
    import da4ml

    identity = f"layout {_PROJECT_LAYOUT}|da4ml {da4ml.__version__}|cutoff {latency_cutoff}|{net.content_hash()}"
    return hashlib.sha256(identity.encode()).hexdigest()


class Da4mlRTLSource(HardwareSource):
    """A FirmwareNet traced by da4ml into Verilog and simulated with Verilator.

    ``latency_cutoff`` (in da4ml's adder-delay units; the pipeline takes it
    from the clock period with :func:`latency_cutoff_for_clock`) pipelines the
    design into registered stages, one event per clock; ``None`` keeps it
    combinational (latency 0, the fastest to simulate). ``write()`` lays out
    ``src/*.v``, the harness config and ``design.json`` (bus layout, latency,
    stage modules, estimated LUTs, net hash); ``compile()`` builds what is on
    disk, so an edited Verilog file is what gets simulated. ``run()`` checks
    the latency the harness observes against the generator's.
    """

    source = "verilator-da4ml"

    def __init__(
        self,
        net: FirmwareNet,
        project_dir: Path,
        latency_cutoff: float | None = None,
        cache_dir: Path | None = None,
        threads: int | None = None,
        top: str = "l1flow_nn",
    ) -> None:
        super().__init__(project_dir)
        self.net = net
        self.latency_cutoff = latency_cutoff
        self.cache_dir = cache_dir
        self.threads = threads
        self.top = top
        self._executable: Path | None = None

    @property
    def src_dir(self) -> Path:
        return self.project_dir / "src"

    def _read_design(self) -> dict[str, Any] | None:
        path = self.project_dir / DESIGN_FILE
        if not path.exists():
            return None
        return json.loads(path.read_text())

    def _written_design(self) -> dict[str, Any]:
        design = self._read_design()
        if design is None:
            raise RTLBuildError(f"{self.project_dir}: no {DESIGN_FILE}; call write() first")
        return design

    def _written_intact(self, digest: str) -> bool:
        design = self._read_design()
        if design is None or design.get("net_hash") != digest:
            return False
        for name, sha in design.get("sources", {}).items():
            path = self.src_dir / name
            if not path.exists() or sha256_file(path) != sha:
                return False
        return True

    def write(self) -> None:
        """Trace, generate and write the RTL project (skipped when the same net is already written intact)."""
        digest = net_digest(self.net, self.latency_cutoff)
        if self._written_intact(digest):
            return
        comb = trace_firmware_net(self.net)
        design = generate_rtl(
            comb,
            [Format(self.net.input.type)] * self.net.n_inputs,
            [Format(self.net.output.type)] * self.net.n_outputs,
            top=self.top,
            latency_cutoff=self.latency_cutoff,
        )
        with atomic_folder(self.project_dir) as tmp:
            (tmp / "src").mkdir()
            for name, code in design.sources.items():
                (tmp / "src" / name).write_text(code)
            (tmp / "harness_config.h").write_text(harness_config(design))
            meta = design.to_json()
            meta["net_hash"] = digest
            meta["latency_cutoff"] = self.latency_cutoff
            meta["sources"] = {n: sha256_bytes(c.encode()) for n, c in design.sources.items()}
            (tmp / DESIGN_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        self._executable = None

    def compile(self) -> None:
        """Build (or reuse from the cache) the simulator of the Verilog now in ``src/``."""
        design = self._written_design()
        header = (self.project_dir / "harness_config.h").read_text()
        self._executable = build_simulator(self.src_dir, design["top"], header, cache_dir=self.cache_dir)

    def run(self, input_words: np.ndarray) -> np.ndarray:
        words = np.asarray(input_words, dtype=np.int64)
        if words.ndim != 2 or words.shape[1] != self.net.n_inputs:
            raise ValueError(
                f"input words have shape {words.shape}; {self.net.input.name} needs (events, {self.net.n_inputs})"
            )
        t = self.net.input.type
        if words.size and (words.min() < t.min_word or words.max() > t.max_word):
            raise ValueError(
                f"input words span [{words.min()}, {words.max()}], outside {t} [{t.min_word}, {t.max_word}]"
            )
        if self._executable is None:
            self.compile()
        assert self._executable is not None
        run = run_simulator(self._executable, words, self.net.n_outputs, self.threads)
        self.measured_latency_cycles = self._checked_latency(run.latency_cycles) if len(words) else None
        return run.output_words

    def _checked_latency(self, measured: int | None) -> int | None:
        """The harness's observed latency, raising VerificationFailed where it contradicts the generator's."""
        stated = self.latency_cycles
        where = f"{self.project_dir}: the Verilated {self.top}"
        if measured is None:
            raise RTLBuildError(f"{where} reported no latency; its harness predates the latency probe, rebuild it")
        if measured == LATENCY_UNOBSERVABLE:
            return None  # every probed event gives the same output: nothing to time, the words are still gated
        if measured == LATENCY_UNSETTLED:
            raise VerificationFailed(
                f"{where}: the output never showed a new event's result within the probe's cycles; "
                f"design.json states a latency of {stated} cycles"
            )
        if measured != stated:
            raise VerificationFailed(
                f"{where} delivers each result {measured} clock cycles after its input, design.json states "
                f"{stated}: the RTL in {self.src_dir} is not what the generator wrote (rewrite it with write())"
            )
        return measured

    def synthesis_job(
        self, tool: RTLTool, part: str, clock_period_ns: float, timeout_s: float
    ) -> SynthesisJob:
        """The generated Verilog as a synthesis job; latency from ``design.json`` (the generator's)."""
        design = self._written_design()
        return SynthesisJob(
            project_dir=self.project_dir,
            project_kind="rtl",
            tool=tool,
            steps=("synth",) if tool == "yosys" else ("vsynth",),
            part=part,
            clock_period_ns=clock_period_ns,
            top=design["top"],
            rtl_files=tuple(Path(self.src_dir.name) / name for name in sorted(design["sources"])),
            metadata_file=Path(DESIGN_FILE),
            depth_modules=tuple(design.get("stage_modules", ())),
            timeout_s=timeout_s,
        )

    @property
    def latency_cycles(self) -> int:
        """Clock cycles from input to output (0: combinational), from the generator."""
        return int(self._written_design()["latency_cycles"])

    @property
    def logic_delay(self) -> float:
        """da4ml's estimate of the combinational critical path, in its adder-delay units."""
        return float(self._written_design()["logic_delay"])

    @property
    def estimated_luts(self) -> float:
        """da4ml's own LUT estimate of the adder graph (yosys gives the real count)."""
        return float(self._written_design()["estimated_luts"])
