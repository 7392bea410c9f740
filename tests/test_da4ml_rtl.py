"""da4ml RTL: ap_fixed casts traced exactly, Verilog simulated by Verilator, faults caught."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

import l1flow  # noqa: F401  (sets the toolchain environment)
from l1flow.firmware import fixed
from l1flow.firmware.fixed import OVERFLOW_MODES, ROUNDING_MODES, FixedType
from l1flow.hardware.da4ml_rtl import (
    Format,
    build_simulator,
    convert,
    generate_rtl,
    harness_config,
    run_simulator,
)

SOURCE = FixedType(10, 4)  # every word of ap_fixed<10,4> is a test input
CAST_TARGETS = [
    FixedType(5, 3, True, r, o) for r, o in itertools.product(ROUNDING_MODES, OVERFLOW_MODES)
] + [
    FixedType(4, 2, False, r, o) for r, o in itertools.product(ROUNDING_MODES, OVERFLOW_MODES)
] + [FixedType(12, 3, True, "RND_CONV", "SAT")]  # more fraction bits: no rounding at all


def _trace_casts(src: FixedType, targets: list[FixedType]):
    from da4ml.trace import FixedVariableArrayInput, comb_trace

    x = FixedVariableArrayInput(1)
    fmt = Format(src)
    v = x.quantize(fmt.k, fmt.i, fmt.f)._vars[0]
    outs = [convert(v, Format(t)) for t in targets]
    return comb_trace(x._vars, outs)


def _build(design, tmp_path: Path, name: str) -> Path:
    src = tmp_path / name
    src.mkdir()
    for file, code in design.sources.items():
        (src / file).write_text(code)
    return build_simulator(src, design.top, harness_config(design), cache_dir=tmp_path / "cache")


def test_every_cast_mode_in_interpreter_matches_ap_fixed():
    comb = _trace_casts(SOURCE, CAST_TARGETS)
    words = np.arange(SOURCE.min_word, SOURCE.max_word + 1, dtype=np.int64)
    out = comb.predict(fixed.to_float(words, SOURCE)[:, None])
    for n, target in enumerate(CAST_TARGETS):
        expected = fixed.convert(words, SOURCE, target)
        got = np.round(np.ldexp(out[:, n], target.frac)).astype(np.int64)
        assert np.array_equal(got, expected), f"{target}: {np.count_nonzero(got != expected)} words differ"


@pytest.mark.slow
def test_every_cast_mode_in_verilator_matches_ap_fixed(tmp_path):
    comb = _trace_casts(SOURCE, CAST_TARGETS)
    design = generate_rtl(comb, [Format(SOURCE)], [Format(t) for t in CAST_TARGETS], top="casts")
    exe = _build(design, tmp_path, "casts")
    words = np.arange(SOURCE.min_word, SOURCE.max_word + 1, dtype=np.int64)
    got = run_simulator(exe, words[:, None], len(CAST_TARGETS), threads=2)
    expected = np.stack([fixed.convert(words, SOURCE, t) for t in CAST_TARGETS], axis=1)
    assert got.shape == (1024, len(CAST_TARGETS))
    mismatches = np.count_nonzero(got != expected)
    assert mismatches == 0
    # Exact ties of RND_CONV (input LSB 1/64, target LSB 1/4) go to the even neighbour.
    conv = CAST_TARGETS.index(FixedType(5, 3, True, "RND_CONV", "WRAP"))
    for word, even in ((24, 2), (8, 0), (-24, -2), (40, 2)):  # 0.375, 0.125, -0.375, 0.625
        assert got[word - SOURCE.min_word, conv] == even
