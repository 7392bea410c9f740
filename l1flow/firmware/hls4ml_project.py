"""hls4ml projects for QKeras nets: conversion, what later steps need, raw-word C-sim.

`convert_keras` converts with ``bit_exact=True`` (measured: 0 of 20,000 events
differ from QKeras, against 44% without it), writes and compiles the project.
`project_info` tells later steps the top function, the firmware sources and
the port types read from the graph. `write_raw_testbench` /
`build_raw_testbench` / `run_raw_testbench` turn the project into a C
simulation that reads and writes raw words (g++ here, the vendor's C-sim or
co-simulation on a synthesis host).
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from l1flow.errors import L1flowError
from l1flow.fileio import atomic_path, write_text_atomic
from l1flow.firmware.fixed import FixedType
from l1flow.firmware.netgraph import fixed_type_from_hls
from l1flow.firmware.vectors import INPUTS_FILE, Port, VectorSet, read_words, write_words
from l1flow.templates import template_path
from l1flow.toolchain import ap_types_include, require_executable

TEMPLATE_DIR = template_path("hls_testbench")
RAW_TESTBENCH_TEMPLATE = "raw_words_test.cpp"
RAW_INPUTS = "raw_inputs.txt"
RAW_OUTPUTS = "raw_outputs.txt"


class Hls4mlProjectError(L1flowError):
    """The model or project cannot be turned into (or run as) an hls4ml C simulation."""


@dataclass(frozen=True)
class Hls4mlProject:
    """What a later step needs to know about a written hls4ml project."""

    project_dir: Path
    project_name: str
    top_function: str
    backend: str
    io_type: str
    part: str
    clock_period_ns: float
    inputs: tuple[Port, ...]
    outputs: tuple[Port, ...]
    firmware_files: tuple[Path, ...]

    @property
    def input_types(self) -> tuple[FixedType, ...]:
        return tuple(FixedType.parse(p.type) for p in self.inputs)

    @property
    def output_types(self) -> tuple[FixedType, ...]:
        return tuple(FixedType.parse(p.type) for p in self.outputs)


def _check_quantized_input(model: Any) -> None:
    """The firmware input must be quantized in the model itself.

    hls4ml's ``bit_exact`` conversion matched QKeras on every event (0 of 20,000
    different) for a model whose input goes through ``QActivation(quantized_bits(...))``;
    the firmware's input type is then the quantizer's, not a guess.
    """
    from qkeras import QActivation  # heavy import, only when converting

    inputs = {id(t) for t in model.inputs}
    first = [
        layer for layer in model.layers
        if type(layer).__name__ != "InputLayer" and any(id(n) in inputs for n in _inbound_tensors(layer))
    ]
    ok = [
        layer for layer in first
        if isinstance(layer, QActivation) and "quantized_bits" in str(layer.get_config().get("activation", ""))
    ]
    if not first or len(ok) != len(first):
        names = ", ".join(f"{layer.name} ({type(layer).__name__})" for layer in first) or "none"
        raise Hls4mlProjectError(
            "the model input must go through QActivation(quantized_bits(...)) so that software and "
            f"firmware quantize the inputs the same way; the input feeds: {names}"
        )


def _inbound_tensors(layer: Any) -> list[Any]:
    tensors: list[Any] = []
    for node in getattr(layer, "_inbound_nodes", []):
        inputs = node.input_tensors
        tensors.extend(inputs if isinstance(inputs, (list, tuple)) else [inputs])
    return tensors


def hls_config_for(model: Any, backend: str, precision_overrides: dict[str, dict[str, str]] | None) -> dict[str, Any]:
    """hls4ml's per-layer configuration, with `precision_overrides` applied.

    ``precision_overrides`` maps a layer name to ``{"result": "fixed<8,3,RND,SAT>", ...}``
    (hls4ml spelling); an unknown layer or key is an error, not ignored.
    """
    import hls4ml

    config = hls4ml.utils.config_from_keras_model(model, granularity="name", backend=backend)
    layer_config = config["LayerName"]
    for layer_name, precisions in (precision_overrides or {}).items():
        if layer_name not in layer_config:
            raise Hls4mlProjectError(
                f"precision override for {layer_name!r}: no such layer; layers are {sorted(layer_config)}"
            )
        known = layer_config[layer_name].setdefault("Precision", {})
        if not isinstance(known, dict):
            known = layer_config[layer_name]["Precision"] = {"result": known}
        for key, value in precisions.items():
            if key not in known:
                raise Hls4mlProjectError(
                    f"precision override {layer_name}.{key}: the layer has {sorted(known)}"
                )
            known[key] = value
    return config


def convert_keras(
    model: Any,
    output_dir: Path | str,
    *,
    part: str,
    clock_period_ns: float,
    backend: str = "Vitis",
    io_type: str = "io_parallel",
    precision_overrides: dict[str, dict[str, str]] | None = None,
    project_name: str = "myproject",
    compile: bool = True,
) -> Any:
    """Convert a QKeras model with ``bit_exact=True``, write and compile the project.

    Returns the compiled hls4ml ``ModelGraph`` (``predict`` runs the C++).
    With ``compile=False`` only the graph is made (its types, for a precision
    check), and nothing is written.
    """
    import hls4ml

    _check_quantized_input(model)
    config = hls_config_for(model, backend, precision_overrides)
    hls_model = hls4ml.converters.convert_from_keras_model(
        model,
        hls_config=copy.deepcopy(config),
        output_dir=str(output_dir),
        project_name=project_name,
        backend=backend,
        io_type=io_type,
        part=part,
        clock_period=clock_period_ns,
        bit_exact=True,
    )
    if compile:
        require_executable("g++", "compiling the hls4ml C++ emulation library", "Install g++ (Debian: build-essential).")
        hls_model.compile()
    return hls_model


def _port(variable: Any, where: str) -> Port:
    t = fixed_type_from_hls(variable.type.precision, where)
    return Port(str(variable.name), str(t), tuple(int(s) for s in variable.shape))


def project_info(hls_model: Any) -> Hls4mlProject:
    """Top function, firmware files and port types of a written hls4ml project."""
    cfg = hls_model.config
    project_dir = Path(cfg.get_output_dir()).resolve()
    name = str(cfg.get_project_name())
    firmware = project_dir / "firmware"
    if not firmware.is_dir():
        raise Hls4mlProjectError(f"{firmware}: missing; write or compile the hls4ml project first")
    files = sorted(
        p for p in firmware.rglob("*")
        if p.is_file() and p.suffix in (".cpp", ".h", ".txt") and "ap_types" not in p.parts
    )
    return Hls4mlProject(
        project_dir=project_dir,
        project_name=name,
        top_function=name,
        backend=str(cfg.get_config_value("Backend")),
        io_type=str(cfg.get_config_value("IOType")),
        part=str(cfg.get_config_value("Part")),
        clock_period_ns=float(cfg.get_config_value("ClockPeriod")),
        inputs=tuple(_port(v, "model input") for v in hls_model.get_input_variables()),
        outputs=tuple(_port(v, "model output") for v in hls_model.get_output_variables()),
        firmware_files=tuple(files),
    )


def write_raw_testbench(hls_model: Any, vectors_dir: Path | str | None = None) -> Path:
    """Write ``<project>/<name>_raw_test.cpp`` (and copy the vectors' inputs to tb_data).

    The bench reads raw input words and writes raw output words; with a vector
    folder given, its ``inputs.txt`` becomes ``tb_data/raw_inputs.txt``, the
    bench's default input for vendor C-sim / co-simulation.
    """
    info = project_info(hls_model)
    if info.io_type != "io_parallel":
        raise Hls4mlProjectError(f"the raw test bench drives io_parallel projects; this one is {info.io_type}")
    if len(info.inputs) != 1 or len(info.outputs) != 1:
        raise Hls4mlProjectError("the raw test bench drives one input and one output array")
    in_var = hls_model.get_input_variables()[0]
    out_var = hls_model.get_output_variables()[0]
    template = (TEMPLATE_DIR / RAW_TESTBENCH_TEMPLATE).read_text()
    filled = (
        template.replace("@PROJECT@", info.project_name)
        .replace("@TOP@", info.top_function)
        .replace("@INPUT_T@", str(in_var.type.name))
        .replace("@OUTPUT_T@", str(out_var.type.name))
        .replace("@N_IN@", str(info.inputs[0].size))
        .replace("@N_OUT@", str(info.outputs[0].size))
        .replace("@OUT_SIGNED@", "true" if info.output_types[0].signed else "false")
    )
    target = info.project_dir / f"{info.project_name}_raw_test.cpp"
    write_text_atomic(target, filled)
    if vectors_dir is not None:
        vectors = VectorSet.load(Path(vectors_dir))
        _check_ports(vectors, info)
        (info.project_dir / "tb_data").mkdir(exist_ok=True)
        source = Path(vectors_dir) / INPUTS_FILE
        with atomic_path(info.project_dir / "tb_data" / RAW_INPUTS) as tmp:
            shutil.copyfile(source, tmp)
    return target


def _check_ports(vectors: VectorSet, info: Hls4mlProject) -> None:
    ours = ([p.to_json() for p in info.inputs], [p.to_json() for p in info.outputs])
    theirs = ([p.to_json() for p in vectors.inputs], [p.to_json() for p in vectors.outputs])
    if ours != theirs:
        raise Hls4mlProjectError(
            f"the vector set's ports {theirs} do not match the project's {ours} ({info.project_dir})"
        )


def build_raw_testbench(hls_model: Any, build_dir: Path | str, optimize: str = "-O2") -> Path:
    """Compile the raw test bench with g++ against the project's firmware (a C-sim without Vivado)."""
    info = project_info(hls_model)
    source = info.project_dir / f"{info.project_name}_raw_test.cpp"
    if not source.exists():
        source = write_raw_testbench(hls_model)
    gxx = require_executable("g++", "building the raw-word C simulation", "Install g++ (Debian: build-essential).")
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    executable = build_dir / f"{info.project_name}_raw_test"
    weights = info.project_dir / "firmware" / "weights"
    with atomic_path(executable) as tmp:
        command = [
            gxx, optimize, "-std=c++14",
            f"-I{info.project_dir}", f"-I{info.project_dir / 'firmware'}", f"-I{ap_types_include()}",
            f'-DWEIGHTS_DIR="{weights}"',
            str(source), str(info.project_dir / "firmware" / f"{info.project_name}.cpp"),
            "-o", str(tmp),
        ]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise Hls4mlProjectError(
                f"g++ could not build the raw test bench of {info.project_dir}:\n{result.stderr[-4000:]}"
            )
    return executable


def run_raw_testbench(executable: Path | str, input_words: np.ndarray, n_outputs: int, work_dir: Path | str) -> np.ndarray:
    """Run a built raw test bench on input words; return its output words."""
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    inputs = work_dir / RAW_INPUTS
    outputs = work_dir / RAW_OUTPUTS
    write_words(inputs, np.asarray(input_words, dtype=np.int64))
    outputs.unlink(missing_ok=True)
    result = subprocess.run([str(executable), str(inputs), str(outputs)], capture_output=True, text=True)
    if result.returncode != 0:
        raise Hls4mlProjectError(f"{executable} failed ({result.returncode}): {result.stderr.strip()}")
    words = read_words(outputs, n_outputs)
    if len(words) != len(input_words):
        raise Hls4mlProjectError(
            f"{outputs}: {len(words)} output events for {len(input_words)} input events"
        )
    return words

