"""Pipeline stages from a trained model to verified firmware.

Each model becomes a :class:`~l1flow.backends.FirmwareBuild`, made by the
backend of its framework (:mod:`l1flow.backends`: hls4ml or conifer): its
firmware project, a compiled C-simulation, the fast bit-exact emulator read
from that project, and the hardware sources that can produce words for it.
The stages below treat neural nets and BDTs alike through it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from l1flow.backends import FirmwareBuild, FirmwarePrecision, backend_for
from l1flow.config import FirmwareConfig, PipelineConfig
from l1flow.data.layout import check_layout
from l1flow.firmware.fixed import OverflowCount, quantize, to_float
from l1flow.firmware.vectors import VectorSet
from l1flow.pipeline.data_steps import Dataset
from l1flow.records import (
    CsimEntry,
    EmulationEntry,
    FidelityEntry,
    GateEntry,
    Latency,
    Resources,
    parse,
)
from l1flow.synthesis import runner_for
from l1flow.synthesis.job import SynthesisError
from l1flow.synthesis.reports import SynthesisReport
from l1flow.toolchain import require_executable, yosys_command
from l1flow.training.metrics import decision_agreement, threshold_at_rate
from l1flow.training.model import TrainedModel
from l1flow.training.plots import plot_residuals
from l1flow.verify.fidelity import compare_outputs
from l1flow.verify.gate import compare

log = logging.getLogger("l1flow")


def choose_precision(config: PipelineConfig, model: TrainedModel, dataset: Dataset) -> FirmwarePrecision:
    """Firmware types chosen from the training sample by the model's backend."""
    return backend_for(model.framework).choose_precision(model, dataset.train, config)


def build_firmware(
    firmware: FirmwareConfig,
    model: TrainedModel,
    settings: dict[str, Any],
    folder: Path,
    rtl_cache: Path | None,
) -> FirmwareBuild:
    """Write and compile the firmware project, read back its emulator and C-sim.

    With an `rtl_cache` (where Verilator builds are kept by content hash) the
    build also carries its hardware sources; without, only emulation and C-sim.
    """
    return backend_for(model.framework).build(firmware, model, settings, folder, rtl_cache)


@dataclass
class EmulationCheck:
    """The fast emulator on some events, against software and the C-sim: one path for the pipeline and compare."""

    input_words: np.ndarray
    output_words: np.ndarray
    software: np.ndarray  # real outputs of the software model
    emulated: np.ndarray  # real values of the emulated output words
    seconds: float
    fidelity: FidelityEntry
    decision_agreement: float
    csim: CsimEntry


def check_emulation(
    model: TrainedModel,
    firmware: FirmwareBuild,
    x: np.ndarray,
    threshold: float,
    csim_events: int,
    input_overflow: OverflowCount | None = None,
) -> EmulationCheck:
    """Emulate ``x`` (the firmware's real inputs); compare with software and, on the first events, the C-sim.

    ``threshold`` is the working point's score threshold for the decision
    agreement; ``input_overflow``, when given, counts inputs the input cast saturates or wraps.
    """
    words = firmware.emulator.quantize_inputs(x)
    if input_overflow is not None:
        quantize(x, firmware.input_type, input_overflow)
    began = time.perf_counter()
    out_words = firmware.emulator.predict_words(words)
    seconds = time.perf_counter() - began
    emulated = to_float(out_words, firmware.output_type)
    software = model.software_outputs(x)
    fidelity = compare_outputs(software, emulated)
    agreement = decision_agreement(
        model.score_from_firmware_outputs(x, software), model.score_from_firmware_outputs(x, emulated), threshold
    )
    n_csim = min(csim_events, len(x))
    csim_words = quantize(firmware.csim_predict(x[:n_csim]), firmware.output_type)
    csim_mismatches = int(np.count_nonzero(np.any(csim_words != out_words[:n_csim], axis=1)))
    return EmulationCheck(
        input_words=words,
        output_words=out_words,
        software=software,
        emulated=emulated,
        seconds=seconds,
        fidelity=parse(FidelityEntry, fidelity.to_dict(), f"{model.name} software vs emulation"),
        decision_agreement=float(agreement),
        csim=CsimEntry(source=firmware.csim_label, events=n_csim, mismatched_events=csim_mismatches),
    )


@dataclass
class EmulationResult:
    """Fast emulation of one model on the large sample, with its checks."""

    input_words: np.ndarray
    output_words: np.ndarray
    software_vs_emulation: FidelityEntry
    decision_agreement: float
    decision_threshold: float
    emulation: EmulationEntry
    emulation_vs_csim: CsimEntry
    #: per feature, emulation inputs outside the physical layout (saturated or wrapped by the hardware units)
    outside_layout: dict[str, Any] = field(default_factory=dict)
    plots: dict[str, str] = field(default_factory=dict)  # relative to the run folder


def emulate(
    config: PipelineConfig, model: TrainedModel, firmware: FirmwareBuild, dataset: Dataset, run_dir: Path
) -> EmulationResult:
    """Run the fast emulator on the emulation sample and compare it with software and C-sim.

    - software vs emulation: the firmware model's outputs in QKeras / xgboost
      against the emulated outputs, on every event; and trigger decisions at
      the working point (threshold from the software score of the test
      sample's background);
    - emulation vs C-sim: output words on a subset (`verify.csim_events`).
    """
    x = model.firmware_inputs(dataset.emulation)
    test_x = model.firmware_inputs(dataset.test)
    test_scores = model.score_from_firmware_outputs(test_x, model.software_outputs(test_x))
    background = test_scores[~dataset.test.is_signal()]
    threshold = threshold_at_rate(background, config.trigger.working_point_khz, config.trigger.crossing_rate_mhz)
    check = check_emulation(model, firmware, x, threshold, config.verify.csim_events)
    layout = check_layout(dataset.emulation.objects)
    if layout.events_outside:
        log.warning(
            "%s: %d of %d emulation events hold inputs outside the physical layout (saturated or wrapped by the "
            "hardware units): %s", model.name, layout.events_outside, layout.events, "; ".join(layout.lines()),
        )
    log.info(
        "%s: emulated %d events at %.0f events/s; software vs emulation: %.4g%% of events differ; "
        "decision agreement %.5f; %s vs emulation: %d of %d events differ",
        model.name, len(x), len(x) / check.seconds, 100 * check.fidelity.fraction_differing,
        check.decision_agreement, firmware.csim_label, check.csim.mismatched_events, check.csim.events,
    )
    residuals = plot_residuals(
        model.name, check.software, check.emulated, run_dir / "plots" / f"{model.name}_residuals.png"
    )
    return EmulationResult(
        input_words=check.input_words,
        output_words=check.output_words,
        software_vs_emulation=check.fidelity,
        decision_agreement=check.decision_agreement,
        decision_threshold=float(threshold),
        emulation=EmulationEntry(events=len(x), events_per_s=len(x) / check.seconds),
        emulation_vs_csim=check.csim,
        outside_layout=layout.to_dict(),
        plots={"residuals": str(residuals.relative_to(run_dir))},
    )


def write_hardware(firmware: FirmwareBuild) -> None:
    """Lay out every hardware source's project (RTL, harness files) for simulation and synthesis."""
    for source in firmware.hardware:
        source.write()


def verify_hardware(
    config: PipelineConfig,
    model: TrainedModel,
    firmware: FirmwareBuild,
    emulation: EmulationResult,
    run_dir: Path,
    version: dict[str, Any],
) -> list[GateEntry]:
    """Simulate every hardware source on the emulation sample and gate it against emulation.

    Fast sources (Verilator) see `verify.hardware_events`; GHDL, at a few
    hundred events per second, sees `verify.ghdl_events`. Call after
    :func:`write_hardware`.
    """
    vectors_dir = run_dir / "vectors" / model.name
    reports: list[GateEntry] = []
    stimuli: dict[int, VectorSet] = {}
    for source in firmware.hardware:
        limit = config.verify.ghdl_events if source.source == "ghdl" else config.verify.hardware_events
        n = min(limit, len(emulation.input_words))
        if n not in stimuli:
            stimuli[n] = firmware.export_vectors(
                emulation.input_words[:n], emulation.output_words[:n], version, vectors_dir / f"emulation_{n}"
            )
        stimulus = stimuli[n]
        log.info("%s: %s simulation of %d events", model.name, source.source, n)
        source.compile()
        began = time.perf_counter()
        result = source.simulate(stimulus, vectors_dir / f"{source.source}_{n}")
        seconds = time.perf_counter() - began
        report = compare(stimulus, result)
        log.info("%s: %s", model.name, report.summary_line())
        (vectors_dir / f"gate_{source.source}_{n}.md").write_text(report.to_markdown())
        reports.append(report.entry(source.source, n / seconds, source.measured_latency_cycles))
    return reports


def check_synthesis_tool(config: PipelineConfig) -> None:
    """Raise ToolMissingError now, not after training, when the configured synthesis tool is missing."""
    if config.synthesis.runner == "yosys":
        yosys_command()
    elif config.synthesis.runner == "vivado":
        require_executable("vivado", "Vivado synthesis of the verified RTL (synthesis.runner: vivado)",
                           "Run on a synthesis machine with Vivado on PATH, or set synthesis.runner to yosys or none.")


def synthesize(config: PipelineConfig, firmware: FirmwareBuild, results_dir: Path) -> SynthesisReport | None:
    """Synthesize the RTL the gate simulated with ``config.synthesis.runner``; None for "none".

    Call after :func:`write_hardware`. Results are kept in ``results_dir`` under
    the job's hash, which covers the RTL's content, so the same firmware is
    synthesized once (yosys needs minutes for the default AE).
    """
    tool = config.synthesis.runner
    if tool == "none":
        return None
    for source in firmware.hardware:
        job = source.synthesis_job(
            tool, config.firmware.part, config.firmware.clock_period_ns, config.synthesis.timeout_seconds
        )
        if job is not None:
            log.info("%s: %s synthesis of %s (%s)", firmware.model_name, tool, job.top, source.source)
            return runner_for(tool).run(job, results_dir)
    raise SynthesisError(
        f"{firmware.model_name}: none of its hardware sources "
        f"({', '.join(s.source for s in firmware.hardware) or 'none built'}) has RTL for {tool}"
    )


def synthesis_records(report: SynthesisReport | None) -> tuple[Resources | None, Latency | None]:
    """The summary's ``resources`` and ``latency`` (what acceptance budgets read); None when not run."""
    if report is None:
        return None, None
    r = report.resources
    cycles = report.latency_max_cycles
    resources = Resources(
        LUT=r.lut, FF=r.ff, DSP=r.dsp, BRAM=r.bram_18k, carry=r.carry,
        source=" ".join(filter(None, (report.tool, report.tool_version))) + f" ({report.resource_stage})",
        part=report.part,
        utilisation=report.utilisation(),
        job_hash=report.job_hash,
    )
    latency = Latency(
        cycles=cycles,
        # a combinational design has no clocked latency, and yosys does no timing
        ns=report.latency_max_ns if cycles else None,
        ii=report.ii_max,
        source=report.latency_source,
        # cells on the longest register-to-register path of each pipeline stage (or of the whole top)
        logic_depth=report.logic_depth or None,
    )
    return resources, latency
