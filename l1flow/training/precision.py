"""Firmware precision, chosen from the training sample and checked by bit-exact emulation.

hls4ml (neural networks)
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

conifer (BDTs)
    Integer bits come from the ranges: the training sample's inputs, the
    booster's thresholds, and the largest score any path through the trees
    can sum to (so the score never wraps, for any input). Fractional bits are
    searched upwards with the fast bit-exact BDT emulator (not conifer's
    compile) until the emulated score is within ``max_score_deviation`` (in
    units of the background score's standard deviation) of xgboost's on at
    least ``output_agreement_target`` of the events, and trigger decisions at
    the working point agree on at least ``decision_agreement_target``. By
    default one type serves inputs, thresholds and scores, because conifer's
    VHDL backend (and its cpp backend for inputs) uses a single type.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from l1flow.data.sample import EventSample
from l1flow.errors import L1flowError
from l1flow.firmware.fixed import FixedType, to_float
from l1flow.training.metrics import decision_agreement, threshold_at_rate
from l1flow.training.model import TrainedModel
from l1flow.training.specs import FirmwarePrecisionSpec


class _FirmwareSettings(Protocol):
    @property
    def hls_backend(self) -> str: ...

    @property
    def io_type(self) -> str: ...


class _TriggerSettings(Protocol):
    @property
    def working_point_khz(self) -> float: ...

    @property
    def crossing_rate_mhz(self) -> float: ...


class PipelineSettings(Protocol):
    """What the precision search reads of a pipeline config (``l1flow.config.PipelineConfig`` is one).

    A protocol, not the config class, so that training does not import the
    config that imports training's model specs.
    """

    @property
    def firmware(self) -> _FirmwareSettings: ...

    @property
    def trigger(self) -> _TriggerSettings: ...


class PrecisionError(L1flowError):
    """No precision within the configured bounds meets the model's firmware targets."""


@dataclass
class HLSPrecision:
    """hls4ml precision: per-layer overrides (``{layer: {"result"|"accum": "fixed<W,I>"}}``) and the report."""

    overrides: dict[str, dict[str, str]]
    report: dict[str, Any] = field(default_factory=dict)


@dataclass
class ConiferPrecision:
    """conifer precision strings and the report of how they were found."""

    input_precision: str
    threshold_precision: str
    score_precision: str
    report: dict[str, Any] = field(default_factory=dict)


# -- shared ---------------------------------------------------------------------------


def _agreement(model: TrainedModel, inputs: np.ndarray, software: np.ndarray, emulated: np.ndarray,
               sample: EventSample, settings: FirmwarePrecisionSpec, working_point_khz: float,
               crossing_rate_mhz: float) -> dict[str, float]:
    """Score deviation and decision agreement of emulated vs software outputs on ``sample``."""
    sw_score = model.score_from_firmware_outputs(inputs, software)
    fw_score = model.score_from_firmware_outputs(inputs, emulated)
    background = sw_score[~sample.is_signal()]
    threshold = threshold_at_rate(background, working_point_khz, crossing_rate_mhz)
    spread = float(np.std(background)) or 1.0
    deviation = np.abs(fw_score - sw_score) / spread
    return {
        "events": int(len(inputs)),
        "identical_outputs": float(np.mean(np.all(software == emulated, axis=1))),
        "within_max_score_deviation": float(np.mean(deviation <= settings.max_score_deviation)),
        "max_score_deviation": float(deviation.max(initial=0.0)),
        "mean_score_deviation": float(deviation.mean()) if deviation.size else 0.0,
        "decision_agreement": decision_agreement(sw_score, fw_score, threshold),
        "threshold": threshold,
    }


def _meets(agreement: dict[str, float], settings: FirmwarePrecisionSpec) -> bool:
    return (agreement["within_max_score_deviation"] >= settings.output_agreement_target
            and agreement["decision_agreement"] >= settings.decision_agreement_target)


def _signed_integer_bits(largest: float) -> int:
    """Integer bits (sign included) of a signed type holding [-largest, largest]."""
    return int(np.ceil(np.log2(largest + 1.0))) + 1 if largest > 0 else 1


# -- hls4ml ---------------------------------------------------------------------------


def _convert(keras_model: Any, backend: str, io_type: str, output_dir: str) -> Any:
    """The in-memory hls4ml graph (nothing written or compiled) the firmware flow will build."""
    import hls4ml

    config = hls4ml.utils.config_from_keras_model(keras_model, granularity="name", backend=backend)
    return hls4ml.converters.convert_from_keras_model(
        keras_model, hls_config=config, output_dir=output_dir, backend=backend, io_type=io_type, bit_exact=True
    )


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


def choose_hls4ml_precision(model: TrainedModel, sample: EventSample, config: PipelineSettings, *,
                            backend: str | None = None) -> HLSPrecision:
    """hls4ml types for ``model``: checked to never overflow on ``sample`` and to meet its firmware targets.

    hls4ml's bit-exact conversion types every layer from the quantizers and
    ignores accumulator / result overrides, so ``overrides`` is empty; the
    report carries the evidence (overflow counts, headroom, agreement, cost).
    """
    from l1flow.firmware.netgraph import FirmwareNet
    from l1flow.firmware.nn_emulator import NNEmulator

    if model.framework != "qkeras":
        raise TypeError(f"model {model.name!r} is a {model.framework} model; use choose_conifer_precision")
    settings: FirmwarePrecisionSpec = model.spec.firmware
    backend = backend or config.firmware.hls_backend
    inputs = model.firmware_inputs(sample)
    software = model.software_outputs(inputs)
    ranges = _traced_ranges(model.firmware_model, inputs)
    with tempfile.TemporaryDirectory(prefix="l1flow-precision-") as scratch:
        hls_model = _convert(model.firmware_model, backend, config.firmware.io_type, scratch)
        net = FirmwareNet.from_hls_model(hls_model)
    emulator = NNEmulator(net)
    words = emulator.quantize_inputs(inputs)
    overflow_counts = check_no_overflow(model.name, emulator, words)
    emulated = to_float(emulator.predict_words(words), net.output.type)
    agreement = _agreement(model, inputs, software, emulated, sample, settings,
                           config.trigger.working_point_khz, config.trigger.crossing_rate_mhz)
    if not _meets(agreement, settings):
        raise PrecisionError(
            f"model {model.name!r}: with hls4ml's bit-exact types the emulation agrees with QKeras on "
            f"{agreement['decision_agreement']:.5f} of trigger decisions (target "
            f"{settings.decision_agreement_target}) and {agreement['within_max_score_deviation']:.5f} of scores "
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
            needed = _signed_integer_bits(traced) if types["result"].signed else int(np.ceil(np.log2(traced + 1.0)))
            row["headroom_bits"] = int(types["result"].integer - needed)
        layers.append(row)
    report = {
        "tool": "hls4ml",
        "method": "hls4ml bit_exact types derived from the QKeras quantizers; every cast overflow-counted "
                  "by bit-exact emulation of the training sample; headroom from QKeras-traced layer ranges",
        "events": int(len(inputs)),
        "overflow_counts": overflow_counts,
        "input_type": str(net.input.type),
        "output_type": str(net.output.type),
        "layers": layers,
        "cost_bits": cost,
        "agreement": agreement,
        "targets": settings.model_dump(),
    }
    return HLSPrecision(overrides={}, report=report)


# -- conifer --------------------------------------------------------------------------


def _booster_ranges(booster: Any) -> tuple[float, float]:
    """(largest |threshold|, largest |score| any path sums to, initial score included)."""
    import json

    dump = json.loads(booster.save_raw("json"))
    model = dump["learner"]["gradient_booster"]["model"]
    thresholds: list[float] = [0.0]
    worst = 0.0
    for tree in model["trees"]:
        left = np.asarray(tree["left_children"])
        leaf = left == -1
        conditions = np.asarray(tree["split_conditions"], dtype=np.float64)
        thresholds.append(float(np.abs(conditions[~leaf]).max(initial=0.0)))
        worst += float(np.abs(conditions[leaf]).max(initial=0.0))  # leaf values live in split_conditions
    return max(thresholds), worst


def _conifer_forest(booster: Any, precision: str, scratch: str) -> Any:
    import conifer

    from l1flow.firmware.forest import FirmwareForest

    config = {"Backend": "cpp", "OutputDir": scratch, "ProjectName": "precision_search",
              "InputPrecision": precision, "ThresholdPrecision": precision, "ScorePrecision": precision}
    return FirmwareForest.from_conifer(conifer.converters.convert_from_xgboost(booster, config))


def choose_conifer_precision(model: TrainedModel, sample: EventSample, config: PipelineSettings) -> ConiferPrecision:
    """One ``ap_fixed<W,I,AP_RND>`` for inputs, thresholds and scores meeting ``model.spec.firmware``'s targets.

    A single type because the pipeline builds conifer's VHDL backend, which
    holds inputs, thresholds and scores in one type.
    """
    from l1flow.firmware.bdt_emulator import BDTEmulator

    if model.framework != "xgboost":
        raise TypeError(f"model {model.name!r} is a {model.framework} model; use choose_hls4ml_precision")
    settings: FirmwarePrecisionSpec = model.spec.firmware
    inputs = model.firmware_inputs(sample)
    software = model.software_outputs(inputs)
    largest_threshold, largest_score = _booster_ranges(model.firmware_model)
    integer_bits = {
        "input": _signed_integer_bits(float(np.abs(inputs).max(initial=0.0))),
        "threshold": _signed_integer_bits(largest_threshold),
        "score": _signed_integer_bits(largest_score + _base_margin(model)),
    }
    integer = max(integer_bits.values()) + settings.integer_margin_bits
    trials: list[dict[str, Any]] = []
    chosen: str | None = None
    with tempfile.TemporaryDirectory(prefix="l1flow-precision-") as scratch:
        for fractional in range(settings.min_fractional_bits, settings.max_fractional_bits + 1):
            width = integer + fractional
            if width > settings.max_total_bits:
                break
            # Round to nearest: truncated leaves would bias the summed score by
            # about n_trees / 2 LSB, flipping decisions near the threshold.
            precision = f"ap_fixed<{width},{integer},AP_RND>"
            emulator = BDTEmulator(_conifer_forest(model.firmware_model, precision, scratch))
            emulated = to_float(emulator.predict_words(emulator.quantize_inputs(inputs)), emulator.output_type)
            agreement = _agreement(model, inputs, software, emulated, sample, settings,
                                   config.trigger.working_point_khz, config.trigger.crossing_rate_mhz)
            trials.append({"precision": precision, **{k: agreement[k] for k in (
                "decision_agreement", "within_max_score_deviation", "max_score_deviation")}})
            if _meets(agreement, settings):
                chosen = precision
                break
    if chosen is None:
        last = trials[-1] if trials else {}
        raise PrecisionError(
            f"model {model.name!r}: no conifer precision up to {settings.max_fractional_bits} fractional bits "
            f"(max_total_bits {settings.max_total_bits}) meets the targets; the widest tried ({last.get('precision')}) "
            f"reached decision agreement {last.get('decision_agreement')} and score agreement "
            f"{last.get('within_max_score_deviation')}; raise firmware.max_fractional_bits or relax the targets"
        )
    chosen_type = FixedType.parse(chosen)
    n_features = inputs.shape[1]
    n_nodes, n_leaves = _node_counts(model.firmware_model)
    report = {
        "tool": "conifer",
        "method": "integer bits from the input, threshold and summed-score ranges; fractional bits by search "
                  "with the bit-exact BDT emulator on the training sample",
        "events": int(len(inputs)),
        "integer_bits": integer_bits,
        "integer_margin_bits": settings.integer_margin_bits,
        "largest_threshold": largest_threshold,
        "largest_path_score": largest_score,
        "precision": chosen,
        "trials": trials,
        "agreement": agreement,
        "cost_bits": {
            "input_bits": int(n_features * chosen_type.width),
            "threshold_bits": int(n_nodes * chosen_type.width),
            "leaf_bits": int(n_leaves * chosen_type.width),
            "score_bits": int(chosen_type.width),
        },
        "targets": settings.model_dump(),
    }
    return ConiferPrecision(input_precision=chosen, threshold_precision=chosen, score_precision=chosen, report=report)


def _base_margin(model: TrainedModel) -> float:
    """|initial score| conifer adds before the trees (xgboost's base score as a margin)."""
    import json

    params = json.loads(model.firmware_model.save_config())["learner"]["learner_model_param"]
    base = float(str(params["base_score"]).strip("[]").split(",")[0])
    objective = json.loads(model.firmware_model.save_config())["learner"]["objective"]["name"]
    if objective.startswith("binary:logistic") and 0.0 < base < 1.0:
        return abs(float(np.log(base / (1.0 - base))))
    return abs(base)


def _node_counts(booster: Any) -> tuple[int, int]:
    import json

    model = json.loads(booster.save_raw("json"))["learner"]["gradient_booster"]["model"]
    nodes = leaves = 0
    for tree in model["trees"]:
        left = np.asarray(tree["left_children"])
        leaves += int((left == -1).sum())
        nodes += int((left != -1).sum())
    return nodes, leaves
