"""`l1flow compare`: a run's model, software against its fast firmware emulation, on a user's data.

For one model of a finished run and an HDF5 or ROOT file (read through the
data layer's readers), report:

- differing outputs between the software model (QKeras / xgboost) and the
  bit-exact emulator: events, fraction differing, max and quantiles of |diff|;
- trigger-decision agreement at the run's working point;
- emulator against the firmware C-simulation (hls4ml / conifer cpp) on a subset;
- the overflow report: values that saturated or wrapped, per layer;
- a residual plot (PNG).

The firmware is rebuilt from the run's recorded precision settings, so the
emulator is exactly the one the run verified.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from l1flow.config import load_config
from l1flow.data.layout import check_layout
from l1flow.data.reader import read_events
from l1flow.errors import BadInputError
from l1flow.fileio import write_json_atomic
from l1flow.firmware.fixed import OverflowCount
from l1flow.pipeline.firmware_steps import build_firmware, check_emulation
from l1flow.records import read_summary
from l1flow.training.model import TrainedModel
from l1flow.training.plots import plot_residuals


class CompareError(BadInputError):
    """The run, the model or the data file cannot be compared."""


@dataclass
class Comparison:
    model: str
    data_file: str
    result: dict[str, Any]
    plot: Path

    def to_text(self) -> str:
        r = self.result
        fid = r["software_vs_emulation"]
        csim = r["emulation_vs_csim"]
        lines = [
            f"model {self.model} on {self.data_file}: {fid['events']} events",
            (
                f"  software vs emulation: {fid['events_differing']} of {fid['events']} events differ "
                f"({100 * fid['fraction_differing']:.4g}%), max |diff| {fid['max_abs_diff']:.6g}, "
                f"99.9% quantile {fid['abs_diff_quantiles']['0.999']:.6g}"
            ),
            f"  trigger decisions at {r['working_point_khz']} kHz (threshold {r['threshold']:.6g}): "
            f"{r['decision_agreement']:.6f} agree",
            f"  emulation vs {csim['source']}: {csim['mismatched_events']} of {csim['events']} events differ",
        ]
        layout = r["outside_layout"]
        outside = layout["features"]
        if outside:
            lines.append(
                f"  inputs outside the physical layout: {layout['events_outside']} of {layout['events']} events "
                f"(saturated or wrapped by the hardware units before the firmware sees them):"
            )
            lines += [
                f"    {f['feature']}: {f['count']} object(s) outside {f['limit']} ({f['effect']}; "
                f"furthest {f['extreme']:g})"
                for f in outside
            ]
        else:
            lines.append("  inputs outside the physical layout: none")
        overflowed = [o for o in r["overflow"] if o["overflowed"]]
        if overflowed:
            lines.append("  overflows (saturated or wrapped values):")
            lines += [
                f"    {o['layer']} {o['stage']}: {o['overflowed']} of {o['values']} "
                f"(high {o['saturated_high']}, low {o['saturated_low']}, wrapped {o['wrapped']})"
                for o in overflowed
            ]
        elif outside:
            lines.append(
                "  overflows: none in any layer, but the inputs above saturated or wrapped at the hardware units"
            )
        else:
            lines.append("  overflows: none in any layer")
        lines.append(f"  residual plot: {self.plot}")
        return "\n".join(lines)


def compare_run_model(
    run_dir: Path,
    model_name: str,
    data_file: Path,
    out_dir: Path,
    mapping: Path | None = None,
    csim_events: int = 2000,
) -> Comparison:
    run_dir = Path(run_dir)
    summary = read_summary(run_dir)
    models = summary.models
    if model_name not in models:
        raise CompareError(f"{run_dir}: no model {model_name!r}; the run has {', '.join(sorted(models)) or 'none'}")
    block = models[model_name]
    if block.precision is None or block.firmware_hash is None or block.decision_threshold is None \
            or "model" not in block.artifacts:
        raise CompareError(
            f"{run_dir / 'summary.json'}: model {model_name!r} has no precision, firmware hash, decision "
            "threshold or model artifact; it was written before l1flow recorded them, so rerun the pipeline"
        )
    config = load_config(run_dir / "config.yaml")
    model = TrainedModel.load(run_dir / block.artifacts["model"])
    sample = read_events(Path(data_file), mapping)
    if len(sample) == 0:
        raise CompareError(f"{data_file}: no events to compare")
    try:
        x = model.firmware_inputs(sample)
    except ValueError as exc:
        raise CompareError(f"{data_file} does not fit model {model_name!r}: {exc}") from exc

    with tempfile.TemporaryDirectory(prefix="l1flow-compare-") as scratch:
        firmware = build_firmware(config.firmware, model, block.precision.settings, Path(scratch), None)
        if firmware.firmware_hash != block.firmware_hash:
            raise CompareError(
                f"the firmware rebuilt from {run_dir / 'config.yaml'} has hash {firmware.firmware_hash[:12]}, "
                f"but the run verified {block.firmware_hash[:12]}; the toolchain changed since the run"
            )
        input_overflow = OverflowCount()
        check = check_emulation(model, firmware, x, block.decision_threshold, csim_events, input_overflow)
        overflow = [_overflow_row("input", "quantize", input_overflow)] + [
            {"layer": o.layer, "stage": o.stage, "values": o.values, "saturated_high": o.saturated_high,
             "saturated_low": o.saturated_low, "wrapped": o.wrapped, "overflowed": o.overflowed}
            for o in firmware.layer_overflows(check.input_words)
        ]
    result = {
        "run": summary.run_id,
        "model": model_name,
        "data_file": str(data_file),
        "software_vs_emulation": asdict(check.fidelity),
        "threshold": block.decision_threshold,
        "working_point_khz": config.trigger.working_point_khz,
        "decision_agreement": check.decision_agreement,
        "emulation_vs_csim": asdict(check.csim),
        "outside_layout": check_layout(sample.objects).to_dict(),
        "overflow": overflow,
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plot = plot_residuals(model_name, check.software, check.emulated, out_dir / f"{model_name}_residuals.png")
    write_json_atomic(out_dir / f"{model_name}_compare.json", result)
    return Comparison(model_name, str(data_file), result, plot)


def _overflow_row(layer: str, stage: str, count: OverflowCount) -> dict[str, Any]:
    return {
        "layer": layer, "stage": stage, "values": count.values, "saturated_high": count.saturated_high,
        "saturated_low": count.saturated_low, "wrapped": count.wrapped, "overflowed": count.overflowed,
    }
