"""The conifer backend: xgboost BDTs as conifer projects, emulated by l1flow.firmware.bdt_emulator.

Precision
---------
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

Build
-----
conifer's cpp backend is the C-sim and the source of the firmware forest the
emulator runs; with an RTL cache its VHDL backend is written too, simulated
by GHDL and, converted to Verilog, by Verilator (l1flow.hardware).
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
from l1flow.firmware import bdt_emulator
from l1flow.firmware.bdt_emulator import BDTEmulator
from l1flow.firmware.conifer_project import convert_xgboost
from l1flow.firmware.fixed import FixedType, to_float
from l1flow.firmware.forest import FirmwareForest
from l1flow.firmware.nn_emulator import LayerOverflow
from l1flow.firmware.vectors import VectorSet
from l1flow.hardware.base import HardwareSource
from l1flow.hardware.ghdl import GHDLSource
from l1flow.hardware.verilator_bdt import VerilatorBDTSource
from l1flow.training.model import TrainedModel
from l1flow.training.specs import FirmwarePrecisionSpec

if TYPE_CHECKING:
    from l1flow.config import FirmwareConfig, PipelineConfig


class ConiferBackend(FirmwareBackend):
    """xgboost classifiers and regressors through conifer."""

    framework = "xgboost"
    csim_label = "conifer cpp C-sim"

    def choose_precision(self, model: TrainedModel, sample: EventSample, config: PipelineConfig) -> FirmwarePrecision:
        return choose_conifer_precision(model, sample, config)

    def build(
        self, firmware: FirmwareConfig, model: TrainedModel, settings: dict[str, Any], folder: Path,
        rtl_cache: Path | None,
    ) -> FirmwareBuild:
        common = dict(settings, part=firmware.part, clock_period_ns=firmware.clock_period_ns)
        csim_model = convert_xgboost(model.firmware_model, folder / "conifer_cpp", backend="cpp", **common)
        hardware: list[HardwareSource] = []
        if rtl_cache is not None:
            convert_xgboost(model.firmware_model, folder / "conifer_vhdl", backend="vhdl", **common)
            hardware = [
                VerilatorBDTSource(folder / "conifer_vhdl", cache_dir=rtl_cache),
                GHDLSource(folder / "conifer_vhdl"),
            ]
        forest = FirmwareForest.from_conifer(csim_model)
        return FirmwareBuild(
            backend=self,
            model_name=model.name,
            project_dir=folder / "conifer_cpp",
            firmware_hash=forest.content_hash(),
            emulator=BDTEmulator(forest),
            input_type=forest.input_type,
            output_type=forest.norm_type,
            hardware=hardware,
            design=forest,
            csim=csim_model,
        )

    def csim_predict(self, build: FirmwareBuild, x: np.ndarray) -> np.ndarray:
        return np.asarray(build.csim.decision_function(x)).reshape(len(x), -1)

    def export_vectors(
        self, build: FirmwareBuild, input_words: np.ndarray, output_words: np.ndarray,
        model_info: dict[str, Any], folder: Path,
    ) -> VectorSet:
        return bdt_emulator.export_vectors(build.design, input_words, output_words, model_info, folder)

    def layer_overflows(self, build: FirmwareBuild, input_words: np.ndarray) -> list[LayerOverflow]:
        """None to count: the forest compares words and sums leaves whose integer bits
        (chosen by :func:`choose_conifer_precision`) hold any path's sum; the input
        cast is counted by the caller."""
        return []


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


def choose_conifer_precision(model: TrainedModel, sample: EventSample, config: PipelineConfig) -> FirmwarePrecision:
    """One ``ap_fixed<W,I,AP_RND>`` for inputs, thresholds and scores meeting ``model.spec.firmware``'s targets.

    A single type because the pipeline builds conifer's VHDL backend, which
    holds inputs, thresholds and scores in one type.
    """
    if model.framework != "xgboost":
        raise TypeError(f"model {model.name!r} is a {model.framework} model; use choose_hls4ml_precision")
    settings: FirmwarePrecisionSpec = model.spec.firmware
    inputs = model.firmware_inputs(sample)
    software = model.software_outputs(inputs)
    largest_threshold, largest_score = _booster_ranges(model.firmware_model)
    integer_bits = {
        "input": signed_integer_bits(float(np.abs(inputs).max(initial=0.0))),
        "threshold": signed_integer_bits(largest_threshold),
        "score": signed_integer_bits(largest_score + _base_margin(model)),
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
            forest = FirmwareForest.from_conifer(convert_xgboost(
                model.firmware_model, scratch, backend="cpp", input_precision=precision,
                threshold_precision=precision, score_precision=precision, part=config.firmware.part,
                clock_period_ns=config.firmware.clock_period_ns, project_name="precision_search", compile=False,
            ))
            emulator = BDTEmulator(forest)
            emulated = to_float(emulator.predict_words(emulator.quantize_inputs(inputs)), emulator.output_type)
            agreed = agreement(model, inputs, software, emulated, sample, settings,
                               config.trigger.working_point_khz, config.trigger.crossing_rate_mhz)
            trials.append({"precision": precision, **{k: agreed[k] for k in (
                "decision_agreement", "within_max_score_deviation", "max_score_deviation")}})
            if meets(agreed, settings):
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
        "events": len(inputs),
        "integer_bits": integer_bits,
        "integer_margin_bits": settings.integer_margin_bits,
        "largest_threshold": largest_threshold,
        "largest_path_score": largest_score,
        "precision": chosen,
        "trials": trials,
        "agreement": agreed,
        "cost_bits": {
            "input_bits": int(n_features * chosen_type.width),
            "threshold_bits": int(n_nodes * chosen_type.width),
            "leaf_bits": int(n_leaves * chosen_type.width),
            "score_bits": int(chosen_type.width),
        },
        "targets": settings.model_dump(),
    }
    return FirmwarePrecision(
        {"input_precision": chosen, "threshold_precision": chosen, "score_precision": chosen}, report
    )


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
