"""Firmware precision, chosen from the training sample and checked by bit-exact emulation.

The search itself belongs to each backend (:mod:`l1flow.backends.hls4ml`,
:mod:`l1flow.backends.conifer`); this module holds what both share: the
agreement of emulated with software scores and trigger decisions, and the
targets of a model's ``firmware`` spec.
"""

from __future__ import annotations

import numpy as np

from l1flow.data.sample import EventSample
from l1flow.errors import L1flowError
from l1flow.training.metrics import decision_agreement, threshold_at_rate
from l1flow.training.model import TrainedModel
from l1flow.training.specs import FirmwarePrecisionSpec


class PrecisionError(L1flowError):
    """No precision within the configured bounds meets the model's firmware targets."""


def agreement(model: TrainedModel, inputs: np.ndarray, software: np.ndarray, emulated: np.ndarray,
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
        "events": len(inputs),
        "identical_outputs": float(np.mean(np.all(software == emulated, axis=1))),
        "within_max_score_deviation": float(np.mean(deviation <= settings.max_score_deviation)),
        "max_score_deviation": float(deviation.max(initial=0.0)),
        "mean_score_deviation": float(deviation.mean()) if deviation.size else 0.0,
        "decision_agreement": decision_agreement(sw_score, fw_score, threshold),
        "threshold": threshold,
    }


def meets(result: dict[str, float], settings: FirmwarePrecisionSpec) -> bool:
    """Whether an :func:`agreement` result reaches the spec's score and decision targets."""
    return (result["within_max_score_deviation"] >= settings.output_agreement_target
            and result["decision_agreement"] >= settings.decision_agreement_target)


def signed_integer_bits(largest: float) -> int:
    """Integer bits (sign included) of a signed type holding [-largest, largest]."""
    return int(np.ceil(np.log2(largest + 1.0))) + 1 if largest > 0 else 1
