"""The firmware templates (test benches, Verilator harnesses, Tcl) shipped inside the package.

The repository keeps them in the top-level ``firmware_templates/`` folder; the
package carries the same files as ``l1flow/firmware_templates`` (package data),
so an installed wheel finds them exactly as a source checkout does.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def template_path(*parts: str) -> Path:
    """The path of a packaged template file or folder, e.g. ``template_path("tcl", "vivado_synth_rtl.tcl")``."""
    # l1flow is a regular package on disk (never a zip), so its resources are real files
    return Path(str(resources.files("l1flow").joinpath("firmware_templates", *parts)))
