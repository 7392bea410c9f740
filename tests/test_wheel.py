"""A wheel of l1flow, installed in a clean virtual environment, runs the pipeline.

Only an installed package is under test: the wheel is built from a copy of the
sources, installed into a new venv, and `l1flow run` runs from a folder outside
the checkout with no PYTHONPATH. The venv borrows the shared environment's
third-party packages through a ``.pth`` line (nothing is downloaded); that path
holds no ``l1flow`` package itself, only its editable-install hook, which a
plain path line does not run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("l1flow", "flows", "firmware_templates", "pyproject.toml", "README.md")

#: one small BDT, no synthesis: every stage runs, on as little as each accepts
TINY_CONFIG = {
    "name": "wheel_tiny",
    "seed": 3,
    "data": {
        "train_background": 2000, "train_signal": 200, "validation_background": 500, "validation_signal": 50,
        "test_background": 1000, "test_signal": 100,
    },
    "models": [{"kind": "bdt_classifier", "name": "bdt", "n_trees": 3, "max_depth": 2}],
    "synthesis": {"runner": "none"},
    "verify": {"emulation_events": 1000, "csim_events": 100, "hardware_events": 200, "ghdl_events": 10},
}


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "L1FLOW_WORKSPACE", "VIRTUAL_ENV")}


def _build_wheel(tmp_path: Path) -> Path:
    source = tmp_path / "src"
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            # keep l1flow/flows and l1flow/firmware_templates as the links they are
            shutil.copytree(REPO / name, source / name, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(REPO / name, source / name)
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(source)],
        check=True, capture_output=True, text=True, env=_clean_env(),
    )
    (wheel,) = dist.glob("l1flow-*.whl")
    return wheel


@pytest.mark.slow
def test_a_wheel_in_a_clean_venv_runs_the_pipeline(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    assert "l1flow/flows/pipeline.py" in names and "l1flow/firmware_templates/ghdl/l1flow_bdt_tb.vhd" in names
    assert not [n for n in names if n.startswith("flows/")], "the wheel must not install a top-level flows package"

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "shared-site-packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
                   check=True, capture_output=True, text=True, env=_clean_env())

    work = tmp_path / "elsewhere"
    work.mkdir()
    probe = subprocess.run(
        [python, "-c", "import importlib.util, l1flow; print(l1flow.__file__); "
         "print(importlib.util.find_spec('flows'))"],
        cwd=work, check=True, capture_output=True, text=True, env=_clean_env(),
    )
    installed, top_level_flows = probe.stdout.split()
    assert Path(installed).is_relative_to(site) and top_level_flows == "None"

    config = work / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY_CONFIG))
    env = {**_clean_env(), "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run([venv / "bin" / "l1flow", "run", str(config)], cwd=work, env=env,
                          capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stderr[-5000:]
    run_dir = Path(done.stdout.strip().splitlines()[-1].removeprefix("run folder: "))
    assert run_dir.is_relative_to(work / "work")
    bdt = json.loads((run_dir / "summary.json").read_text())["models"]["bdt"]
    # the packaged GHDL test bench and Verilator harness ran the firmware: words compared, none differ
    sources = {h["source"]: h for h in bdt["emulation_vs_hardware"]}
    assert sources["ghdl"]["events"] == 10 and sources["ghdl"]["mismatched_words"] == 0
    assert sources["verilator"]["events"] == 200 and sources["verilator"]["mismatched_words"] == 0
    listed = subprocess.run([venv / "bin" / "l1flow", "models", "list", "--json"], cwd=work, env=env,
                            check=True, capture_output=True, text=True)
    assert [m["name"] for m in json.loads(listed.stdout)] == ["bdt"]
