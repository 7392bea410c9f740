"""da4ml RTL: ap_fixed casts traced exactly, Verilog simulated by Verilator, faults caught."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pytest

import l1flow  # noqa: F401  (sets the toolchain environment)
from l1flow.firmware import fixed
from l1flow.firmware.fixed import OVERFLOW_MODES, ROUNDING_MODES, FixedType
from l1flow.hardware.da4ml_rtl import (
    Format,
    RTLGenerationError,
    build_simulator,
    convert,
    generate_rtl,
    harness_config,
    latency_cutoff_for_clock,
)
from l1flow.hardware.verilator import run_simulator

SOURCE = FixedType(10, 4)  # every word of ap_fixed<10,4> is a test input
CAST_TARGETS = [
    FixedType(5, 3, True, r, o) for r, o in itertools.product(ROUNDING_MODES, OVERFLOW_MODES)
] + [
    FixedType(4, 2, False, r, o) for r, o in itertools.product(ROUNDING_MODES, OVERFLOW_MODES)
] + [FixedType(12, 3, True, "RND_CONV", "SAT")] + [  # more fraction bits: no rounding at all
    # integer destinations truncate toward zero and wrap, whatever modes they carry
    FixedType(3, 3, True, "RND", "SAT", is_int=True), FixedType.parse("ap_uint<2>"), FixedType.parse("ap_int<1>"),
]


def _trace_casts(src: FixedType, targets: list[FixedType], negate: bool = False):
    from da4ml.trace import FixedVariableArrayInput, comb_trace

    x = FixedVariableArrayInput(1)
    fmt = Format(src)
    v = x.quantize(fmt.k, fmt.i, fmt.f)._vars[0]
    if negate:  # da4ml keeps -v as v with a negative scale: the other code path of every cast
        v = -v
    outs = [convert(v, Format(t)) for t in targets]
    return comb_trace(x._vars, outs)


@pytest.fixture(scope="session")
def rtl_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One build cache for the session: designs are keyed by content, Verilator's runtime is reused."""
    return tmp_path_factory.getbasetemp() / "verilator-cache"


def _build(design, tmp_path: Path, name: str, cache: Path) -> Path:
    src = tmp_path / name
    src.mkdir()
    for file, code in design.sources.items():
        (src / file).write_text(code)
    return build_simulator(src, design.top, harness_config(design), cache_dir=cache)


@pytest.mark.parametrize("negate", [False, True])
def test_every_cast_mode_in_interpreter_matches_ap_fixed(negate):
    comb = _trace_casts(SOURCE, CAST_TARGETS, negate)
    words = np.arange(SOURCE.min_word, SOURCE.max_word + 1, dtype=np.int64)
    out = comb.predict(fixed.to_float(words, SOURCE)[:, None])
    # -min_word needs one more integer bit
    source = FixedType(SOURCE.width + 1, SOURCE.integer + 1) if negate else SOURCE
    for n, target in enumerate(CAST_TARGETS):
        expected = fixed.convert(-words if negate else words, source, target)
        got = np.round(np.ldexp(out[:, n], target.frac)).astype(np.int64)
        assert np.array_equal(got, expected), f"{target}: {np.count_nonzero(got != expected)} words differ"


@pytest.mark.slow
def test_every_cast_mode_in_verilator_matches_ap_fixed(tmp_path, rtl_cache):
    comb = _trace_casts(SOURCE, CAST_TARGETS)
    design = generate_rtl(comb, [Format(SOURCE)], [Format(t) for t in CAST_TARGETS], top="casts")
    exe = _build(design, tmp_path, "casts", rtl_cache)
    words = np.arange(SOURCE.min_word, SOURCE.max_word + 1, dtype=np.int64)
    got = run_simulator(exe, words[:, None], len(CAST_TARGETS), threads=2).output_words
    expected = np.stack([fixed.convert(words, SOURCE, t) for t in CAST_TARGETS], axis=1)
    assert got.shape == (1024, len(CAST_TARGETS))
    mismatches = np.count_nonzero(got != expected)
    assert mismatches == 0
    # Exact ties of RND_CONV (input LSB 1/64, target LSB 1/4) go to the even neighbour.
    conv = CAST_TARGETS.index(FixedType(5, 3, True, "RND_CONV", "WRAP"))
    for word, even in ((24, 2), (8, 0), (-24, -2), (40, 2)):  # 0.375, 0.125, -0.375, 0.625
        assert got[word - SOURCE.min_word, conv] == even


@pytest.mark.slow
def test_truncated_or_swapped_cached_sim_is_rebuilt_with_a_warning(tmp_path, rtl_cache, caplog):
    """Issue 18: a damaged cached `sim` used to be run as is (and segfault); its hash is checked on use."""
    import shutil

    from l1flow.recovery import entry_problem

    comb = _trace_casts(SOURCE, CAST_TARGETS[:3])
    design = generate_rtl(comb, [Format(SOURCE)], [Format(t) for t in CAST_TARGETS[:3]], top="casts3")
    exe = _build(design, tmp_path, "first", rtl_cache)
    good = exe.read_bytes()
    shutil.copy("/bin/true", exe)  # swapped
    assert entry_problem(exe.parent) == "sim does not match its recorded sha256"
    exe.write_bytes(good[: len(good) // 3])  # truncated
    with caplog.at_level("WARNING", logger="l1flow.recovery"):
        again = _build(design, tmp_path, "second", rtl_cache)
    assert again == exe and again.read_bytes() == good
    assert "cached Verilator build of casts3 from " in caplog.text
    assert f"{exe.parent} is damaged (sim does not match its recorded sha256)" in caplog.text
    words = np.arange(SOURCE.min_word, SOURCE.max_word + 1, dtype=np.int64)
    expected = np.stack([fixed.convert(words, SOURCE, t) for t in CAST_TARGETS[:3]], axis=1)
    assert np.count_nonzero(run_simulator(again, words[:, None], 3, threads=2).output_words != expected) == 0


# --------------------------------------------------------------------------- a QKeras net, end to end

EVENTS = 4000


def _qkeras_ae():
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu
    from tensorflow.keras.layers import Input
    from tensorflow.keras.models import Model

    inp = Input((12,), name="x")
    x = QActivation(quantized_bits(12, 4, alpha=1), name="q_in")(inp)
    for i, units in enumerate([8, 4, 8, 12]):
        x = QDense(units, kernel_quantizer=quantized_bits(6, 0, alpha=1),
                   bias_quantizer=quantized_bits(6, 0, alpha=1), name=f"d{i}")(x)
        if i < 3:
            x = QActivation(quantized_relu(8, 3), name=f"r{i}")(x)  # hls4ml: ufixed<8,3,RND_CONV,SAT>
    model = Model(inp, x, name="ae")
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if layer.get_weights():
            layer.set_weights([rng.normal(0, 0.6, w.shape) for w in layer.get_weights()])
    return model


@pytest.fixture(scope="module")
def converted_ae(tmp_path_factory: pytest.TempPathFactory):
    """(hls_model, FirmwareNet, input words, emulator words, hls4ml words) of a small bit-exact AE."""
    import hls4ml

    from l1flow.firmware.netgraph import FirmwareNet
    from l1flow.firmware.nn_emulator import NNEmulator

    model = _qkeras_ae()
    config = hls4ml.utils.config_from_keras_model(model, granularity="name", backend="Vitis")
    hls_model = hls4ml.converters.convert_from_keras_model(
        model, hls_config=config, output_dir=str(tmp_path_factory.mktemp("ae") / "hls"), backend="Vitis",
        io_type="io_parallel", part="xcvu9p-flgb2104-2L-e", bit_exact=True,
    )
    hls_model.compile()
    net = FirmwareNet.from_hls_model(hls_model)
    rng = np.random.default_rng(3)
    x = rng.normal(0, 2.0, (EVENTS, 12))
    x[: EVENTS // 10] = np.round(x[: EVENTS // 10] * 64) / 64 + 1 / 128
    emulator = NNEmulator(net)
    words = emulator.quantize_inputs(x)
    emulated = emulator.predict_words(words)
    hls = fixed.quantize(np.asarray(hls_model.predict(np.ascontiguousarray(x)), dtype=np.float64).reshape(EVENTS, -1),
                         net.output.type)
    return hls_model, net, words, emulated, hls


def _first_layer_ties(net, words: np.ndarray) -> int:
    """How many first-layer values sit exactly half an LSB between two ReLU outputs (RND_CONV ties)."""
    from l1flow.firmware.netgraph import FirmwareNet, TensorPort
    from l1flow.firmware.nn_emulator import NNEmulator

    dense, relu = net.layers[0], net.layers[1]
    head = FirmwareNet(net.input, [dense], TensorPort("acc", dense.result_type, dense.output_shape))
    acc = NNEmulator(head).predict_words(words)
    drop = dense.result_type.frac - relu.result_type.frac
    return int(np.count_nonzero((acc > 0) & ((acc & ((1 << drop) - 1)) == 1 << (drop - 1))))


@pytest.mark.slow
def test_qkeras_net_rtl_matches_emulator_and_hls4ml(converted_ae, tmp_path, rtl_cache):
    from l1flow.firmware.vectors import Port, VectorSet
    from l1flow.hardware.da4ml_rtl import Da4mlRTLSource

    _, net, words, emulated, hls = converted_ae
    assert net.layers[1].result_type.rounding == "RND_CONV" and net.layers[1].result_type.overflow == "SAT"
    assert _first_layer_ties(net, words) > 100
    assert np.count_nonzero(emulated != hls) == 0
    source = Da4mlRTLSource(net, tmp_path / "rtl", cache_dir=rtl_cache, threads=2)
    source.write()
    source.compile()
    stimulus = VectorSet(
        [Port(net.input.name, str(net.input.type), net.input.shape)],
        [Port(net.output.name, str(net.output.type), net.output.shape)],
        words, emulated, model={"name": "ae"},
    )
    stimulus.save(tmp_path / "stimulus")
    result = source.simulate(stimulus, tmp_path / "result")
    assert result.source == "verilator-da4ml"
    assert np.count_nonzero(result.output_words != emulated) == 0
    assert np.count_nonzero(result.output_words != hls) == 0
    assert source.latency_cycles == 0  # combinational
    assert source.estimated_luts > 100 and source.logic_delay > 0
    # outputs are not trivial: many distinct words per output
    assert min(len(np.unique(result.output_words[:, j])) for j in range(net.n_outputs)) > 20


def test_stage_cut_follows_the_clock_period():
    # 1 ns per adder after 0.5 ns of register overhead; never less than one adder per stage
    assert [latency_cutoff_for_clock(p) for p in (5.0, 2.5, 6.25, 25.0, 1.0)] == [4.0, 2.0, 5.0, 24.0, 1.0]
    with pytest.raises(RTLGenerationError, match="clock period must be positive"):
        latency_cutoff_for_clock(0.0)


@pytest.mark.slow
def test_two_clock_periods_give_different_stage_counts(converted_ae):
    from l1flow.hardware.da4ml_rtl import trace_firmware_net

    _, net, _, _, _ = converted_ae
    comb = trace_firmware_net(net)
    formats = [Format(net.input.type)] * net.n_inputs, [Format(net.output.type)] * net.n_outputs
    designs = {p: generate_rtl(comb, *formats, latency_cutoff=latency_cutoff_for_clock(p)) for p in (2.5, 5.0)}
    fast, slow = designs[2.5], designs[5.0]
    assert fast.latency_cycles > slow.latency_cycles >= 2
    for design in designs.values():
        assert design.stage_modules == tuple(f"l1flow_nn_stage{i}" for i in range(design.latency_cycles))
        assert {f"{m}.v" for m in design.stage_modules} <= set(design.sources)
        assert "#define CLOCKED 1" in harness_config(design)


PIPELINE_EVENTS = 20_000


@pytest.fixture(scope="module")
def pipeline_words(converted_ae):
    """(input words, emulator words) of 20,000 events for the pipelined RTL."""
    from l1flow.firmware.nn_emulator import NNEmulator

    _, net, _, _, _ = converted_ae
    x = np.random.default_rng(8).normal(0, 2.0, (PIPELINE_EVENTS, net.n_inputs))
    emulator = NNEmulator(net)
    words = emulator.quantize_inputs(x)
    return words, emulator.predict_words(words)


def _add_output_register(top: Path, stages: int) -> None:
    """One more register between the last stage and ``model_out``: the RTL is one clock late."""
    text = top.read_text()
    width = re.search(r"output reg \[(\d+):0\] model_out", text)
    last = f"model_out <= stage{stages - 1}_out;"
    assert width is not None and text.count(last) == 1
    text = text.replace(last, f"late_out <= stage{stages - 1}_out;\n        model_out <= late_out;")
    text = text.replace("always @(posedge clk)", f"reg [{width.group(1)}:0] late_out;\n    always @(posedge clk)")
    top.write_text(text)


@pytest.mark.slow
def test_pipelined_rtl_at_the_clock_matches_emulator_and_faults_are_caught(
    converted_ae, pipeline_words, tmp_path, rtl_cache
):
    from l1flow.errors import VerificationFailed
    from l1flow.hardware.da4ml_rtl import Da4mlRTLSource

    _, net, _, _, _ = converted_ae
    words, emulated = pipeline_words
    source = Da4mlRTLSource(
        net, tmp_path / "rtl", latency_cutoff=latency_cutoff_for_clock(5.0), cache_dir=rtl_cache, threads=2
    )
    source.write()
    stated = source.latency_cycles
    assert stated >= 2
    got = source.run(words)  # one event per clock, each result read `stated` clocks later
    assert got.shape == (PIPELINE_EVENTS, net.n_outputs)
    assert np.count_nonzero(got != emulated) == 0
    assert min(len(np.unique(got[:, j])) for j in range(net.n_outputs)) > 20
    assert source.measured_latency_cycles == stated  # what the harness saw is what da4ml stated
    # all events alike: nothing to time, and still gated word for word
    same = np.repeat(words[:1], 50, axis=0)
    assert np.count_nonzero(source.run(same) != emulated[:1]) == 0
    assert source.measured_latency_cycles is None

    # Change one constant operand (a bias addition) in the generated Verilog: flip its top bit.
    pattern = re.compile(r"shift_adder #\([^)]*\) op_\d+ \(v\d+\[\d+:0\], (\d+)'b(1[01]{7,}),")
    stage, match = next(
        (path, m) for path in sorted((tmp_path / "rtl" / "src").glob("l1flow_nn_stage*.v"))
        if (m := pattern.search(path.read_text())) is not None
    )
    text = stage.read_text()
    start, bits = match.start(2), match.group(2)
    stage.write_text(text[:start] + "0" + bits[1:] + text[start + len(bits):])
    source.compile()  # the edited file is what gets built (a new cache key)
    faulty = source.run(words)
    assert np.count_nonzero(np.any(faulty != emulated, axis=1)) > 0
    assert source.measured_latency_cycles == stated  # a wrong value, on time
    source.write()  # restores the generated RTL: the net hash matches but the file changed
    source.compile()
    assert np.count_nonzero(source.run(words) != emulated) == 0

    # One register too many: the harness sees the results a clock late and the library refuses them.
    _add_output_register(tmp_path / "rtl" / "src" / "l1flow_nn.v", stated)
    source.compile()
    with pytest.raises(VerificationFailed, match=f"{stated + 1} clock cycles after its input, design.json states {stated}"):
        source.run(words[:2000])


@pytest.fixture(scope="module")
def combinational_synthesis(converted_ae, tmp_path_factory: pytest.TempPathFactory):
    """(source, job, yosys report) of the combinational RTL, synthesized once for the module."""
    from l1flow.hardware.da4ml_rtl import Da4mlRTLSource
    from l1flow.synthesis.yosys import YosysRunner

    _, net, _, _, _ = converted_ae
    work = tmp_path_factory.mktemp("comb_synth")
    source = Da4mlRTLSource(net, work / "rtl")
    source.write()
    job = source.synthesis_job("yosys", "xcvu9p-flgb2104-2L-e", 5.0, 600)
    return source, job, YosysRunner().run(job, work / "synth")


@pytest.mark.slow
def test_yosys_synthesizes_exactly_the_simulated_rtl(converted_ae, combinational_synthesis, tmp_path):
    from l1flow.hardware.da4ml_rtl import Da4mlRTLSource

    _, net, _, _, _ = converted_ae
    source, job, report = combinational_synthesis
    # only the modules the netlist instantiates (da4ml's lookup_table.v reads a ROM that does not exist)
    named = {p.name for p in job.rtl_files}
    assert named == {p.name for p in source.src_dir.glob("*.v")}
    assert "l1flow_nn.v" in named and "shift_adder.v" in named and "lookup_table.v" not in named
    r = report.resources
    assert r.lut is not None and r.lut > 0.5 * source.estimated_luts  # da4ml's own estimate, same order
    assert r.carry is not None and r.carry > 0
    assert r.ff == 0 and r.dsp == 0  # combinational, multiplications as shift-adds
    assert (report.latency_min_cycles, report.latency_source) == (0, "generator (design.json)")
    assert list(report.logic_depth) == ["l1flow_nn"] and report.logic_depth["l1flow_nn"] > 10
    # another folder holding the same net is the same job: the stored result is returned
    again = Da4mlRTLSource(net, tmp_path / "elsewhere")
    again.write()
    assert again.synthesis_job("yosys", "xcvu9p-flgb2104-2L-e", 5.0, 600).job_hash() == job.job_hash()


@pytest.mark.slow
def test_yosys_gives_flip_flops_and_logic_depth_per_stage(converted_ae, combinational_synthesis, tmp_path):
    from l1flow.hardware.da4ml_rtl import Da4mlRTLSource
    from l1flow.pipeline.firmware_steps import synthesis_records
    from l1flow.synthesis.yosys import YosysRunner

    _, net, _, _, _ = converted_ae
    source = Da4mlRTLSource(net, tmp_path / "rtl", latency_cutoff=latency_cutoff_for_clock(5.0))
    source.write()
    job = source.synthesis_job("yosys", "xcvu9p-flgb2104-2L-e", 5.0, 600)
    stages = tuple(f"l1flow_nn_stage{i}" for i in range(source.latency_cycles))
    assert job.depth_modules == stages
    report = YosysRunner().run(job, tmp_path / "synth")
    _, _, flat_report = combinational_synthesis
    # every stage's input and the output are registered
    assert report.resources.ff is not None and report.resources.ff >= net.n_inputs + net.n_outputs
    assert tuple(report.logic_depth) == stages and min(report.logic_depth.values()) > 0
    # pipelining cut the longest path: the deepest stage is shallower than the whole combinational net
    assert max(report.logic_depth.values()) < flat_report.logic_depth["l1flow_nn"]
    _, latency = synthesis_records(report)
    assert latency is not None
    assert latency.cycles == source.latency_cycles and latency.ns == 5.0 * source.latency_cycles
    assert latency.ii == 1 and latency.logic_depth == report.logic_depth
