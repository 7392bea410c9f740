"""The reference outputs of a project brought from elsewhere: l1flow's emulator or the project's C++.

Where the project holds its Keras model (``keras_model.keras``, which hls4ml
saves beside ``hls4ml_config.yml``) and the emulator supports every layer,
the reference is l1flow's fast bit-exact emulator of that model converted
with the project's hls4ml configuration. Otherwise the reference is
the project's own firmware C++ (``firmware/<top>.cpp``) compiled with g++
against hls4ml's ap_types and driven by a raw-word test bench generated from
the top function's signature (``firmware_templates/hls_testbench/raw_words_ports.cpp``):
every input and output argument, any number of them. Builds are cached by a
hash of the project's firmware sources and the bench.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from l1flow.errors import BadInputError, L1flowError
from l1flow.fileio import atomic_path, sha256_bytes
from l1flow.firmware.fixed import FixedType
from l1flow.firmware.netgraph import FirmwareNet, UnsupportedLayerError
from l1flow.firmware.nn_emulator import NNEmulator
from l1flow.hardware.verilator import simulator_words
from l1flow.templates import template_path
from l1flow.toolchain import ap_types_include, require_executable
from l1flow.verify.project import (
    CONFIG_FILE,
    FirmwarePort,
    FirmwareProject,
    read_hls4ml_config,
)

TEMPLATE = template_path("hls_testbench", "raw_words_ports.cpp")
CXX_OPTIONS = ("-O1", "-std=c++14")


def _declare(ports: tuple[FirmwarePort, ...], prefix: str) -> list[str]:
    return [
        f"    {p.type_name} {prefix}{i}[{p.port.size}];" if p.array else f"    {p.type_name} {prefix}{i}[1];"
        for i, p in enumerate(ports)
    ]


def bench_source(project: FirmwareProject) -> str:
    """The raw-word bench for this project's top function."""
    load, store, args = [], [], []
    word = 0
    for i, p in enumerate(project.inputs):
        load.append(f"        for (int k = 0; k < {p.port.size}; k++) set_word(in_{i}[k], in[{word} + k]);")
        args.append(f"in_{i}" if p.array else f"in_{i}[0]")
        word += p.port.size
    word = 0
    for i, p in enumerate(project.outputs):
        signed = "true" if FixedType.parse(p.port.type).signed else "false"
        load.append(f"        for (int k = 0; k < {p.port.size}; k++) out_{i}[k] = 0;")
        store.append(f"        for (int k = 0; k < {p.port.size}; k++) out[{word} + k] = get_word(out_{i}[k], {signed});")
        args.append(f"out_{i}" if p.array else f"out_{i}[0]")
        word += p.port.size
    return (
        TEMPLATE.read_text()
        .replace("@PROTOTYPE@", f"void {project.top}({project.signature});")
        .replace("@TOP@", project.top)
        .replace("@N_IN@", str(sum(p.port.size for p in project.inputs)))
        .replace("@N_OUT@", str(sum(p.port.size for p in project.outputs)))
        .replace("@DECLARE@", "\n".join(_declare(project.inputs, "in_") + _declare(project.outputs, "out_")))
        .replace("@LOAD@", "\n".join(load))
        .replace("@STORE@", "\n".join(store))
        .replace("@ARGS@", ", ".join(args))
    )


def _firmware_sources(project: FirmwareProject) -> list[Path]:
    firmware = project.folder / "firmware"
    return sorted(
        p for p in firmware.rglob("*")
        if p.is_file() and p.suffix in (".cpp", ".h", ".hpp", ".txt") and "ap_types" not in p.parts
    )


class CppReference:
    """The project's own C++ as the reference (g++ here; no vendor tool needed)."""

    name = "project C++ (g++, raw-word bench)"

    def __init__(self, project: FirmwareProject, cache_dir: Path) -> None:
        self.project = project
        self.cache_dir = Path(cache_dir)
        self._executable: Path | None = None

    def build(self) -> Path:
        if self._executable is not None:
            return self._executable
        project = self.project
        main_cpp = project.folder / "firmware" / f"{project.top}.cpp"
        if not main_cpp.exists():
            raise BadInputError(f"{main_cpp}: missing; the project's firmware C++ is the reference")
        # hls4ml has one firmware .cpp; conifer adds BDT.cpp
        sources = sorted(p for p in (project.folder / "firmware").glob("*.cpp"))
        gxx = require_executable("g++", "compiling the project's C++ reference", "Install g++ (Debian: build-essential).")
        bench = bench_source(project)
        parts = [bench.encode(), " ".join(CXX_OPTIONS).encode(), str(ap_types_include()).encode()]
        for path in _firmware_sources(project):
            parts += [str(path.relative_to(project.folder)).encode(), path.read_bytes()]
        key = sha256_bytes(b"\0".join(parts))[:24]
        executable = self.cache_dir / f"{project.top}-{key}" / "bench"
        if not executable.exists():
            executable.parent.mkdir(parents=True, exist_ok=True)
            source = executable.parent / "raw_words_ports.cpp"
            source.write_text(bench)
            weights = project.folder / "firmware" / "weights"
            with atomic_path(executable) as tmp:
                command = [
                    gxx, *CXX_OPTIONS, f"-I{project.folder}", f"-I{project.folder / 'firmware'}",
                    f"-I{ap_types_include()}", f'-DWEIGHTS_DIR="{weights}"', str(source), *map(str, sources),
                    "-o", str(tmp),
                ]
                proc = subprocess.run(command, capture_output=True, text=True, check=False)
                if proc.returncode != 0:
                    raise L1flowError(
                        f"g++ could not build {main_cpp} with the raw-word bench:\n"
                        f"{simulator_words(proc.stdout, proc.stderr)}"
                    )
        self._executable = executable
        return executable

    def predict_words(self, input_words: np.ndarray) -> np.ndarray:
        executable = self.build()
        words = np.ascontiguousarray(input_words, dtype=np.int64)
        n_out = sum(p.port.size for p in self.project.outputs)
        with tempfile.TemporaryDirectory(prefix="l1flow-cpp-") as tmp:
            inp, out = Path(tmp) / "inputs.bin", Path(tmp) / "outputs.bin"
            words.tofile(inp)
            proc = subprocess.run(
                [str(executable), str(inp), str(out), str(len(words))], capture_output=True, text=True, check=False,
                cwd=self.project.folder,
            )
            if proc.returncode != 0:
                raise L1flowError(
                    f"the C++ reference {executable} failed (exit {proc.returncode}):\n"
                    f"{simulator_words(proc.stdout, proc.stderr)}"
                )
            result = np.fromfile(out, dtype=np.int64)
        if result.size != len(words) * n_out:
            raise L1flowError(f"the C++ reference wrote {result.size} words for {len(words)} x {n_out}")
        return result.reshape(len(words), n_out)


class EmulatorReference:
    """l1flow's fast bit-exact emulator of the project's saved Keras model, converted with its hls4ml config."""

    name = "l1flow fast emulator (keras_model.keras + hls4ml_config.yml)"

    def __init__(self, emulator: NNEmulator) -> None:
        self.emulator = emulator

    def predict_words(self, input_words: np.ndarray) -> np.ndarray:
        return self.emulator.predict_words(np.asarray(input_words, dtype=np.int64))


def _load_keras(path: Path, work_dir: Path) -> Any:
    """The saved QKeras model. TF 2.14 cannot rebuild a QActivation whose quantizer the .keras
    config holds as an object; its string form (what QActivation accepts) is substituted."""
    from qkeras.utils import _add_supported_quantized_objects
    from tensorflow import keras

    custom: dict[str, Any] = {}
    _add_supported_quantized_objects(custom)
    try:
        with zipfile.ZipFile(path) as archive:
            members = {name: archive.read(name) for name in archive.namelist()}
        config = json.loads(members["config.json"])
    except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise BadInputError(f"{path}: not a Keras model archive ({exc})") from exc
    for layer in config.get("config", {}).get("layers", []):
        activation = layer.get("config", {}).get("activation")
        if layer.get("class_name") == "QActivation" and isinstance(activation, dict):
            args = ", ".join(f"{k}={v!r}" for k, v in activation.get("config", {}).items())
            layer["config"]["activation"] = f"{activation['class_name']}({args})"
    members["config.json"] = json.dumps(config).encode()
    work_dir.mkdir(parents=True, exist_ok=True)
    patched = work_dir / "keras_model.keras"
    with zipfile.ZipFile(patched, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return keras.models.load_model(str(patched), custom_objects=custom, compile=False)


def emulator_reference(project: FirmwareProject, work_dir: Path) -> tuple[EmulatorReference | None, str]:
    """The fast emulator as reference where it can stand in for the project; else None and why not."""
    if project.kind != "hls4ml" or project.keras_model is None:
        return None, "no keras_model.keras saved in the project"
    if len(project.inputs) != 1 or len(project.outputs) != 1:
        return None, "the emulator drives one input and one output array"
    import hls4ml

    config = read_hls4ml_config(project.folder / CONFIG_FILE)
    config["KerasModel"] = _load_keras(project.keras_model, work_dir)
    config["OutputDir"] = str(work_dir / "emulator_hls4ml")  # never written: only the graph is read
    config.pop("InputData", None)
    config.pop("OutputPredictions", None)
    try:
        net = FirmwareNet.from_hls_model(hls4ml.converters.convert_from_config(config))
    except UnsupportedLayerError as exc:
        return None, f"the emulator does not support this model ({exc})"
    ours = (net.input.name, str(net.input.type), net.input.size, net.output.name, str(net.output.type), net.output.size)
    inp, out = project.inputs[0].port, project.outputs[0].port
    theirs = (inp.name, inp.type, inp.size, out.name, out.type, out.size)
    if ours != theirs:
        return None, f"the Keras model converts to ports {ours}, the project's firmware has {theirs}"
    return EmulatorReference(NNEmulator(net)), ""
