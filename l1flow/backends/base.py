"""The one interface every firmware framework implements, beside the hardware sources' one.

Like conifer's backends, each framework is a small module with the same verbs:

- ``choose_precision(model, sample, config)`` the firmware types, chosen from the
  training sample and checked by bit-exact emulation;
- ``build(firmware, model, settings, folder, rtl_cache)`` write and compile the
  firmware project, read back the bit-exact emulator, and lay out the hardware
  sources (:class:`l1flow.hardware.base.HardwareSource`) that simulate its RTL;
- ``csim_predict(build, x)`` the project's C-simulation on real inputs;
- ``export_vectors(build, ...)`` a test-vector set for its ports
  (docs/formats.md, "Test vectors");
- ``layer_overflows(build, words)`` saturated or wrapped values inside the firmware.

:func:`l1flow.backends.backend_for` picks the backend from a model's framework;
the pipeline and ``l1flow compare`` never branch on the framework themselves.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from l1flow.firmware.fixed import FixedType
from l1flow.firmware.nn_emulator import LayerOverflow
from l1flow.firmware.vectors import VectorSet
from l1flow.hardware.base import HardwareSource

if TYPE_CHECKING:
    from l1flow.config import FirmwareConfig, PipelineConfig
    from l1flow.data.sample import EventSample
    from l1flow.training.model import TrainedModel


class BitExactEmulator(Protocol):
    """The fast numpy emulator of a firmware project: integers in, integers out."""

    def quantize_inputs(self, x: np.ndarray) -> np.ndarray: ...

    def predict_words(self, input_words: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class FirmwarePrecision:
    """The settings a firmware project is built with, and how they were chosen.

    ``settings`` is all :meth:`FirmwareBackend.build` needs to rebuild the same
    firmware: hls4ml precision overrides per layer, or conifer's precision strings.
    """

    settings: dict[str, Any]
    report: dict[str, Any]


@dataclass
class FirmwareBuild:
    """One model's built firmware: project, emulator, C-sim and hardware sources.

    ``design`` is the firmware read back from the project (a FirmwareNet or a
    FirmwareForest) and ``csim`` the compiled C-simulation; only the backend
    that built them reads either.
    """

    backend: FirmwareBackend
    model_name: str
    project_dir: Path
    firmware_hash: str
    emulator: BitExactEmulator
    input_type: FixedType
    output_type: FixedType
    hardware: list[HardwareSource]
    design: Any
    csim: Any

    @property
    def csim_label(self) -> str:
        return self.backend.csim_label

    def csim_predict(self, x: np.ndarray) -> np.ndarray:
        return self.backend.csim_predict(self, x)

    def export_vectors(
        self, input_words: np.ndarray, output_words: np.ndarray, model_info: dict[str, Any], folder: Path
    ) -> VectorSet:
        return self.backend.export_vectors(self, input_words, output_words, model_info, folder)

    def layer_overflows(self, input_words: np.ndarray) -> list[LayerOverflow]:
        return self.backend.layer_overflows(self, input_words)


class FirmwareBackend(ABC):
    """A firmware framework (hls4ml for QKeras nets, conifer for xgboost BDTs)."""

    #: the model framework it builds firmware for (TrainedModel.framework)
    framework: ClassVar[str]
    #: how its C-simulation is named in summaries and reports
    csim_label: ClassVar[str]

    @abstractmethod
    def choose_precision(self, model: TrainedModel, sample: EventSample, config: PipelineConfig) -> FirmwarePrecision:
        """Firmware types for ``model`` from ``sample``; PrecisionError when no type meets its targets."""

    @abstractmethod
    def build(
        self, firmware: FirmwareConfig, model: TrainedModel, settings: dict[str, Any], folder: Path,
        rtl_cache: Path | None,
    ) -> FirmwareBuild:
        """Write and compile the project under ``folder``; with ``rtl_cache``, also its hardware sources."""

    @abstractmethod
    def csim_predict(self, build: FirmwareBuild, x: np.ndarray) -> np.ndarray:
        """Real outputs (events, outputs) of the compiled C-simulation for real inputs."""

    @abstractmethod
    def export_vectors(
        self, build: FirmwareBuild, input_words: np.ndarray, output_words: np.ndarray,
        model_info: dict[str, Any], folder: Path,
    ) -> VectorSet:
        """Save a test-vector set for the firmware's ports and return it."""

    @abstractmethod
    def layer_overflows(self, build: FirmwareBuild, input_words: np.ndarray) -> list[LayerOverflow]:
        """Saturated or wrapped values at every cast inside the firmware, on ``input_words``."""
