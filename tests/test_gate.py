"""The bit-exact gate and the fidelity measures, on a small fixed-point model.

The "emulation" here is a 4-input, 3-output fixed-point linear layer computed
with l1flow.firmware.fixed (products summed exactly in a wide accumulator,
then assigned to the output types with their rounding and overflow modes).
Faults are injected the way hardware would show them: a flipped bit in one
word, a different rounding mode, a truncated or reordered result file, a
result of another model version or another stimulus.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from l1flow.firmware.fixed import FixedType, convert, quantize
from l1flow.firmware.vectors import Port, VectorSet
from l1flow.verify.fidelity import compare_outputs
from l1flow.verify.gate import compare, compare_folders

EVENTS = 200
IN_T = FixedType.parse("ap_fixed<16,6>")
W_T = FixedType.parse("ap_fixed<8,2>")
# exact accumulator: product words carry IN_T.frac + W_T.frac = 16 fraction bits
ACC_T = FixedType(40, 40 - (IN_T.frac + W_T.frac))
Y_T = FixedType.parse("ap_fixed<12,4,AP_RND_CONV,AP_SAT>")
SCORE_T = FixedType.parse("ap_ufixed<10,3,AP_RND_CONV,AP_SAT>")
MODEL = {"name": "toy_linear", "version": "3", "firmware_hash": "c0ffee" * 4}


def emulate(x_words: np.ndarray, rounding: str | None = None) -> np.ndarray:
    """Output words (y[2], score[1]) of the toy layer; ``rounding`` overrides the output types' mode."""
    rng = np.random.default_rng(7)
    weights = quantize(rng.uniform(-1.5, 1.5, size=(4, 3)), W_T)
    acc = x_words @ weights
    y_t, s_t = Y_T, SCORE_T
    if rounding is not None:
        y_t, s_t = Y_T.with_modes(rounding=rounding), SCORE_T.with_modes(rounding=rounding)
    y = convert(acc[:, :2], ACC_T, y_t)
    score = convert(np.abs(acc[:, 2:]), ACC_T, s_t)
    return np.concatenate([y, score], axis=1)


@pytest.fixture
def stimulus(tmp_path: Path) -> VectorSet:
    rng = np.random.default_rng(1)
    x = quantize(rng.normal(0, 3, size=(EVENTS, 4)), IN_T)
    vectors = VectorSet(
        inputs=[Port("x", str(IN_T), (4,))],
        outputs=[Port("y", str(Y_T), (2,)), Port("score", str(SCORE_T), (1,))],
        input_words=x,
        output_words=emulate(x),
        model=dict(MODEL),
    )
    vectors.save(tmp_path / "stimulus")
    return vectors


def flip_bit(word: int, bit: int, width: int) -> int:
    """Flip one bit of a width-bit two's complement word, as hardware would, and sign-extend."""
    raw = (word & ((1 << width) - 1)) ^ (1 << bit)
    return raw - (1 << width) if raw >> (width - 1) else raw


def test_identical_result_passes(stimulus: VectorSet, tmp_path: Path) -> None:
    result = stimulus.result(stimulus.output_words.copy(), source="verilator")
    report = compare(stimulus, result)
    assert report.passed and report.failures == []
    assert (report.compared_events, report.mismatched_events, report.mismatched_words) == (EVENTS, 0, 0)
    assert [o.mismatched_words for o in report.outputs] == [0, 0]
    result.save(tmp_path / "result")
    folder_report = compare_folders(tmp_path / "stimulus", tmp_path / "result")
    assert folder_report.passed
    summary = json.loads(json.dumps(folder_report.to_dict()))
    assert (summary["passed"], summary["events"], summary["mismatched_events"], summary["mismatched_words"],
            summary["failures"]) == (True, EVENTS, 0, 0, [])
    assert "PASS" in folder_report.to_markdown() and folder_report.summary_line().startswith("PASS: 0 of 200")


@pytest.mark.parametrize(("port_index", "bit"), [(2, 3), (0, 0), (1, 11)])
def test_single_flipped_bit_fails_and_is_located(stimulus: VectorSet, port_index: int, bit: int) -> None:
    words = stimulus.output_words.copy()
    width = [Y_T.width, Y_T.width, SCORE_T.width][port_index]
    event = 137
    words[event, port_index] = flip_bit(int(words[event, port_index]), bit, width)
    report = compare(stimulus, stimulus.result(words, source="verilator"))
    assert not report.passed
    assert (report.mismatched_events, report.mismatched_words) == (1, 1)
    first = report.first_mismatches[0]
    assert first.event == event
    assert first.input_words == [int(w) for w in stimulus.input_words[event]]
    (word,) = first.words
    port, index = [("y", 0), ("y", 1), ("score", 0)][port_index]
    assert (word.port, word.index, word.differing_bits) == (port, index, [bit])
    assert word.expected == stimulus.output_words[event, port_index] and word.actual == words[event, port_index]
    counts = {o.port: (o.mismatched_events, o.bit_histogram) for o in report.outputs}
    assert counts[port] == (1, {bit: 1})
    other = "score" if port == "y" else "y"
    assert counts[other] == (0, {})
    assert any(f.startswith("words: 1 of 200 events differ") and f"bits [{bit}]" in f for f in report.failures)
    assert f"| {event} | {port}[{index}] |" in report.to_markdown()


def test_wrong_rounding_mode_fails(stimulus: VectorSet) -> None:
    truncating = emulate(stimulus.input_words, rounding="TRN")  # e.g. RTL built with TRN instead of RND_CONV
    report = compare(stimulus, stimulus.result(truncating, source="verilator"))
    assert not report.passed
    assert report.mismatched_events > EVENTS // 4
    # rounding differs by one LSB: bit 0 always differs, and carries reach higher bits
    for out in report.outputs:
        assert out.mismatched_words > 0 and out.bit_histogram[0] == out.mismatched_words
        assert out.max_word_diff == 1
    assert not report.reordered


def test_truncated_result_fails_with_counts(stimulus: VectorSet, tmp_path: Path) -> None:
    short = stimulus.result(stimulus.output_words[: EVENTS - 7], source="verilator")
    report = compare(stimulus, short)
    assert not report.passed
    assert "events: result has 193 events, expected 200 (truncated result file); the first 193 events match" in report.failures
    # a result file cut after it was written is caught by its recorded sha256
    result = stimulus.result(stimulus.output_words, source="verilator")
    folder = result.save(tmp_path / "result")
    lines = (folder / "outputs.txt").read_text().splitlines(keepends=True)
    (folder / "outputs.txt").write_text("".join(lines[:-3]))
    report = compare_folders(tmp_path / "stimulus", folder)
    assert not report.passed and report.failures[0].startswith("result readable:")
    assert "outputs.txt" in report.failures[0] and "truncated" in report.failures[0]


def test_reordered_result_fails_and_says_reordered(stimulus: VectorSet) -> None:
    order = np.arange(EVENTS)
    order[[10, 11]] = order[[11, 10]]
    order[50:60] = order[50:60][::-1]
    words = stimulus.output_words[order]
    moved = int(np.count_nonzero((words != stimulus.output_words).any(axis=1)))
    report = compare(stimulus, stimulus.result(words, source="board"))
    assert not report.passed and report.reordered
    assert report.mismatched_events == moved > 0
    assert any(f.startswith("words: reordered: the result holds the same 200 output rows") for f in report.failures)


def test_result_of_another_model_version_fails(stimulus: VectorSet) -> None:
    result = stimulus.result(stimulus.output_words, source="verilator")
    result.model = {**MODEL, "firmware_hash": "deadbeef" * 3}
    report = compare(stimulus, result)
    assert not report.passed and report.mismatched_events == 0  # identical words do not save it
    assert report.failures == [
        f"model: result from another model: firmware_hash: expected {MODEL['firmware_hash']!r}, "
        f"result {'deadbeef' * 3!r}"
    ]


def test_result_of_another_stimulus_fails(stimulus: VectorSet, tmp_path: Path) -> None:
    other = VectorSet(
        inputs=stimulus.inputs,
        outputs=stimulus.outputs,
        input_words=stimulus.input_words[::-1].copy(),
        output_words=stimulus.output_words[::-1].copy(),
        model=dict(MODEL),
    )
    other.save(tmp_path / "other")
    report = compare(stimulus, other.result(other.output_words, source="verilator"))
    assert not report.passed and report.failures[0].startswith("stimulus: the result answers stimulus")
    unnamed = stimulus.result(stimulus.output_words, source="capture")
    unnamed.stimulus_hash = None
    assert "names no stimulus_hash" in compare(stimulus, unnamed).failures[0]


def test_changed_port_type_fails(stimulus: VectorSet) -> None:
    result = stimulus.result(stimulus.output_words, source="verilator")
    result.outputs = [Port("y", "ap_fixed<12,4>", (2,)), stimulus.outputs[1]]
    report = compare(stimulus, result)
    assert not report.passed and report.failures[0].startswith("ports: outputs expected [y:ap_fixed<12,4,AP_RND_CONV,AP_SAT>")


def test_word_outside_type_range_fails(stimulus: VectorSet) -> None:
    words = stimulus.output_words.copy()
    words[5, 2] = -1  # an unsigned score cannot be negative: sign-extension bug in a harness
    report = compare(stimulus, stimulus.result(words, source="verilator"))
    assert "word range: score: 1 words outside [0, 1023] of ap_ufixed<10,3,AP_RND_CONV,AP_SAT>" in report.failures


def test_fidelity_of_quantized_outputs() -> None:
    rng = np.random.default_rng(3)
    software = rng.normal(size=(1000, 2))
    emulation = np.round(software * 64) / 64  # 6 fraction bits, round to nearest
    report = compare_outputs(software, emulation)
    assert report.events == 1000 and report.outputs_per_event == 2
    assert 0 < report.max_abs_diff <= 1 / 128
    assert report.fraction_differing == 1.0  # all events differ by something
    assert report.abs_diff_quantiles["1"] == report.max_abs_diff
    assert report.abs_diff_quantiles["0.5"] <= report.abs_diff_quantiles["0.99"] <= report.max_abs_diff
    loose = compare_outputs(software, emulation, tolerance=1 / 128)
    assert loose.fraction_differing == 0.0
    same = compare_outputs(software[:, 0], software[:, 0])
    assert (same.max_abs_diff, same.fraction_differing) == (0.0, 0.0)
    with pytest.raises(ValueError, match=r"shape \(1000, 2\).*\(999, 2\)"):
        compare_outputs(software, emulation[:-1])


def test_gate_command_exit_status(stimulus: VectorSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from l1flow.cli.main import main

    def run(*argv: str) -> int:
        return main(list(argv))

    stimulus.result(stimulus.output_words, source="verilator").save(tmp_path / "good")
    words = stimulus.output_words.copy()
    words[3, 0] = flip_bit(int(words[3, 0]), 2, Y_T.width)
    stimulus.result(words, source="verilator").save(tmp_path / "bad")
    assert run("gate", str(tmp_path / "stimulus"), str(tmp_path / "good")) == 0
    assert capsys.readouterr().out.startswith("PASS: 0 of 200 events differ")
    markdown = tmp_path / "gate.md"
    assert run("gate", str(tmp_path / "stimulus"), str(tmp_path / "bad"), "--json", "--markdown", str(markdown)) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["passed"] is False and data["first_mismatches"][0]["words"][0]["differing_bits"] == [2]
    assert "| 3 | y[0] |" in markdown.read_text()


# ---------------------------------------------------------------- a real RTL simulation

RTL = Path(__file__).parent / "fixtures" / "rtl_small"
TREES = [  # (thresholds per node as (feature, value), leaves) mirroring tiny_bdt.v
    ([(0, 310), (1, -75), (2, 1020)], {0b11: 1203, 0b10: -377, 0b01: 95, 0b00: -2048}),
    ([(2, 12), (0, -400), (1, 733)], {0b11: -611, 0b10: 1490, 0b01: 12, 0b00: 300}),
]


def tiny_bdt_emulation(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Score words of tiny_bdt.v, and the leaf index reached in tree 0."""
    score = np.zeros(len(x), dtype=np.int64)
    leaf0 = np.zeros(len(x), dtype=np.int64)
    for t, (nodes, leaves) in enumerate(TREES):
        n0, n1, n2 = ((x[:, f] <= v) for f, v in nodes)
        second = np.where(n0, n1, n2)
        index = n0.astype(np.int64) * 2 + second.astype(np.int64)
        score += np.select([index == k for k in leaves], list(leaves.values()))
        if t == 0:
            leaf0 = index
    return score[:, None], leaf0


def build_tiny_bdt(sources: dict[str, Path], build_root: Path) -> dict[str, Path]:
    """Verilator executables of several versions of tiny_bdt.v, built side by side."""
    import subprocess

    from l1flow.toolchain import require_executable

    verilator = require_executable("verilator", "simulating tiny_bdt.v")
    processes = {}
    for name, source in sources.items():
        build = build_root / name
        build.mkdir(parents=True)
        processes[name] = subprocess.Popen(
            # -O0 C++: the test simulates a few thousand events, compile time dominates
            [verilator, "--cc", "--exe", "--build", "-O1", "-Wno-fatal", "-MAKEFLAGS",
             "OPT_FAST=-O0 OPT_SLOW=-O0 OPT_GLOBAL=-O0", "--Mdir", str(build), "-o", "Vtb",
             str(source), str(RTL / "tiny_bdt_tb.cpp")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
    for process in processes.values():
        output, _ = process.communicate()
        assert process.returncode == 0, output.decode(errors="replace")[-2000:]
    return {name: build_root / name / "Vtb" for name in sources}


def simulate_tiny_bdt(executable: Path, x: np.ndarray) -> np.ndarray:
    import subprocess

    text = "\n".join(" ".join(str(int(w)) for w in row) for row in x) + "\n"
    out = subprocess.run([str(executable)], input=text, capture_output=True, text=True, check=True).stdout
    return np.array([int(line) for line in out.split()], dtype=np.int64)[:, None]


@pytest.mark.slow
def test_one_changed_constant_in_rtl_fails_the_gate(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    x = rng.integers(-2048, 2048, size=(3000, 3))
    expected_words, leaf0 = tiny_bdt_emulation(x)
    stimulus = VectorSet(
        inputs=[Port("x", "ap_int<12>", (3,))],
        outputs=[Port("score", "ap_int<16>", (1,))],
        input_words=x,
        output_words=expected_words,
        model={"name": "tiny_bdt", "version": "1"},
    )
    stimulus.save(tmp_path / "stimulus")

    # one leaf constant changed in the RTL: 1203 -> 1207 (bit 2)
    changed = tmp_path / "tiny_bdt.v"
    changed.write_text((RTL / "tiny_bdt.v").read_text().replace("16'sd1203", "16'sd1207"))
    simulators = build_tiny_bdt({"good": RTL / "tiny_bdt.v", "bad": changed}, tmp_path / "build")

    report = compare(stimulus, stimulus.result(simulate_tiny_bdt(simulators["good"], x), source="verilator"))
    assert report.passed, report.summary_line()
    report = compare(stimulus, stimulus.result(simulate_tiny_bdt(simulators["bad"], x), source="verilator"))
    reaching_leaf = int(np.count_nonzero(leaf0 == 0b11))
    assert not report.passed and reaching_leaf > 100
    assert report.mismatched_events == reaching_leaf
    assert report.outputs[0].max_word_diff == 4
    assert report.first_mismatches[0].event == int(np.flatnonzero(leaf0 == 0b11)[0])


def test_gate_command_wording_and_exit_codes(stimulus: VectorSet, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """A structural failure says what failed (not "0 of 0 events differ"), exit 1; a missing folder is exit 2."""
    from l1flow.cli.main import main

    folder = stimulus.result(stimulus.output_words, source="verilator").save(tmp_path / "result")
    lines = (folder / "outputs.txt").read_text().splitlines(keepends=True)
    (folder / "outputs.txt").write_text("".join(lines[:-3]))
    markdown = tmp_path / "gate.md"
    assert main(["gate", str(tmp_path / "stimulus"), str(folder)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL: result readable: ") and "outputs.txt" in out and "no events compared" in out
    assert "0 of 0" not in out

    # one flipped bit: a real mismatch, counted
    words = stimulus.output_words.copy()
    words[5, 1] = flip_bit(int(words[5, 1]), 0, Y_T.width)
    stimulus.result(words, source="verilator").save(tmp_path / "flipped")
    assert main(["gate", str(tmp_path / "stimulus"), str(tmp_path / "flipped")]) == 1
    assert capsys.readouterr().out.startswith(f"FAIL: 1 of {EVENTS} events differ (1 words)")

    for expected, result, named in ((tmp_path / "stimulus", tmp_path / "no_such_result", "result"),
                                    (tmp_path / "no_such_stimulus", folder, "expected")):
        code = main(["gate", str(expected), str(result), "--markdown", str(markdown)])
        err = capsys.readouterr().err
        assert code == 2
        missing = result if named == "result" else expected
        assert f"{missing}: no such {named} folder" in err and "meta.json" in err
        assert not markdown.exists()
