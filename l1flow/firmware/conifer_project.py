"""BDT firmware projects with conifer: convert an xgboost booster, write and compile.

conifer's backends each need something from the process: the cpp and
xilinxhls backends compile a pybind11 bridge with ``$(python -m pybind11
--includes)``; the VHDL backend's FixedPointConverter compiles a helper
library in the *current directory* with ``python3 -m pybind11`` (the first
``python3`` on PATH: l1flow puts this interpreter's folder first, see
l1flow.toolchain). So the conversion runs inside the project's own temporary
folder, renamed into place only once it compiled, so a failed conversion
leaves no half-written project.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from l1flow.errors import BadInputError
from l1flow.fileio import atomic_folder

BACKENDS = ("cpp", "vhdl", "xilinxhls")

# conifer's ap_ type spellings: ap_fixed<W,I[,Q[,O[,N]]]>, ap_ufixed<...>, ap_int<W>, ap_uint<W>
_AP_TYPE = re.compile(r"^ap_(u?fixed)<\s*\d+\s*,\s*-?\d+\s*(,\s*AP_\w+\s*){0,2}(,\s*\d+\s*)?>$|^ap_(u?int)<\s*\d+\s*>$")

logger = logging.getLogger(__name__)


class ConiferProjectError(BadInputError):
    """A conifer project cannot be made from the given booster or settings."""


def _check_precision(name: str, value: str) -> str:
    spelled = value.strip()
    if not _AP_TYPE.match(spelled):
        raise ConiferProjectError(
            f"{name}={value!r} is not an ap_ type spelling; use e.g. 'ap_fixed<18,8>' or "
            "'ap_fixed<16,6,AP_RND,AP_SAT>' (ap_fixed, ap_ufixed, ap_int, ap_uint)"
        )
    return spelled


def _check_backend_precisions(backend: str, input_p: str, threshold_p: str, score_p: str) -> None:
    # The cpp backend casts inputs straight to the threshold type; the VHDL
    # backend converts inputs, thresholds and scores all with the input type
    # (signed tx/ty). Both would silently ignore a different setting.
    if backend in ("cpp", "vhdl") and input_p != threshold_p:
        raise ConiferProjectError(
            f"the conifer {backend} backend needs input_precision == threshold_precision, "
            f"got {input_p!r} and {threshold_p!r}"
        )
    if backend == "vhdl":
        if score_p != input_p:
            raise ConiferProjectError(
                "the conifer vhdl backend uses one type for inputs, thresholds and scores; "
                f"got input {input_p!r} and score {score_p!r}: set all three equal"
            )
        if input_p.startswith(("ap_ufixed", "ap_uint")):
            raise ConiferProjectError(
                f"the conifer vhdl backend holds words in VHDL 'signed'; {input_p!r} is unsigned, "
                "use the ap_fixed / ap_int spelling with one more bit"
            )


@contextlib.contextmanager
def _inside(workdir: Path) -> Iterator[None]:
    """Run inside `workdir` (conifer's VHDL converter builds its helper in the current folder)."""
    previous_dir = os.getcwd()
    os.chdir(workdir)
    try:
        yield
    finally:
        os.chdir(previous_dir)


def convert_xgboost(
    booster: Any,
    output_dir: Path | str,
    *,
    backend: str,
    input_precision: str,
    threshold_precision: str,
    score_precision: str,
    part: str,
    clock_period_ns: float,
    project_name: str = "my_prj",
    compile: bool = True,
) -> Any:
    """Convert an xgboost Booster (or XGBClassifier/XGBRegressor) into a written,
    compiled conifer model in `output_dir` (replaced if it exists).

    Returns the conifer model (``decision_function`` ready for the cpp and
    xilinxhls backends; for vhdl the GHDL libraries are analysed). With
    ``compile=False`` the model is only converted (its trees and types, for a
    precision search) and nothing is written.
    """
    import conifer  # heavy import, only when a project is made
    import xgboost

    if backend not in BACKENDS:
        raise ConiferProjectError(f"backend={backend!r}; choose one of {', '.join(BACKENDS)}")
    if not isinstance(booster, (xgboost.Booster, xgboost.XGBModel)):
        raise ConiferProjectError(
            f"expected an xgboost Booster, XGBClassifier or XGBRegressor, got {type(booster).__name__}"
        )
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", project_name):
        raise ConiferProjectError(
            f"project_name={project_name!r} must be a C/VHDL identifier (letters, digits, '_')"
        )
    if not clock_period_ns > 0:
        raise ConiferProjectError(f"clock_period_ns must be positive, got {clock_period_ns}")
    input_p = _check_precision("input_precision", input_precision)
    threshold_p = _check_precision("threshold_precision", threshold_precision)
    score_p = _check_precision("score_precision", score_precision)
    _check_backend_precisions(backend, input_p, threshold_p, score_p)
    if not compile:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        with _inside(Path(output_dir)):  # conifer's converter helper folders land in the working directory
            return conifer.converters.convert_from_xgboost(booster, {
                "Backend": backend, "OutputDir": str(output_dir), "ProjectName": project_name,
                "InputPrecision": input_p, "ThresholdPrecision": threshold_p, "ScorePrecision": score_p,
                "XilinxPart": part, "ClockPeriod": clock_period_ns,
            })
    if backend == "vhdl":
        from l1flow.toolchain import require_executable

        require_executable("ghdl", "the conifer VHDL backend", "Install Debian's 'ghdl' package.")

    output_dir = Path(output_dir).resolve()
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    with atomic_folder(output_dir) as staging:
        config = {
            "Backend": backend,
            "OutputDir": str(staging),
            "ProjectName": project_name,
            "InputPrecision": input_p,
            "ThresholdPrecision": threshold_p,
            "ScorePrecision": score_p,
            "XilinxPart": part,
            "ClockPeriod": clock_period_ns,
        }
        with _inside(staging):
            try:
                model = conifer.converters.convert_from_xgboost(booster, config)
                ok = model.compile()
            except Exception as exc:  # conifer raises bare Exception / AssertionError
                raise ConiferProjectError(
                    f"conifer's {backend} backend could not convert or compile the BDT ({exc}); "
                    f"the compiler's messages are above. Check the precisions {input_p}, "
                    f"{threshold_p}, {score_p} (ap_ type spellings the C++ headers accept)."
                ) from exc
        # The VHDL backend reports a failed GHDL analysis by return value only.
        if backend == "vhdl" and ok is False:
            log = staging / "ghdl_compile.log"
            detail = log.read_text()[-2000:] if log.exists() else "(no log)"
            raise ConiferProjectError(f"GHDL could not analyse the conifer VHDL project:\n{detail}")
        # conifer's converter helper folders land in the working directory
        for helper in staging.glob(".fp_converter_*"):
            shutil.rmtree(helper, ignore_errors=True)
    model.config.output_dir = str(output_dir)
    if backend == "cpp":
        # the bridge reads the project JSON at load time; keep the saved copy
        # pointing at the final folder
        model.save()
    return model
