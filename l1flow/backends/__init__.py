"""Firmware backends: one per framework, the same verbs for each (see :mod:`l1flow.backends.base`)."""

from __future__ import annotations

from l1flow.backends.base import FirmwareBackend, FirmwareBuild, FirmwarePrecision
from l1flow.errors import BadInputError

__all__ = ["FirmwareBackend", "FirmwareBuild", "FirmwarePrecision", "backend_for"]


def backend_for(framework: str) -> FirmwareBackend:
    """The backend that builds firmware for models of ``framework`` ("qkeras" or "xgboost")."""
    # Imported here: each backend pulls in its framework's heavy tool (hls4ml, conifer).
    if framework == "qkeras":
        from l1flow.backends.hls4ml import Hls4mlBackend

        return Hls4mlBackend()
    if framework == "xgboost":
        from l1flow.backends.conifer import ConiferBackend

        return ConiferBackend()
    raise BadInputError(f"no firmware backend for models of framework {framework!r}; l1flow builds qkeras "
                        "(hls4ml) and xgboost (conifer) models")
