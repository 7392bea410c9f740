"""Vitis-HLS-style Verilog of an io_parallel design, driven through its ap_ctrl_hs handshake by Verilator."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import l1flow  # noqa: F401  (sets the toolchain environment)
from l1flow.firmware.vectors import Port, VectorSet
from l1flow.hardware.hls_verilog import HLSVerilogError, HLSVerilogSource

FIXTURE = Path(__file__).parent / "fixtures" / "hls_verilog" / "myproject_prj" / "solution1" / "syn" / "verilog"
ROM = "myproject_sigmoid_table_ROM_AUTO_1R.dat"
INPUTS = [Port("input_1", "ap_fixed<8,3>", (4,))]
OUTPUTS = [Port("layer3_out", "ap_ufixed<8,0>", (3,))]
# The fixture's dense layer (weights ap_fixed<6,1>, bias at 2**-10) feeding a sigmoid ROM.
WEIGHTS = np.array([[13, -7, 22], [-16, 9, 3], [5, 31, -12], [-25, -2, 18]])
BIAS = np.array([300, -512, 77])


@pytest.fixture(scope="session")
def rtl_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One build cache for the session: designs are keyed by content, Verilator's runtime is reused."""
    return tmp_path_factory.getbasetemp() / "verilator-cache"


def reference(words: np.ndarray) -> np.ndarray:
    table = np.array([int(line, 16) for line in (FIXTURE / ROM).read_text().split()])
    acc = words @ WEIGHTS + BIAS
    return table[np.clip((acc >> 4) + 512, 0, 1023)]


def copy_fixture(tmp_path: Path) -> Path:
    target = tmp_path / "verilog"
    shutil.copytree(FIXTURE, target)
    return target


@pytest.mark.slow
def test_fixture_matches_reference_through_handshake(tmp_path, rtl_cache):
    rng = np.random.default_rng(7)
    words = rng.integers(-128, 128, size=(3000, 4))
    words[:4] = [[-128] * 4, [127] * 4, [0] * 4, [127, -128, 127, -128]]  # ROM index clipping at both ends
    source = HLSVerilogSource(FIXTURE, INPUTS, OUTPUTS, tmp_path / "prj", cache_dir=rtl_cache, threads=2)
    stimulus = VectorSet(INPUTS, OUTPUTS, words, reference(words), model={"name": "fixture"})
    stimulus.save(tmp_path / "stimulus")
    result = source.simulate(stimulus, tmp_path / "result")
    assert source.top == "myproject"
    assert result.output_words.shape == (3000, 3)
    assert np.count_nonzero(result.output_words != stimulus.output_words) == 0
    assert VectorSet.load(tmp_path / "result").stimulus_hash == stimulus.content_hash
    # the outputs span the table, not a constant
    assert len(np.unique(result.output_words)) > 100


@pytest.mark.slow
def test_changed_weight_in_hls_verilog_is_caught(tmp_path, rtl_cache):
    folder = copy_fixture(tmp_path)
    top = folder / "myproject.v"
    text = top.read_text()
    assert text.count("$signed(18'd31)") == 1
    top.write_text(text.replace("$signed(18'd31)", "$signed(18'd30)"))
    rng = np.random.default_rng(8)
    words = rng.integers(-128, 128, size=(2000, 4))
    source = HLSVerilogSource(folder, INPUTS, OUTPUTS, tmp_path / "prj", cache_dir=rtl_cache)
    got = source.run(words)
    wrong = got != reference(words)
    assert wrong[:, 1].sum() > 0  # the weight feeds output 1 only
    assert wrong[:, [0, 2]].sum() == 0


def test_rom_path_from_synthesis_machine_is_localised(tmp_path):
    folder = copy_fixture(tmp_path)
    rom_v = folder / "myproject_sigmoid_table_ROM_AUTO_1R.v"
    foreign = f"/home/synth/builds/myproject_prj/solution1/impl/verilog/{ROM}"
    rom_v.write_text(rom_v.read_text().replace(f"./{ROM}", foreign))
    source = HLSVerilogSource(folder, INPUTS, OUTPUTS, tmp_path / "prj")
    source.write()
    assert source.rom_files == [ROM]
    built = source.verilog_sources["myproject_sigmoid_table_ROM_AUTO_1R.v"]
    assert "/home/synth" not in built and f'$readmemh("{ROM}"' in built
    assert (tmp_path / "prj" / "harness_ports.h").read_text().count("load_bus(dut->input_1, c)") == 1


def test_missing_rom_file_is_named(tmp_path):
    folder = copy_fixture(tmp_path)
    (folder / ROM).unlink()
    source = HLSVerilogSource(folder, INPUTS, OUTPUTS, tmp_path / "prj")
    with pytest.raises(HLSVerilogError, match=ROM) as err:
        source.write()
    assert "myproject_sigmoid_table_ROM_AUTO_1R.v" in str(err.value)


def test_vivado_hls_port_names_with_V_suffix_bind(tmp_path):
    folder = copy_fixture(tmp_path)
    top = folder / "myproject.v"
    text = top.read_text().replace("input_1", "input_1_V")
    for j in range(3):
        text = text.replace(f"layer3_out_{j}", f"layer3_out_{j}_V")
    top.write_text(text)
    source = HLSVerilogSource(folder, INPUTS, OUTPUTS, tmp_path / "prj")
    source.write()
    header = (tmp_path / "prj" / "harness_ports.h").read_text()
    assert "dut->input_1_V_ap_vld = level;" in header
    assert "if (dut->layer3_out_2_V_ap_vld && captured[2] < events)" in header


def test_port_width_mismatch_is_reported(tmp_path):
    source = HLSVerilogSource(FIXTURE, [Port("input_1", "ap_fixed<10,3>", (4,))], OUTPUTS, tmp_path / "prj")
    with pytest.raises(HLSVerilogError, match=r"input_1 has 32 bits.*4 x 10 = 40"):
        source.write()


def test_unknown_port_name_lists_the_verilog_ports(tmp_path):
    source = HLSVerilogSource(FIXTURE, INPUTS, [Port("layer9_out", "ap_ufixed<8,0>", (3,))], tmp_path / "prj")
    with pytest.raises(HLSVerilogError, match=r"layer9_out.*layer3_out_0"):
        source.write()


def test_missing_handshake_is_reported(tmp_path):
    folder = copy_fixture(tmp_path)
    top = folder / "myproject.v"
    top.write_text(top.read_text().replace("ap_ready", "ap_rdy"))
    source = HLSVerilogSource(folder, INPUTS, OUTPUTS, tmp_path / "prj", top="myproject")
    with pytest.raises(HLSVerilogError, match="ap_ready"):
        source.write()
