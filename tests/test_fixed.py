"""l1flow.firmware.fixed against the real ap_fixed headers compiled with g++.

One C++ program (tests/cpp/ap_fixed_reference.cpp) is generated with every
case, compiled once per session, and run once; each (rounding x overflow)
combination sees well over a million values across the type pairs, with
exact ties and values at and beyond the rails mixed in.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from l1flow.firmware.fixed import (
    OVERFLOW_MODES,
    ROUNDING_MODES,
    FixedType,
    FixedTypeError,
    OverflowCount,
    convert,
    int_rules,
    product_type,
    quantize,
    sum_type,
    to_float,
)
from l1flow.toolchain import ap_types_include

CPP_DIR = Path(__file__).parent / "cpp"
MODES = list(itertools.product(ROUNDING_MODES, OVERFLOW_MODES))

# (source, destination without modes): narrowing, sign changes, negative and
# over-wide integer parts, left shifts, shifts past 64 bits, 64-bit sources.
WORD_PAIRS = [
    ("ap_fixed<16,6>", (8, 3, True)),
    ("ap_fixed<24,10>", (10, 4, False)),
    ("ap_ufixed<12,5>", (7, 2, True)),
    ("ap_ufixed<14,3>", (9, 1, False)),
    ("ap_fixed<18,-2>", (6, -5, True)),
    ("ap_fixed<20,4>", (10, 14, True)),
    ("ap_fixed<10,8>", (8, 2, True)),
    ("ap_int<13>", (9, 5, True)),
    ("ap_fixed<12,-60>", (6, 3, True)),
    ("ap_fixed<64,32>", (16, 8, True)),
]
WORDS_PER_PAIR = 110_000
DOUBLE_TYPES = [(8, 3, True), (12, 1, False), (6, -3, True), (10, 14, True)]
DOUBLES_PER_TYPE = 260_000
TYPE_PAIRS = [
    ("ap_fixed<16,6>", "ap_fixed<8,3>"),
    ("ap_ufixed<12,5>", "ap_fixed<7,2>"),
    ("ap_fixed<10,-2>", "ap_ufixed<6,8>"),
    ("ap_ufixed<9,9>", "ap_ufixed<4,1>"),
    ("ap_int<7>", "ap_fixed<11,3>"),
]
# Integer destinations follow ap_int_base, whatever modes: every type below is
# assigned a million doubles, and each (source, destination) word pair a
# million words; sources with fraction bits, with I > W, with I == 0 (the -1
# quirk), integer to integer, and a source whose own modes must not matter.
INT_TYPES = ["ap_int<1>", "ap_uint<1>", "ap_int<8>", "ap_uint<8>", "ap_int<10>", "ap_uint<10>",
             "ap_int<16>", "ap_uint<16>", "ap_int<32>", "ap_uint<32>", "ap_int<64>"]
INT_WORD_SOURCES = [
    ("ap_fixed<16,6>", ["ap_int<1>", "ap_int<8>", "ap_uint<8>", "ap_int<10>"]),
    ("ap_ufixed<12,5>", ["ap_int<4>", "ap_uint<3>"]),
    ("ap_fixed<24,18>", ["ap_int<16>", "ap_uint<10>"]),
    ("ap_fixed<8,0>", ["ap_int<8>", "ap_uint<8>"]),
    ("ap_ufixed<8,0>", ["ap_int<8>"]),
    ("ap_fixed<8,12>", ["ap_int<6>", "ap_uint<16>"]),
    ("ap_int<13>", ["ap_int<8>", "ap_uint<5>", "ap_int<16>"]),
    ("ap_uint<12>", ["ap_int<10>", "ap_uint<32>"]),
    ("ap_fixed<64,32>", ["ap_int<32>", "ap_int<64>", "ap_uint<16>"]),
    ("ap_fixed<40,34,AP_RND_CONV,AP_SAT>", ["ap_int<32>"]),
]
INT_FROM_LONG_LONG = ["ap_int<8>", "ap_uint<10>", "ap_int<32>", "ap_int<64>"]
INT_VALUES_PER_CASE = 1_000_000


@dataclass
class Case:
    id: int
    src_id: int
    src: FixedType | None  # None: the source is float64 (or C++ long long when from_long_long)
    dst: FixedType
    from_long_long: bool = False


def _random_words(rng: np.random.Generator, src: FixedType, dst: FixedType, n: int) -> np.ndarray:
    """Uniform words plus exact ties, values around dst's rails and src's extremes."""
    lo, hi = src.min_word, src.max_word
    words = rng.integers(lo, hi, size=n, dtype=np.int64, endpoint=True)
    shift = src.frac - dst.frac
    quarter = n // 4
    if 0 < shift < 63:
        # Ties: the dropped bits are exactly 100...0.
        ties = words[:quarter] >> shift << shift | np.int64(1 << (shift - 1))
        words[:quarter] = np.clip(ties, lo, hi)
        # Around dst's rails, in src units, with random dropped bits.
        rails = np.array([dst.min_word, dst.max_word, -dst.max_word, 0], dtype=object)
        picks = rng.integers(0, len(rails), size=quarter)
        offsets = rng.integers(-2, 3, size=quarter)
        near = np.array(
            [(int(rails[p]) + int(o)) << shift for p, o in zip(picks, offsets)], dtype=object
        )
        near = near + rng.integers(0, 1 << shift, size=quarter)
        near = np.array([min(max(int(v), lo), hi) for v in near], dtype=np.int64)
        words[quarter : 2 * quarter] = near
    words[-4:] = [lo, hi, 0, min(1, hi)]
    return words


def _random_doubles(rng: np.random.Generator, dst: FixedType, n: int) -> np.ndarray:
    span = float(max(dst.max_word, 1)) * dst.lsb
    parts = [
        rng.uniform(-1.5 * span, 1.5 * span, n // 4),
        # exact ties: odd multiples of half an LSB
        (2 * rng.integers(-(dst.max_word + 4), dst.max_word + 4, n // 4) + 1) * (dst.lsb / 2),
        rng.integers(-(dst.max_word + 4), dst.max_word + 4, n // 8) * dst.lsb,
        rng.normal(0, span / 4, n // 8),
        rng.choice([1e30, -1e30, 1e-30, -1e-30, 0.0, -0.0, 2.0**70, -(2.0**63), 2.0**62 + 2048], n // 8),
    ]
    values = np.concatenate(parts)
    return np.concatenate([values, rng.uniform(-span, span, n - len(values))])


def _int_doubles(rng: np.random.Generator, dst: FixedType, n: int) -> np.ndarray:
    """Doubles across an integer type's range and beyond, with its quirks' neighbourhoods."""
    span = 2.0 ** (dst.width - 1) if dst.signed else 2.0**dst.width
    near_zero = [-0.5, np.nextafter(-0.5, 0.0), np.nextafter(-0.5, -1.0), -0.3, -2.5, -1.5, 0.5, 2.5, -0.0, 0.0,
                 -5e-324, -1e-310, 5e-324, -1.0, 1.0, np.nextafter(0.0, -1.0), -0.49, -0.51]
    huge = [1e30, -1e30, 2.0**63, -(2.0**63), 2.0**64, -(2.0**64), 2.0**70 + 2.0**20, 2.0**53 + 2.0, -(2.0**62) - 2048.0]
    parts = [
        rng.uniform(-1.5 * span, 1.5 * span, n // 4),
        # integers and halves around the whole range (exact up to 2**51) and its rails
        rng.integers(-2 * int(min(span, 2.0**51)) - 8, 2 * int(min(span, 2.0**51)) + 8, n // 8) / 2.0,
        (rng.choice([-span, span, -span / 2, span / 2, 0.0], n // 8) + rng.integers(-6, 7, n // 8) / 2.0),
        rng.uniform(-3.0, 3.0, n // 8),
        rng.choice(np.array(near_zero + huge), n // 16),
        # huge values that wrap: exact integers far past the range, and beyond int64
        np.ldexp(rng.uniform(-1.0, 1.0, n // 16), rng.integers(dst.width, 80, n // 16)),
    ]
    values = np.concatenate(parts)
    values = np.concatenate([values, rng.normal(0.0, span / 4, n - len(values))])
    values[: len(near_zero)] = near_zero
    return values


def _int_source_words(rng: np.random.Generator, src: FixedType, dsts: list[FixedType], n: int) -> np.ndarray:
    """Words of `src`: uniform, around zero (the -0.5 / +1 region), integers and halves, dst rails."""
    lo, hi = src.min_word, src.max_word
    frac = max(src.frac, 0)
    one = 1 << frac
    words = rng.integers(lo, hi, size=n, dtype=np.int64, endpoint=True)
    quarter = n // 4
    words[:quarter] = np.clip(rng.integers(-3 * one, 3 * one, size=quarter, endpoint=True), lo, hi)
    halves = rng.integers(lo // max(one // 2, 1), hi // max(one // 2, 1), size=quarter) * max(one // 2, 1)
    words[quarter : 2 * quarter] = np.clip(halves, lo, hi)
    # each destination's rails and wrap points, in source words (clipped to src)
    rails: list[int] = []
    for dst in dsts:
        for value in (dst.min_word, dst.max_word, dst.max_word + 1, dst.min_word - 1, -dst.max_word):
            word = value << src.frac if src.frac >= 0 else value >> -src.frac
            rails.append(min(max(word, lo + 4 * one), hi - 4 * one))
    centres = rng.choice(np.array(rails, dtype=np.int64), size=quarter)
    near = centres + rng.integers(-3 * one, 3 * one, size=quarter, endpoint=True)
    words[2 * quarter : 3 * quarter] = np.clip(near, lo, hi)
    words[-5:] = [lo, hi, 0, min(1, hi), max(-1, lo)]
    return words


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Generate the cases, compile the C++ reference once and run it."""
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.fail("g++ is needed to compile the ap_fixed reference (apt-get install g++)")
    work = tmp_path_factory.mktemp("ap_fixed_reference")
    rng = np.random.default_rng(20261126)
    cases: list[Case] = []
    blocks: list[str] = []
    inputs: dict[int, np.ndarray] = {}
    src_id = 0
    for src_text, (w, i, s) in WORD_PAIRS:
        src = FixedType.parse(src_text)
        words = _random_words(rng, src, FixedType(w, i, s), WORDS_PER_PAIR)
        words.tofile(work / f"src_{src_id}.bin")
        inputs[src_id] = words
        for q, o in MODES:
            dst = FixedType(w, i, s, q, o)
            case = Case(len(cases), src_id, src, dst)
            cases.append(case)
            blocks.append(
                f"{{ typedef {src} SRC; typedef {dst} DST; "
                f"word_case<SRC, DST>(dir, {case.id}, {src_id}, {str(dst.signed).lower()}); }}"
            )
        src_id += 1
    for w, i, s in DOUBLE_TYPES:
        values = _random_doubles(rng, FixedType(w, i, s), DOUBLES_PER_TYPE)
        values.tofile(work / f"src_{src_id}.bin")
        inputs[src_id] = values
        for q, o in MODES:
            dst = FixedType(w, i, s, q, o)
            case = Case(len(cases), src_id, None, dst)
            cases.append(case)
            blocks.append(
                f"{{ typedef {dst} DST; double_case<DST>(dir, {case.id}, {src_id}, {str(dst.signed).lower()}); }}"
            )
        src_id += 1
    for text in INT_TYPES:
        dst = FixedType.parse(text)
        values = _int_doubles(rng, dst, INT_VALUES_PER_CASE)
        values.tofile(work / f"src_{src_id}.bin")
        inputs[src_id] = values
        case = Case(len(cases), src_id, None, dst)
        cases.append(case)
        blocks.append(f"{{ typedef {dst} DST; double_case<DST>(dir, {case.id}, {src_id}, {str(dst.signed).lower()}); }}")
        src_id += 1
    for src_text, dst_texts in INT_WORD_SOURCES:
        src = FixedType.parse(src_text)
        dsts = [FixedType.parse(t) for t in dst_texts]
        words = _int_source_words(rng, src, dsts, INT_VALUES_PER_CASE)
        words.tofile(work / f"src_{src_id}.bin")
        inputs[src_id] = words
        for dst in dsts:
            case = Case(len(cases), src_id, src, dst)
            cases.append(case)
            blocks.append(
                f"{{ typedef {src_text} SRC; typedef {dst} DST; "
                f"word_case<SRC, DST>(dir, {case.id}, {src_id}, {str(dst.signed).lower()}); }}"
            )
        src_id += 1
    long_longs = np.concatenate([
        rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, INT_VALUES_PER_CASE // 2, endpoint=True),
        rng.integers(-5000, 5000, INT_VALUES_PER_CASE // 4),
        rng.integers(-(2**33), 2**33, INT_VALUES_PER_CASE - 3 * (INT_VALUES_PER_CASE // 4)),
    ])
    long_longs.tofile(work / f"src_{src_id}.bin")
    inputs[src_id] = long_longs
    for text in INT_FROM_LONG_LONG:
        dst = FixedType.parse(text)
        case = Case(len(cases), src_id, None, dst, from_long_long=True)
        cases.append(case)
        blocks.append(f"{{ typedef {dst} DST; integer_case<DST>(dir, {case.id}, {src_id}, {str(dst.signed).lower()}); }}")
    for n, (a, b) in enumerate(TYPE_PAIRS):
        blocks.append(f"{{ typedef {a} A; typedef {b} B; type_case<A, B>({n}); }}")
    shutil.copy(CPP_DIR / "ap_fixed_reference.cpp", work)
    # Instantiating ~400 conversions dominates; two programs compile in parallel.
    # NDEBUG: the header asserts when it reads a bit past the source's MSB,
    # which it does (and then ignores) when more bits are dropped than exist.
    programs = []
    for part in range(2):
        (work / f"cases_{part}.inc").write_text("\n".join(blocks[part::2]) + "\n")
        command = [gxx, "-O1", "-DNDEBUG", f'-DCASES_FILE="cases_{part}.inc"', "-std=c++14",
                   f"-I{ap_types_include()}", "-o", f"reference_{part}", "ap_fixed_reference.cpp"]
        programs.append(subprocess.Popen(command, cwd=work, stderr=subprocess.PIPE, text=True))
    for program in programs:
        _, errors = program.communicate()
        assert program.returncode == 0, f"compiling the ap_fixed reference failed:\n{errors}"
    types_output = ""
    for part in range(2):
        run = subprocess.run([str(work / f"reference_{part}"), str(work)], check=True, capture_output=True, text=True)
        types_output += run.stdout
    return {"work": work, "cases": cases, "inputs": inputs, "types_output": types_output}


def test_every_mode_pair_sees_a_million_values(reference: dict[str, object]) -> None:
    counts = {mode: 0 for mode in MODES}
    int_counts = []
    for case in reference["cases"]:  # type: ignore[attr-defined]
        n = len(reference["inputs"][case.src_id])  # type: ignore[index]
        if case.dst.is_int:
            int_counts.append(n)
        else:
            counts[(case.dst.rounding, case.dst.overflow)] += n
    assert min(counts.values()) >= 1_000_000
    assert len(int_counts) == len(INT_TYPES) + sum(len(d) for _, d in INT_WORD_SOURCES) + len(INT_FROM_LONG_LONG)
    assert min(int_counts) >= 1_000_000


def _mismatch_report(case: Case, given: np.ndarray, expected: np.ndarray, got: np.ndarray) -> str:
    bad = np.flatnonzero(expected != got)
    sample = ", ".join(f"{given[k]!r}->{expected[k]} (ours {got[k]})" for k in bad[:5])
    return f"{case.src or 'double'} -> {case.dst}: {len(bad)} of {len(given)} differ: {sample}"


def test_convert_matches_ap_fixed(reference: dict[str, object]) -> None:
    work: Path = reference["work"]  # type: ignore[assignment]
    failures = []
    for case in reference["cases"]:  # type: ignore[attr-defined]
        if case.src is None:
            continue
        given = reference["inputs"][case.src_id]  # type: ignore[index]
        expected = np.fromfile(work / f"out_{case.id}.bin", dtype=np.int64)
        got = convert(given, case.src, case.dst)
        if not np.array_equal(expected, got):
            failures.append(_mismatch_report(case, given, expected, got))
    assert not failures, "\n".join(failures)


def test_quantize_matches_ap_fixed_from_double(reference: dict[str, object]) -> None:
    work: Path = reference["work"]  # type: ignore[assignment]
    failures = []
    for case in reference["cases"]:  # type: ignore[attr-defined]
        if case.src is not None or case.from_long_long:
            continue
        given = reference["inputs"][case.src_id]  # type: ignore[index]
        expected = np.fromfile(work / f"out_{case.id}.bin", dtype=np.int64)
        got = quantize(given, case.dst)
        if not np.array_equal(expected, got):
            failures.append(_mismatch_report(case, given, expected, got))
    assert not failures, "\n".join(failures)


def test_integer_words_into_ap_int_match_the_header(reference: dict[str, object]) -> None:
    """C++ long long into ap_int / ap_uint: the low bits (the word of an ap_int<64> source)."""
    work: Path = reference["work"]  # type: ignore[assignment]
    failures = []
    cases = [c for c in reference["cases"] if c.from_long_long]  # type: ignore[attr-defined]
    assert len(cases) == len(INT_FROM_LONG_LONG)
    for case in cases:
        given = reference["inputs"][case.src_id]  # type: ignore[index]
        expected = np.fromfile(work / f"out_{case.id}.bin", dtype=np.int64)
        got = convert(given, FixedType(64, 64, True, is_int=True), case.dst)
        if not np.array_equal(expected, got):
            failures.append(_mismatch_report(case, given, expected, got))
    assert not failures, "\n".join(failures)


def _int_case(reference: dict[str, object], dst: str, from_double: bool) -> tuple[Case, np.ndarray, np.ndarray]:
    work: Path = reference["work"]  # type: ignore[assignment]
    case = next(
        c for c in reference["cases"]  # type: ignore[attr-defined]
        if str(c.dst) == dst and (c.src is None) == from_double and not c.from_long_long
        and (from_double or (c.src is not None and c.src.frac > 0 and c.src.integer > 0))
    )
    return case, reference["inputs"][case.src_id], np.fromfile(work / f"out_{case.id}.bin", dtype=np.int64)  # type: ignore[index]


def test_flooring_into_ap_int_is_caught(reference: dict[str, object]) -> None:
    """The comparison can fail: flooring (ap_fixed<N,N>'s TRN), or truncating without the +1."""
    case, given, expected = _int_case(reference, "ap_int<10>", from_double=True)
    floored = quantize(given, case.dst.with_modes())
    # every negative non-integer double differs: -2.5 floors to -3, -0.3 to -1
    negative_fraction = (given < 0) & (given != np.trunc(given))
    assert np.count_nonzero(floored != expected) == np.count_nonzero(negative_fraction) > 100_000
    truncated = quantize(given, FixedType(10, 10, True, "TRN_ZERO", "WRAP"))
    quirk = (given < 0) & (given > -0.5)
    assert np.count_nonzero(truncated != expected) == np.count_nonzero(quirk) > 10_000
    case, words, expected = _int_case(reference, "ap_int<10>", from_double=False)
    assert case.src is not None
    floored = convert(words, case.src, case.dst.with_modes())
    negative_fraction = (words < 0) & (words % (1 << case.src.frac) != 0)
    assert np.count_nonzero(floored != expected) == np.count_nonzero(negative_fraction) > 100_000


def test_integer_destination_quirks() -> None:
    """The header's answers, checked with g++ once, spelt out."""
    i10, u10, i1, u1 = (FixedType.parse(t) for t in ("ap_int<10>", "ap_uint<10>", "ap_int<1>", "ap_uint<1>"))
    values = np.array([-2.5, -0.3, -0.5, -0.7, -4.9e-324, 0.3, 2.7, -0.0, 600.0, -600.0, 1e30, -3.0])
    assert quantize(values, i10).tolist() == [-2, 1, 0, 0, 1, 0, 2, 0, -424, 424, 0, -3]
    assert quantize(values, u10).tolist() == [1022, 1, 0, 0, 1, 0, 2, 0, 600, 424, 0, 1021]
    assert quantize(values, i1).tolist() == [0, -1, 0, 0, -1, 0, 0, 0, 0, 0, 0, -1]
    assert quantize(values, u1).tolist() == [0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1]
    q8 = FixedType.parse("ap_fixed<8,0>")
    assert convert(np.array([-64, -1, 0, 5]), q8, FixedType.parse("ap_int<6>")).tolist() == [-1, -1, 0, 0]
    assert convert(np.array([-40]), FixedType.parse("ap_fixed<8,4>"), FixedType.parse("ap_int<6>")).tolist() == [-2]
    with pytest.raises(FixedTypeError, match="uninitialised"):
        convert(np.array([3]), FixedType.parse("ap_fixed<8,-2>"), i10)
    # modes on an integer type change nothing
    noisy = FixedType(10, 10, True, "RND", "SAT", is_int=True)
    assert quantize(values, noisy).tolist() == quantize(values, i10).tolist()
    assert i10 != FixedType(10, 10) and int_rules(i10) == FixedType(10, 10, True, "TRN_ZERO", "WRAP")


def test_sum_and_product_types_match_ap_fixed(reference: dict[str, object]) -> None:
    rows = [line.split() for line in str(reference["types_output"]).splitlines()]
    assert len(rows) == 2 * len(TYPE_PAIRS)
    for n, op, w, i, s in rows:
        a, b = (FixedType.parse(t) for t in TYPE_PAIRS[int(n)])
        ours = product_type(a, b) if op == "mul" else sum_type(a, b)
        assert (ours.width, ours.integer, ours.signed) == (int(w), int(i), s == "1"), (a, b, op)


def test_a_flipped_rounding_is_caught(reference: dict[str, object]) -> None:
    """The comparison can fail: RND instead of RND_CONV differs on the ties."""
    work: Path = reference["work"]  # type: ignore[assignment]
    case = next(
        c for c in reference["cases"]  # type: ignore[attr-defined]
        if c.src is not None and c.dst.rounding == "RND_CONV" and c.dst.overflow == "WRAP"
    )
    given = reference["inputs"][case.src_id]  # type: ignore[index]
    expected = np.fromfile(work / f"out_{case.id}.bin", dtype=np.int64)
    wrong = convert(given, case.src, case.dst.with_modes(rounding="RND"))
    assert np.count_nonzero(wrong != expected) > 1000


def test_parse_and_spelling_round_trip() -> None:
    for text in (
        "ap_fixed<16,6>",
        "ap_fixed<16,6,AP_RND_CONV,AP_SAT>",
        "ap_ufixed<8,0,AP_RND>",
        "ap_fixed<6,-3,AP_TRN,AP_SAT_SYM>",
        "ap_int<12>",
        "ap_uint<5>",
    ):
        assert str(FixedType.parse(text)) == text
    t = FixedType.parse(" ap_fixed< 16 , 6 , AP_RND_CONV , AP_SAT , 0 > ")
    assert (t.width, t.integer, t.signed, t.rounding, t.overflow) == (16, 6, True, "RND_CONV", "SAT")
    assert (t.frac, t.min_word, t.max_word, t.lsb) == (10, -32768, 32767, 2.0**-10)
    u = FixedType.parse("ap_uint<8>")
    assert (u.frac, u.min_word, u.max_word, u.lsb) == (0, 0, 255, 1.0)


@pytest.mark.parametrize(
    "text",
    ["float", "ap_fixed<16>", "ap_fixed<a,b>", "ap_fixed<16,6,RND>", "ap_fixed<16,6,AP_FOO>",
     "ap_fixed<16,6,AP_TRN,AP_WRAP,2>", "ap_uint<64>", "ap_int<8,3>", "ap_fixed<0,0>"],
)
def test_parse_refuses_what_it_cannot_represent(text: str) -> None:
    with pytest.raises(FixedTypeError, match="ap_|width|bits|mode|int64|parameter"):
        FixedType.parse(text)


def test_overflow_counts() -> None:
    src = FixedType(18, 10)
    words = np.array([-131072, -200, -129 * 256, -128 * 256, 0, 127 * 256, 127 * 256 + 255, 128 * 256, 131071])
    sat = OverflowCount()
    out = convert(words, src, FixedType(8, 8, True, "TRN", "SAT"), sat)
    assert out.tolist() == [-128, -1, -128, -128, 0, 127, 127, 127, 127]
    assert (sat.values, sat.saturated_high, sat.saturated_low, sat.wrapped) == (9, 2, 2, 0)
    wrap = OverflowCount()
    out = convert(words, src, FixedType(8, 8), wrap)
    assert out.tolist() == [0, -1, 127, -128, 0, 127, 127, -128, -1]
    assert (wrap.values, wrap.wrapped, wrap.overflowed) == (9, 4, 4)
    sym = OverflowCount()
    convert(words, src, FixedType(8, 8, True, "TRN", "SAT_SYM"), sym)
    # the word -128 itself moves to -127 under symmetric saturation
    assert (sym.saturated_high, sym.saturated_low) == (2, 3)


def test_quantize_refuses_nan_and_to_float_inverts() -> None:
    t = FixedType(12, 4, True, "RND_CONV", "SAT")
    with pytest.raises(ValueError, match="NaN or infinite"):
        quantize(np.array([0.0, np.nan]), t)
    words = np.arange(t.min_word, t.max_word + 1)
    assert np.array_equal(quantize(to_float(words, t), t), words)
