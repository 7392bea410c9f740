"""ap_fixed / ap_ufixed / ap_int / ap_uint arithmetic on int64 numpy arrays.

A value of ``ap_fixed<W,I,Q,O>`` is held as its raw word, the two's complement
integer ``value * 2**(W-I)`` in int64 (docs/formats.md, "Words"): emulation and
hardware are compared on these words, never on printed decimals. Conversions reproduce the
assignment operator of Xilinx's ``ap_fixed_base.h`` (the copy shipped in
hls4ml): the dropped fraction bits are rounded with the *destination's*
quantization mode, then the *destination's* overflow mode applies to the
rounded value. The header's bit-level carry logic is equivalent to doing the
same on the exact integer, which is what this module does; the tests compare
with the compiled header on millions of values per mode pair.

An ``ap_int<N>`` / ``ap_uint<N>`` destination follows ``ap_int_base`` instead,
whatever modes it carries: from a double it truncates toward zero and wraps,
except that a negative value above -0.5 becomes +1 (the constructor sets -1
for "too small" negative values, then negates); from an ``ap_fixed`` it
truncates toward zero (``to_ap_int_base``) and wraps, except that a signed
source with no integer bits gives -1 for every negative word (a floor). A source with
negative integer bits leaves that word uninitialised in the header (g++ -O0
and -O2 disagree), so it is refused.

Words live in int64, so a signed type holds at most 64 bits and an unsigned
one at most 63.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from l1flow.errors import BadInputError

ROUNDING_MODES = ("TRN", "TRN_ZERO", "RND", "RND_ZERO", "RND_MIN_INF", "RND_INF", "RND_CONV")
OVERFLOW_MODES = ("WRAP", "SAT", "SAT_ZERO", "SAT_SYM")

_TYPE_PATTERN = re.compile(r"^\s*(ap_fixed|ap_ufixed|ap_int|ap_uint)\s*<([^<>]*)>\s*$")


class FixedTypeError(BadInputError):
    """A fixed-point type spelling or parameter that this module cannot represent."""


@dataclass(frozen=True)
class FixedType:
    """One ``ap_fixed``-family type: total width, integer bits (incl. sign), modes.

    ``ap_int<N>`` / ``ap_uint<N>`` are ``FixedType(N, N, signed, is_int=True)``:
    ``is_int`` changes how values are converted *into* the type (see the
    module docstring), so it takes part in equality; their modes are ignored.
    """

    width: int
    integer: int
    signed: bool = True
    rounding: str = "TRN"
    overflow: str = "WRAP"
    is_int: bool = False

    def __post_init__(self) -> None:
        if self.width < 1:
            raise FixedTypeError(f"width must be >= 1, got {self.width}")
        limit = 64 if self.signed else 63
        if self.width > limit:
            kind = "signed" if self.signed else "unsigned"
            raise FixedTypeError(
                f"{self!s}: a {kind} word of {self.width} bits does not fit in int64 "
                f"(at most {limit} bits)"
            )
        if self.rounding not in ROUNDING_MODES:
            raise FixedTypeError(f"rounding mode {self.rounding!r} is not one of {', '.join(ROUNDING_MODES)}")
        if self.overflow not in OVERFLOW_MODES:
            raise FixedTypeError(f"overflow mode {self.overflow!r} is not one of {', '.join(OVERFLOW_MODES)}")
        if self.is_int and self.integer != self.width:
            raise FixedTypeError("an ap_int/ap_uint type has integer == width")

    @classmethod
    def parse(cls, text: str) -> FixedType:
        """Read the C++ spelling, e.g. ``ap_fixed<16,6,AP_RND_CONV,AP_SAT>`` or ``ap_uint<8>``."""
        match = _TYPE_PATTERN.match(text)
        if match is None:
            raise FixedTypeError(
                f"cannot read fixed-point type {text!r}: expected ap_fixed<W,I[,Q[,O[,N]]]>, "
                "ap_ufixed<...>, ap_int<W> or ap_uint<W>"
            )
        kind, args_text = match.groups()
        args = [a.strip() for a in args_text.split(",")]
        signed = kind in ("ap_fixed", "ap_int")
        try:
            if kind in ("ap_int", "ap_uint"):
                if len(args) != 1:
                    raise FixedTypeError(f"{text!r}: {kind} takes one parameter, the width")
                width = int(args[0])
                return cls(width, width, signed, is_int=True)
            if not 2 <= len(args) <= 5:
                raise FixedTypeError(f"{text!r}: {kind} takes 2 to 5 parameters")
            width, integer = int(args[0]), int(args[1])
        except ValueError as exc:
            raise FixedTypeError(f"{text!r}: width and integer bits must be integers") from exc
        rounding = _strip_ap(args[2], text) if len(args) > 2 else "TRN"
        overflow = _strip_ap(args[3], text) if len(args) > 3 else "WRAP"
        if len(args) > 4 and args[4] != "0":
            raise FixedTypeError(f"{text!r}: saturation bits N != 0 are not supported")
        return cls(width, integer, signed, rounding, overflow)

    def __str__(self) -> str:
        if self.is_int:
            return f"ap_{'' if self.signed else 'u'}int<{self.width}>"
        kind = "ap_fixed" if self.signed else "ap_ufixed"
        if self.overflow != "WRAP":
            return f"{kind}<{self.width},{self.integer},AP_{self.rounding},AP_{self.overflow}>"
        if self.rounding != "TRN":
            return f"{kind}<{self.width},{self.integer},AP_{self.rounding}>"
        return f"{kind}<{self.width},{self.integer}>"

    @property
    def frac(self) -> int:
        """Fraction bits ``W - I`` (negative when the LSB weighs more than 1)."""
        return self.width - self.integer

    @property
    def min_word(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max_word(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def lsb(self) -> float:
        """Value of one word step, ``2**-frac``."""
        return float(2.0**-self.frac)

    def with_modes(self, rounding: str | None = None, overflow: str | None = None) -> FixedType:
        """The ``ap_fixed`` type of the same bits with other modes (an int type becomes ap_fixed<N,N>)."""
        return FixedType(
            self.width,
            self.integer,
            self.signed,
            rounding or self.rounding,
            overflow or self.overflow,
        )


def _strip_ap(mode: str, text: str) -> str:
    if not mode.startswith("AP_"):
        raise FixedTypeError(f"{text!r}: mode {mode!r} must be spelt AP_...")
    return mode[3:]


def product_type(a: FixedType, b: FixedType) -> FixedType:
    """Type of ``a * b`` as ap_fixed defines it (exact product, TRN/WRAP)."""
    return FixedType(a.width + b.width, a.integer + b.integer, a.signed or b.signed)


def sum_type(a: FixedType, b: FixedType) -> FixedType:
    """Type of ``a + b`` as ap_fixed defines it (one carry bit over both)."""
    integer = max(a.integer + (b.signed and not a.signed), b.integer + (a.signed and not b.signed)) + 1
    return FixedType(integer + max(a.frac, b.frac), integer, a.signed or b.signed)


@dataclass
class OverflowCount:
    """How many values of one conversion left the destination's range."""

    values: int = 0
    saturated_high: int = 0
    saturated_low: int = 0
    wrapped: int = 0

    def add(self, other: OverflowCount) -> None:
        self.values += other.values
        self.saturated_high += other.saturated_high
        self.saturated_low += other.saturated_low
        self.wrapped += other.wrapped

    @property
    def overflowed(self) -> int:
        return self.saturated_high + self.saturated_low + self.wrapped


def _round_increment(q: np.ndarray, half: np.ndarray, rest: np.ndarray, negative: np.ndarray, mode: str) -> np.ndarray:
    """0/1 to add to the floor ``q`` given the first dropped bit and the rest.

    Mirrors ``quantization_adjust`` of ap_fixed_base.h: ``half`` is the first
    dropped bit, ``rest`` whether any lower dropped bit is set, ``negative``
    the sign of the source value.
    """
    if mode == "TRN":
        return np.zeros(q.shape, dtype=bool)
    if mode == "TRN_ZERO":
        return negative & (half | rest)
    if mode == "RND":
        return half
    if mode == "RND_ZERO":
        return half & (negative | rest)
    if mode == "RND_MIN_INF":
        return half & rest
    if mode == "RND_INF":
        return half & (~negative | rest)
    if mode == "RND_CONV":
        return half & ((q & 1).astype(bool) | rest)
    raise FixedTypeError(f"unknown rounding mode {mode!r}")


def int_rules(t: FixedType) -> FixedType:
    """The ``ap_fixed`` modes that convert into integer type ``t`` as ``ap_int_base`` does.

    Truncation toward zero, then wrap; the quirks (a negative double above
    -0.5, a source without integer bits) are handled by ``quantize`` and
    ``conversion_rules``.
    """
    if not t.is_int:
        raise FixedTypeError(f"{t} is not an ap_int / ap_uint type")
    return FixedType(t.width, t.width, t.signed, "TRN_ZERO", "WRAP")


def conversion_rules(src: FixedType, dst: FixedType) -> FixedType:
    """The ``ap_fixed`` type whose own rounding and overflow convert ``src`` into ``dst``.

    ``dst`` itself unless it is an integer type; for that, ``int_rules(dst)``,
    except from a source without integer bits: ``to_ap_int_base()`` starts
    from a 1-bit word 0 and increments it for a negative source, which signed
    is -1, so it floors. A source with negative integer bits is refused.
    """
    if not dst.is_int:
        return dst
    if src.frac > 0 and src.integer < 0:
        raise FixedTypeError(
            f"{src} -> {dst}: the ap_types headers leave the integer word uninitialised for a source "
            "with negative integer bits (undefined: g++ -O0 and -O2 give different words); "
            "give the source at least one integer bit"
        )
    if src.frac > 0 and src.integer == 0:
        return FixedType(dst.width, dst.width, dst.signed, "TRN", "WRAP")
    return int_rules(dst)


def _wrap(values: np.ndarray, t: FixedType) -> np.ndarray:
    """Keep the low ``t.width`` bits, sign-extended for signed types (modular)."""
    if t.width == 64:
        return values
    shift = np.uint64(64 - t.width)
    raw = values.view(np.uint64) << shift
    if t.signed:
        return raw.view(np.int64) >> shift.astype(np.int64)
    return (raw >> shift).view(np.int64)


def _apply_overflow(
    ideal: np.ndarray, t: FixedType, counter: OverflowCount | None, high: np.ndarray, low: np.ndarray
) -> np.ndarray:
    """Map exact (in-int64) rounded words onto ``t``'s range with its overflow mode.

    ``high``/``low`` say which values exceed the range; for WRAP the low bits
    of ``ideal`` are kept, which is exact even when ``ideal`` itself wrapped
    in int64 (only for shifted-left words, whose low bits are still exact).
    """
    if t.overflow == "SAT_SYM" and t.signed:
        # ap_fixed's symmetric saturation also moves the most negative word.
        low = low | ((ideal == t.min_word) & ~high)
    if counter is not None:
        counter.values += int(ideal.size)
    if t.overflow == "WRAP":
        if counter is not None:
            counter.wrapped += int(np.count_nonzero(high | low))
        return _wrap(ideal, t)
    if counter is not None:
        counter.saturated_high += int(np.count_nonzero(high))
        counter.saturated_low += int(np.count_nonzero(low))
    if not (high.any() or low.any()):
        return ideal
    if t.overflow == "SAT_ZERO":
        rail_high, rail_low = 0, 0
    elif t.overflow == "SAT_SYM" and t.signed:
        rail_high, rail_low = t.max_word, -t.max_word
    else:
        rail_high, rail_low = t.max_word, t.min_word
    out = ideal.copy()
    out[high] = rail_high
    out[low] = rail_low
    return out


def convert(
    words: np.ndarray, src: FixedType, dst: FixedType, counter: OverflowCount | None = None
) -> np.ndarray:
    """Words of ``src`` assigned to ``dst`` exactly as ``dst x = src_value;`` does.

    ``counter``, if given, accumulates how many values saturated or wrapped.
    """
    words = np.asarray(words, dtype=np.int64)
    if dst.is_int:
        dst = conversion_rules(src, dst)
    shift = src.frac - dst.frac
    if shift > 0:
        # Drop `shift` fraction bits, rounding with dst's mode.
        if shift >= 64:
            q = np.where(words < 0, np.int64(-1), np.int64(0))
            dropped = words
        else:
            q = words >> np.int64(shift)
            dropped = words & np.int64((1 << shift) - 1)
        # The first dropped bit and whether any bit below it is set; past
        # bit 63 both read the sign extension.
        half = ((dropped >> np.int64(min(shift - 1, 63))) & 1) == 1
        rest = (dropped & np.int64((1 << min(shift - 1, 63)) - 1)) != 0 if shift <= 64 else dropped != 0
        ideal = q + _round_increment(q, half, rest, words < 0, dst.rounding)
        high = ideal > dst.max_word
        low = ideal < dst.min_word
    elif shift < 0:
        left = -shift
        # Range check in the source's units, before the shift can leave int64.
        high = words > (dst.max_word >> left)
        low = words < -((-dst.min_word) >> left)
        if left >= 64:
            ideal = np.zeros_like(words)
        else:
            ideal = (words.view(np.uint64) << np.uint64(left)).view(np.int64)
    else:
        ideal = words
        high = words > dst.max_word
        low = words < dst.min_word
    return _apply_overflow(ideal, dst, counter, high, low)


def quantize(values: np.ndarray, t: FixedType, counter: OverflowCount | None = None) -> np.ndarray:
    """Words of ``t`` for real values, exactly as ``t x = (double)value;`` does.

    Exact for float64 (and float32) inputs; NaN and infinities are refused.
    An integer ``t`` follows ``ap_int_base(double)`` (see the module docstring).
    """
    values = np.asarray(values, dtype=np.float64)
    if not np.isfinite(values).all():
        bad = int(np.count_nonzero(~np.isfinite(values)))
        raise ValueError(f"{bad} input value(s) are NaN or infinite; they have no {t} word")
    dst = int_rules(t) if t.is_int else t
    # Scaling by a power of two is exact; floor and the remainder are exact too.
    scaled = np.ldexp(values, t.frac)
    floor = np.floor(scaled)
    remainder = scaled - floor
    big = np.abs(floor) >= 2.0**62
    if big.any():
        # Beyond int64 every value is an integer far out of range: keep its
        # sign for saturation and its low 64 bits (fmod is exact) for WRAP.
        low_bits = np.fmod(floor[big], 2.0**64)
        low_bits = np.where(low_bits >= 2.0**63, low_bits - 2.0**64, low_bits)
        low_bits = np.where(low_bits < -(2.0**63), low_bits + 2.0**64, low_bits)
        floor = floor.copy()
        floor[big] = 0.0
    q = floor.astype(np.int64)
    ideal = q + _round_increment(q, remainder >= 0.5, (remainder != 0.0) & (remainder != 0.5), values < 0, dst.rounding)
    if t.is_int:
        # ap_int_base(double) sets -1 when the exponent says |x| < 0.5, then
        # negates it for a negative x.
        ideal = np.where((values < 0) & (values > -0.5), np.int64(1), ideal)
    high = ideal > t.max_word
    low = ideal < t.min_word
    if big.any():
        ideal[big] = low_bits.astype(np.int64)
        high[big] = values[big] > 0
        low[big] = values[big] < 0
    return _apply_overflow(ideal, dst, counter, high, low)


def to_float(words: np.ndarray, t: FixedType) -> np.ndarray:
    """Real values of words (exact in float64 for widths up to 53 bits)."""
    return np.ldexp(np.asarray(words, dtype=np.float64), -t.frac)


def check_words(words: np.ndarray, t: FixedType, where: str) -> None:
    """Raise a clear error if any word lies outside ``t``'s range."""
    words = np.asarray(words)
    if words.size == 0:
        return
    lo, hi = int(words.min()), int(words.max())
    if lo < t.min_word or hi > t.max_word:
        raise ValueError(
            f"{where}: words span [{lo}, {hi}] but {t} holds [{t.min_word}, {t.max_word}]"
        )
