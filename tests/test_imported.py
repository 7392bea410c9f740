"""Vendor co-simulation output and board captures imported as hardware results."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from l1flow.firmware.vectors import Port, VectorSet
from l1flow.hardware.imported import (
    BoardCaptureSource,
    CosimImport,
    ImportFormatError,
    StimulusMismatchError,
    read_board_capture,
    read_transactions,
    write_board_capture,
    write_cosim_tv,
)

FIXTURES = Path(__file__).parent / "fixtures"
SIM = FIXTURES / "cosim" / "myproject_prj" / "solution1" / "sim"
CAPTURE = FIXTURES / "board" / "capture.txt"
INPUTS = [Port("input_1", "ap_fixed<8,3>", (4,))]
OUTPUTS = [Port("layer3_out", "ap_ufixed<8,0>", (3,))]
# The events in the fixtures (the HLS fixture design's answers, tests/test_hls_verilog.py).
WORDS = np.array([[-128, -128, -128, -128], [127, 127, 127, 127], [0, 0, 0, 0], [37, -5, 100, -77],
                  [-1, 2, -3, 4], [64, -64, 32, -32]])
EXPECTED = np.array([[246, 3, 6], [18, 247, 251], [146, 97, 132], [246, 234, 40], [136, 92, 138], [244, 99, 148]])


def _stimulus(tmp_path: Path, words: np.ndarray = WORDS, expected: np.ndarray = EXPECTED,
              inputs: list[Port] = INPUTS, outputs: list[Port] = OUTPUTS) -> VectorSet:
    stimulus = VectorSet(inputs, outputs, words, expected, model={"name": "fixture", "version": "1"})
    stimulus.save(tmp_path / "stimulus")
    return stimulus


def test_cosim_fixture_imports_into_a_result_set(tmp_path):
    stimulus = _stimulus(tmp_path)
    source = CosimImport(SIM, INPUTS, OUTPUTS, tmp_path / "prj")
    source.write()
    source.compile()
    result = source.simulate(stimulus, tmp_path / "result")
    assert result.source == "vitis-cosim"
    assert np.array_equal(result.output_words, EXPECTED)
    loaded = VectorSet.load(tmp_path / "result")
    assert loaded.stimulus_hash == stimulus.content_hash
    assert np.array_equal(loaded.output_words, EXPECTED)


def test_cosim_round_trip_signed_words_all_layouts(tmp_path):
    rng = np.random.default_rng(3)
    inputs = [Port("input_1", "ap_fixed<14,4>", (5,)), Port("input_2", "ap_uint<3>", (2,))]
    outputs = [Port("layer9_out", "ap_fixed<18,8,AP_RND_CONV,AP_SAT>", (3,))]
    words_in = np.concatenate([rng.integers(-(2**13), 2**13, (40, 5)), rng.integers(0, 8, (40, 2))], axis=1)
    words_out = rng.integers(-(2**17), 2**17, (40, 3))
    words_out[0] = [-(2**17), 2**17 - 1, -1]  # the extremes and -1 survive the hex round trip
    for packed in (False, True):
        tv = tmp_path / f"packed{packed}" / "tv"
        write_cosim_tv(tv, "myproject", inputs, outputs, words_in, words_out, packed_outputs=packed)
        got = CosimImport(tv.parent, inputs, outputs, tmp_path / "prj").run(words_in)
        assert np.array_equal(got, words_out)


def test_vivado_names_uppercase_hex_crlf(tmp_path):
    sim = tmp_path / "sim"
    shutil.copytree(SIM, sim)
    for path in sorted((sim / "tv").rglob("*.dat")):
        text = path.read_text()
        lines = ["0x" + line[2:].upper() if line.startswith("0x") else line for line in text.splitlines()]
        path.unlink()
        (path.parent / (path.stem + "_V.dat")).write_text("\r\n".join(lines) + "\r\n")
    assert (sim / "tv" / "rtldatafile" / "rtl.myproject.autotvout_layer3_out_2_V.dat").exists()
    got = CosimImport(sim, INPUTS, OUTPUTS, tmp_path / "prj").run(WORDS)
    assert np.array_equal(got, EXPECTED)


def test_cosim_word_narrower_than_the_port_type_is_refused(tmp_path):
    # sc_bv::to_string(SC_HEX) writes a fixed digit count; 1 digit cannot hold an 8-bit port
    sim = _copy_sim(tmp_path)
    path = sim / "tv" / "rtldatafile" / "rtl.myproject.autotvout_layer3_out_1.dat"
    lines = path.read_text().splitlines()
    k = next(i for i, line in enumerate(lines) if line.startswith("0x"))
    lines[k] = "0x" + lines[k][4:]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ImportFormatError, match=r"autotvout_layer3_out_1.dat:3: port autotvout_layer3_out_1, "
                       r"transaction 0: '0x3' has 1 hex digits, but the declared type ap_ufixed<8,0> needs 2"):
        CosimImport(sim, INPUTS, OUTPUTS, tmp_path / "prj").compile()


def _copy_sim(tmp_path: Path) -> Path:
    sim = tmp_path / "sim"
    shutil.copytree(SIM, sim)
    return sim


def test_cosim_run_on_other_inputs_is_refused(tmp_path):
    other = WORDS.copy()
    other[3, 2] += 1
    with pytest.raises(StimulusMismatchError, match=r"1 events differ, first event 3 word 2 is 100 there and 101"):
        CosimImport(SIM, INPUTS, OUTPUTS, tmp_path / "prj").run(other)


def test_truncated_cosim_file_names_file_and_line(tmp_path):
    sim = _copy_sim(tmp_path)
    rtl = sim / "tv" / "rtldatafile" / "rtl.myproject.autotvout_layer3_out_1.dat"
    rtl.write_text("\n".join(rtl.read_text().splitlines()[:11]) + "\n")  # stops inside transaction 3
    with pytest.raises(ImportFormatError, match=r"rtl\.myproject\.autotvout_layer3_out_1\.dat:11: transaction 3 is not closed"):
        CosimImport(sim, INPUTS, OUTPUTS, tmp_path / "prj").run(WORDS)


def test_cosim_file_with_fewer_transactions_is_caught(tmp_path):
    sim = _copy_sim(tmp_path)
    rtl = sim / "tv" / "rtldatafile" / "rtl.myproject.autotvout_layer3_out_2.dat"
    lines = rtl.read_text().splitlines()
    rtl.write_text("\n".join(lines[:13] + lines[-1:]) + "\n")  # transactions 0-3, then [[[/runtime]]]
    with pytest.raises(ImportFormatError, match=r"autotvout_layer3_out_2\.dat: 4 transactions, but .* has 6"):
        CosimImport(sim, INPUTS, OUTPUTS, tmp_path / "prj").compile()


def test_reordered_cosim_transactions_are_caught(tmp_path):
    sim = _copy_sim(tmp_path)
    rtl = sim / "tv" / "rtldatafile" / "rtl.myproject.autotvout_layer3_out_0.dat"
    lines = rtl.read_text().splitlines()
    lines[1:4], lines[4:7] = lines[4:7], lines[1:4]  # transaction 1 before 0
    rtl.write_text("\n".join(lines) + "\n")
    with pytest.raises(ImportFormatError, match=r"out_0\.dat:2: transaction 1 where 0 was expected"):
        read_transactions(rtl)


def test_unknown_bits_and_bad_tokens_are_reported(tmp_path):
    sim = _copy_sim(tmp_path)
    rtl = sim / "tv" / "rtldatafile" / "rtl.myproject.autotvout_layer3_out_0.dat"
    rtl.write_text(rtl.read_text().replace("0x0f6", "0x0fX", 1))
    with pytest.raises(ImportFormatError, match=r"out_0\.dat:3: port autotvout_layer3_out_0, transaction 0: '0x0fX' holds unknown \(X/Z\) bits"):  # noqa: E501
        CosimImport(sim, INPUTS, OUTPUTS, tmp_path / "prj").run(WORDS)
    rtl.write_text(rtl.read_text().replace("0x0fX", "0x1f6", 1))
    with pytest.raises(ImportFormatError, match=r"out_0\.dat:3: port .*, transaction 0: '0x1f6' has 9 significant bits, ap_ufixed<8,0> has 8"):  # noqa: E501
        CosimImport(sim, INPUTS, OUTPUTS, tmp_path / "prj").run(WORDS)


def test_missing_cosim_port_file_lists_what_is_there(tmp_path):
    sim = _copy_sim(tmp_path)
    (sim / "tv" / "rtldatafile" / "rtl.myproject.autotvout_layer3_out_2.dat").unlink()
    with pytest.raises(ImportFormatError, match=r"word 2 of port autotvout_layer3_out.*present: \['rtl\.myproject"):
        CosimImport(sim, INPUTS, OUTPUTS, tmp_path / "prj").write()


def test_board_capture_fixture_and_round_trip(tmp_path):
    stimulus = _stimulus(tmp_path)
    result = BoardCaptureSource(CAPTURE, INPUTS, OUTPUTS, tmp_path / "prj").simulate(stimulus, tmp_path / "r")
    assert result.source == "board"
    assert np.array_equal(result.output_words, EXPECTED)
    inputs = [Port("x", "ap_fixed<16,6>", (3,))]
    outputs = [Port("score", "ap_fixed<12,4,AP_RND_CONV,AP_SAT>", (1,)), Port("flag", "ap_uint<1>", (1,))]
    rng = np.random.default_rng(5)
    w_in = rng.integers(-(2**15), 2**15, (25, 3))
    w_out = np.concatenate([rng.integers(-(2**11), 2**11, (25, 1)), rng.integers(0, 2, (25, 1))], axis=1)
    path = tmp_path / "capture.txt"
    write_board_capture(path, inputs, outputs, w_in, w_out)
    got_in, got_out = read_board_capture(path, inputs, outputs)
    assert np.array_equal(got_in, w_in) and np.array_equal(got_out, w_out)
    path.write_text(path.read_text().replace("\n0: ", "\n0: ffff 8000 7fff | 800 1\n#", 1))
    got_in, got_out = read_board_capture(path, inputs, outputs)
    assert got_in[0].tolist() == [-1, -32768, 32767] and got_out[0].tolist() == [-2048, 1]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: t.replace("3: 25 fb 64 b3 | f6 ea 28", "3: 25 fb 64 b3 | f6 ea"),
            r"capture\.txt:5: 4 input and 2 output words",
        ),
        (lambda t: t.replace("2: ", "9: ", 1), r"capture\.txt:4: event 9 where 2 was expected"),
        (lambda t: t.replace("| 92 61 84", "92 61 84"), r"capture\.txt:4: no '\|'"),
        (lambda t: t.replace("f4 63 94", "f4 63 g4"), r"capture\.txt:7: output word 2: 'g4' is not a hex word"),
        (lambda t: t.replace("f4 63 94", "f4 63 194"), r"capture\.txt:7: output word 2: '194' has 3 hex digits, but the declared type ap_ufixed<8,0> needs 2"),  # noqa: E501
        (lambda t: t.replace("outputs=3", "outputs=2"), r"capture\.txt:1: header says outputs=2"),
        (lambda t: t.replace("f4 63 94", "f4 63 -6c"), r"capture\.txt:7: output word 2: '-6c' carries a sign"),
        (lambda t: t.replace("f4 63 94", "f4 63 4"), r"capture\.txt:7: output word 2: '4' has 1 hex digits"),
    ],
)
def test_malformed_board_capture_names_file_and_line(tmp_path, edit, message):
    path = tmp_path / "capture.txt"
    path.write_text(edit(CAPTURE.read_text()))
    with pytest.raises(ImportFormatError, match=message):
        BoardCaptureSource(path, INPUTS, OUTPUTS, tmp_path / "prj").compile()


def test_truncated_board_capture_is_refused_against_the_stimulus(tmp_path):
    path = tmp_path / "capture.txt"
    path.write_text("\n".join(CAPTURE.read_text().splitlines()[:5]) + "\n")
    with pytest.raises(StimulusMismatchError, match="holds 4 events of 4 input words; the stimulus has 6"):
        BoardCaptureSource(path, INPUTS, OUTPUTS, tmp_path / "prj").run(WORDS)


def test_board_result_folder_in_vector_format(tmp_path):
    stimulus = _stimulus(tmp_path)
    stimulus.result(EXPECTED, source="board").save(tmp_path / "captured")
    got = BoardCaptureSource(tmp_path / "captured", INPUTS, OUTPUTS, tmp_path / "prj").simulate(stimulus)
    assert np.array_equal(got.output_words, EXPECTED)
    other = _stimulus(tmp_path / "other", words=WORDS[::-1].copy(), expected=EXPECTED[::-1].copy())
    with pytest.raises(StimulusMismatchError, match="answers stimulus"):
        BoardCaptureSource(tmp_path / "captured", INPUTS, OUTPUTS, tmp_path / "prj").simulate(other)


def test_gate_command_reads_a_cosim_folder(tmp_path, capsys):
    from l1flow.cli.main import main

    _stimulus(tmp_path)
    assert main(["gate", str(tmp_path / "stimulus"), str(SIM.parent)]) == 0
    assert "PASS: 0 of 6 events differ" in capsys.readouterr().out
    sim = _copy_sim(tmp_path)
    path = sim / "tv" / "rtldatafile" / "rtl.myproject.autotvout_layer3_out_2.dat"
    path.write_text(path.read_text().replace("0x028", "0x029", 1))  # event 3, output 2: one LSB
    assert main(["gate", str(tmp_path / "stimulus"), str(sim)]) == 1
    out = capsys.readouterr().out
    assert "FAIL: 1 of 6 events differ (1 words)" in out and "layer3_out[2]: expected 40, got 41, bits [0]" in out
