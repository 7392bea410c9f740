"""Firmware precision: hls4ml types overflow-checked by emulation, conifer types found by search."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from l1flow.backends.conifer import choose_conifer_precision
from l1flow.backends.hls4ml import check_no_overflow, choose_hls4ml_precision
from l1flow.backends.precision import PrecisionError
from l1flow.conditions.payload import ConditionsPayload
from l1flow.config import PipelineConfig
from l1flow.data.generator import generate_events
from l1flow.data.sample import EventSample
from l1flow.firmware.fixed import FixedType
from l1flow.firmware.hls4ml_project import convert_keras
from l1flow.training.model import TrainedModel
from l1flow.training.specs import BDTClassifierSpec, DenseAESpec, DenseLayerSpec
from l1flow.training.train import train_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def config() -> PipelineConfig:
    return PipelineConfig(name="precision_test", models=[{"kind": "dense_ae", "name": "ae"}],
                          trigger={"working_point_khz": 100.0})


@pytest.fixture(scope="module")
def sample() -> EventSample:
    return generate_events(ConditionsPayload(), 3000, 300, seed=21)


@pytest.fixture(scope="module")
def ae(sample: EventSample) -> TrainedModel:
    spec = DenseAESpec(name="ae", encoder=[DenseLayerSpec(units=8)], latent=DenseLayerSpec(units=2), epochs=1,
                       batch_size=256)
    return train_model(spec, sample, sample, seed=1)


@pytest.fixture(scope="module")
def bdt(sample: EventSample) -> TrainedModel:
    return train_model(BDTClassifierSpec(name="bdt", n_trees=15, max_depth=3), sample, sample, seed=1)


def test_hls4ml_types_never_overflow_and_agree(ae: TrainedModel, sample: EventSample, config: PipelineConfig) -> None:
    chosen = choose_hls4ml_precision(ae, sample, config)
    report = chosen.report
    assert chosen.settings == {"overrides": {}}
    assert report["overflow_counts"] and all(c["overflowed"] == 0 for c in report["overflow_counts"])
    assert report["agreement"]["identical_outputs"] == 1.0
    assert report["agreement"]["decision_agreement"] == 1.0
    dense = [layer for layer in report["layers"] if layer["kind"] == "dense"]
    assert [layer["layer"] for layer in dense] == ["enc0", "latent", "dec0", "reco"]
    # every weight is an 8-bit word: 57*8 + 8*2 + 2*8 + 8*57 weights
    assert report["cost_bits"]["weight_bits"] == 8 * (57 * 8 + 8 * 2 + 2 * 8 + 8 * 57)
    assert report["cost_bits"]["input_bits"] == 57 * 11  # the default 11-bit input quantizer
    assert all(layer["headroom_bits"] >= 0 for layer in report["layers"] if "headroom_bits" in layer)


def test_overflow_check_catches_a_narrowed_accumulator(ae: TrainedModel, sample: EventSample, tmp_path) -> None:
    from l1flow.firmware.netgraph import FirmwareNet
    from l1flow.firmware.nn_emulator import NNEmulator

    graph = convert_keras(ae.firmware_model, tmp_path, part="xcvu9p-flgb2104-2L-e", clock_period_ns=5.0, compile=False)
    net = FirmwareNet.from_hls_model(graph)
    words = NNEmulator(net).quantize_inputs(ae.firmware_inputs(sample))
    assert all(c["overflowed"] == 0 for c in check_no_overflow("ae", NNEmulator(net), words))
    first = net.layers[0]
    narrow = FixedType(first.accum_type.frac + 2, 2)  # keeps the fraction, only [-2, 2) of range
    net.layers[0] = dataclasses.replace(first, accum_type=narrow, result_type=narrow)
    with pytest.raises(PrecisionError, match=r"enc0 (accumulator|result): \d+ of \d+ values"):
        check_no_overflow("ae", NNEmulator(net), words)


def test_unquantized_layer_fails_a_strict_agreement_target(sample: EventSample, config: PipelineConfig) -> None:
    import tensorflow as tf
    spec = DenseAESpec(name="ae", encoder=[DenseLayerSpec(units=4)], latent=DenseLayerSpec(units=2), epochs=1)
    base = train_model(spec, sample, sample, seed=1)
    # a float batch normalisation: its scale 3 / sqrt(1.7) has no exact fixed-point form
    x = base.firmware_model.output
    bn = tf.keras.layers.BatchNormalization(name="float_bn")
    y = bn(x)
    bn.set_weights([np.full(57, 3.0, np.float32), np.full(57, 0.1, np.float32), np.zeros(57, np.float32),
                    np.full(57, 1.7, np.float32)])
    float_model = tf.keras.Model(base.firmware_model.input, y)
    # every score must match software to 1e-9 of the background spread
    strict = spec.model_copy(update={"firmware": spec.firmware.model_copy(
        update={"max_score_deviation": 1e-9, "output_agreement_target": 1.0})})
    exact = choose_hls4ml_precision(dataclasses.replace(base, spec=strict), sample, config)
    assert exact.report["agreement"]["max_score_deviation"] == 0.0  # the all-QKeras net meets it
    broken = dataclasses.replace(base, firmware_model=float_model, spec=strict)
    with pytest.raises(PrecisionError, match="agrees with QKeras|hls4ml"):
        choose_hls4ml_precision(broken, sample, config)


def test_conifer_precision_is_the_narrowest_meeting_the_targets(bdt: TrainedModel, sample: EventSample,
                                                                 config: PipelineConfig) -> None:
    chosen = choose_conifer_precision(bdt, sample, config)
    report = chosen.report
    precision = chosen.settings["score_precision"]
    assert chosen.settings == {"input_precision": precision, "threshold_precision": precision,
                               "score_precision": precision}
    match = re.fullmatch(r"ap_fixed<(\d+),(\d+),AP_RND>", precision)
    assert match
    width, integer = int(match[1]), int(match[2])
    largest_input = int(np.abs(bdt.firmware_inputs(sample)).max())
    assert 2 ** (integer - 1) > largest_input  # inputs fit with their sign bit
    agreement = report["agreement"]
    settings = bdt.spec.firmware
    assert agreement["decision_agreement"] >= settings.decision_agreement_target
    assert agreement["within_max_score_deviation"] >= settings.output_agreement_target
    trials = report["trials"]
    assert trials[-1]["precision"] == precision
    if len(trials) > 1:  # one fractional bit fewer misses a target
        previous = trials[-2]
        assert (previous["decision_agreement"] < settings.decision_agreement_target
                or previous["within_max_score_deviation"] < settings.output_agreement_target)
    assert report["cost_bits"]["score_bits"] == width


def test_conifer_search_bounds_too_tight_fail_clearly(bdt: TrainedModel, sample: EventSample,
                                                      config: PipelineConfig) -> None:
    tight = bdt.spec.model_copy(update={"firmware": bdt.spec.firmware.model_copy(
        update={"min_fractional_bits": 0, "max_fractional_bits": 0, "max_score_deviation": 0.001})})
    with pytest.raises(PrecisionError, match="max_fractional_bits"):
        choose_conifer_precision(dataclasses.replace(bdt, spec=tight), sample, config)
