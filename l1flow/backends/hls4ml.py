"""The hls4ml backend: QKeras nets as Vitis/Vivado HLS projects, emulated by l1flow.firmware.nn_emulator.

Precision
---------
    The net is converted with ``bit_exact=True``: hls4ml derives every
    accumulator and result type from the QKeras quantizers so no value can
    overflow. That is checked, not assumed: the firmware net is read back from
    the converted graph and the bit-exact emulator runs the whole training
    sample, counting every saturated or wrapped value per layer and cast; any
    overflow stops with an error naming the layer. (hls4ml's bit-exact pass
    ignores accumulator / result overrides, so there is nothing to widen by
    hand: the fix is a quantizer in QKeras.) The report gives every layer's
    types, the range QKeras traces there, the headroom left, the cost in bits,
    and the software-vs-emulation agreement of outputs and trigger decisions.

Build
-----
The project is converted with ``bit_exact=True`` and compiled (the C-sim);
the firmware net is read back from hls4ml's graph, so the emulator and the
test vectors follow the project's own types. With an RTL cache the net is
also generated as da4ml RTL for Verilator (l1flow.hardware.da4ml_rtl).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from l1flow.backends.base import FirmwareBackend, FirmwareBuild, FirmwarePrecision
from l1flow.backends.precision import (
    PrecisionError,
    agreement,
    meets,
    signed_integer_bits,
)
from l1flow.data.sample import EventSample
from l1flow.firmware import netgraph
from l1flow.firmware.fixed import FixedType, to_float
from l1flow.firmware.hls4ml_project import convert_keras
from l1flow.firmware.netgraph import FirmwareNet
from l1flow.firmware.nn_emulator import LayerOverflow, NNEmulator
from l1flow.firmware.vectors import VectorSet
from l1flow.hardware.da4ml_rtl import Da4mlRTLSource, latency_cutoff_for_clock
from l1flow.training.model import TrainedModel
from l1flow.training.specs import FirmwarePrecisionSpec

if TYPE_CHECKING:
    from l1flow.config import FirmwareConfig, PipelineConfig


class Hls4mlBackend(FirmwareBackend):
    """QKeras autoencoders and classifiers through hls4ml."""

    framework = "qkeras"
    csim_label = "hls4ml C-sim"

    def choose_precision(self, model: TrainedModel, sample: EventSample, config: PipelineConfig) -> FirmwarePrecision:
        return choose_hls4ml_precision(model, sample, config)

    def build(
        self, firmware: FirmwareConfig, model: TrainedModel, settings: dict[str, Any], folder: Path,
        rtl_cache: Path | None,
    ) -> FirmwareBuild:
        hls_model = convert_keras(
            model.firmware_model,
            folder / "hls4ml",
            part=firmware.part,
            clock_period_ns=firmware.clock_period_ns,
            backend=firmware.hls_backend,
            io_type=firmware.io_type,
            precision_overrides=settings["overrides"],
        )
        net = FirmwareNet.from_hls_model(hls_model)
        return FirmwareBuild(
            backend=self,
            model_name=model.name,
            project_dir=folder / "hls4ml",
            firmware_hash=net.content_hash(),
            emulator=NNEmulator(net),
            input_type=net.input.type,
            output_type=net.output.type,
            # pipelined to the configured clock, one event per clock, as the firmware would run
            hardware=[] if rtl_cache is None else [Da4mlRTLSource(
                net, folder / "da4ml_rtl", latency_cutoff=latency_cutoff_for_clock(firmware.clock_period_ns),
                cache_dir=rtl_cache,
            )],
            design=net,
            csim=hls_model,
        )

    def csim_predict(self, build: FirmwareBuild, x: np.ndarray) -> np.ndarray:
        return np.asarray(build.csim.predict(np.ascontiguousarray(x))).reshape(len(x), -1)

    def export_vectors(
        self, build: FirmwareBuild, input_words: np.ndarray, output_words: np.ndarray,
        model_info: dict[str, Any], folder: Path,
    ) -> VectorSet:
        return netgraph.export_vectors(build.design, input_words, output_words, model_info, folder)

    def layer_overflows(self, build: FirmwareBuild, input_words: np.ndarray) -> list[LayerOverflow]:
        emulator: NNEmulator = build.emulator  # type: ignore[assignment]
        return emulator.overflow_report(input_words)


def _traced_ranges(keras_model: Any, inputs: np.ndarray) -> dict[str, float]:
    """Largest |value| at every layer's output on ``inputs`` (QKeras's own forward pass)."""
    import tensorflow as tf

    layers = [layer for layer in keras_model.layers if not isinstance(layer, tf.keras.layers.InputLayer)]
    tracer = tf.keras.Model(keras_model.inputs, [layer.output for layer in layers])
    outputs = tracer.predict(inputs.astype(np.float32), batch_size=16384, verbose=0)
    if len(layers) == 1:
        outputs = [outputs]
    return {layer.name: float(np.abs(out).max(initial=0.0)) for layer, out in zip(layers, outputs)}


def _layer_types(net: Any) -> list[dict[str, Any]]:
    rows = []
    for layer in net.layers:
        types = {key: getattr(layer, f"{key}_type") for key in ("accum", "result") if hasattr(layer, f"{key}_type")}
        n_out = int(np.prod(layer.output_shape)) if hasattr(layer, "output_shape") else None
        weight = getattr(layer, "weight", None)
        rows.append({
            "layer": layer.name,
            "kind": getattr(layer, "kind", type(layer).__name__),
            "outputs": n_out,
            "types": {k: str(t) for k, t in types.items()},
            "weight_type": str(layer.weight_type) if hasattr(layer, "weight_type") else None,
            "weights": int(np.size(weight)) if weight is not None else 0,
            "_types": types,
        })
    return rows


def _hls_cost(rows: list[dict[str, Any]], net: Any) -> dict[str, int]:
    """Bits the firmware holds: every weight, every accumulator and every layer output."""
    weight_bits = sum(r["weights"] * FixedType.parse(r["weight_type"]).width for r in rows if r["weights"])
    accum_bits = sum((r["outputs"] or 0) * r["_types"]["accum"].width for r in rows if "accum" in r["_types"])
    result_bits = sum((r["outputs"] or 0) * r["_types"]["result"].width for r in rows if "result" in r["_types"])
    return {"weight_bits": int(weight_bits), "accumulator_bits": int(accum_bits), "result_bits": int(result_bits),
            "input_bits": int(net.n_inputs * net.input.type.width), "output_bits": int(net.n_outputs * net.output.type.width)}


def check_no_overflow(model_name: str, emulator: Any, input_words: np.ndarray) -> list[dict[str, Any]]:
    """Run the bit-exact emulator's overflow count over ``input_words``; PrecisionError naming every overflow.

    Returns the per-layer, per-cast counts (all zero overflows) for the report.
    """
    counts = emulator.overflow_report(input_words)
    overflowing = [c for c in counts if c.overflowed]
    if overflowing:
        detail = "; ".join(
            f"{c.layer} {c.stage}: {c.overflowed} of {c.values} values (saturated high {c.saturated_high}, "
            f"low {c.saturated_low}, wrapped {c.wrapped})" for c in overflowing
        )
        raise PrecisionError(
            f"model {model_name!r}: the firmware types overflow on the training sample: {detail}. "
            "Quantize that layer in QKeras (or widen its quantizer) so hls4ml's bit-exact conversion types it"
        )
    return [{"layer": c.layer, "stage": c.stage, "values": c.values, "overflowed": c.overflowed} for c in counts]


def choose_hls4ml_precision(model: TrainedModel, sample: EventSample, config: PipelineConfig, *,
                            backend: str | None = None) -> FirmwarePrecision:
    """hls4ml types for ``model``: checked to never overflow on ``sample`` and to meet its firmware targets.

    hls4ml's bit-exact conversion types every layer from the quantizers and
    ignores accumulator / result overrides, so ``overrides`` is empty; the
    report carries the evidence (overflow counts, headroom, agreement, cost).
    """
    if model.framework != "qkeras":
        raise TypeError(f"model {model.name!r} is a {model.framework} model; use choose_conifer_precision")
    settings: FirmwarePrecisionSpec = model.spec.firmware
    backend = backend or config.firmware.hls_backend
    inputs = model.firmware_inputs(sample)
    software = model.software_outputs(inputs)
    ranges = _traced_ranges(model.firmware_model, inputs)
    with tempfile.TemporaryDirectory(prefix="l1flow-precision-") as scratch:
        hls_model = convert_keras(
            model.firmware_model, scratch, part=config.firmware.part, clock_period_ns=config.firmware.clock_period_ns,
            backend=backend, io_type=config.firmware.io_type, compile=False,
        )
        net = FirmwareNet.from_hls_model(hls_model)
    emulator = NNEmulator(net)
    words = emulator.quantize_inputs(inputs)
    overflow_counts = check_no_overflow(model.name, emulator, words)
    emulated = to_float(emulator.predict_words(words), net.output.type)
    agreed = agreement(model, inputs, software, emulated, sample, settings,
                       config.trigger.working_point_khz, config.trigger.crossing_rate_mhz)
    if not meets(agreed, settings):
        raise PrecisionError(
            f"model {model.name!r}: with hls4ml's bit-exact types the emulation agrees with QKeras on "
            f"{agreed['decision_agreement']:.5f} of trigger decisions (target "
            f"{settings.decision_agreement_target}) and {agreed['within_max_score_deviation']:.5f} of scores "
            f"(target {settings.output_agreement_target}); check that every layer is quantized in QKeras"
        )
    rows = _layer_types(net)
    cost = _hls_cost(rows, net)
    layers = []
    for row in rows:
        types: dict[str, FixedType] = row.pop("_types")
        traced = ranges.get(row["layer"])
        if traced is not None and "result" in types:
            row["traced_max_abs"] = traced
            # integer bits the values need vs the bits the type has (sign bit counted for signed types)
            needed = signed_integer_bits(traced) if types["result"].signed else int(np.ceil(np.log2(traced + 1.0)))
            row["headroom_bits"] = int(types["result"].integer - needed)
        layers.append(row)
    report = {
        "tool": "hls4ml",
        "method": "hls4ml bit_exact types derived from the QKeras quantizers; every cast overflow-counted "
                  "by bit-exact emulation of the training sample; headroom from QKeras-traced layer ranges",
        "events": len(inputs),
        "overflow_counts": overflow_counts,
        "input_type": str(net.input.type),
        "output_type": str(net.output.type),
        "layers": layers,
        "cost_bits": cost,
        "agreement": agreed,
        "targets": settings.model_dump(),
    }
    return FirmwarePrecision({"overrides": {}}, report)
