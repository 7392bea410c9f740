"""The ports of a firmware project brought from elsewhere, read from the project itself.

An hls4ml project (the folder ``write()`` leaves: ``hls4ml_config.yml``,
``firmware/``) declares its top function in ``firmware/<ProjectName>.h``::

    void myproject(
        input_t query[N_INPUT_1_1*N_INPUT_2_1], input2_t key[N_INPUT_1_2],
        result_t layer5_out[N_OUT_5], result2_t layer6_out[N_OUT_6]
    );

with the array sizes as ``#define``s and the types as ``typedef``s in
``firmware/defines.h`` (and ``parameters.h``). The C++ argument names are the
RTL port names (``query``, ``layer5_out``; Vivado HLS appends ``_V``), not
the Keras layer names, so a user never types a port. A conifer project
(HLS backend) has the same layout: ``firmware/<ProjectName>.h`` declares
``void <name>(input_arr_t x, score_arr_t score)`` with the array typedefs in
``firmware/parameters.h``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from l1flow.errors import BadInputError
from l1flow.firmware.fixed import FixedType, FixedTypeError
from l1flow.firmware.vectors import Port
from l1flow.settings import settings

CONFIG_FILE = "hls4ml_config.yml"
_DEFINE = re.compile(r"^\s*#\s*define\s+(\w+)\s+(.+?)\s*$", re.MULTILINE)
_TYPEDEF = re.compile(r"\btypedef\s+([^;]+?)\s+(\w+)\s*;")
_USING = re.compile(r"\busing\s+(\w+)\s*=\s*([^;]+?)\s*;")
_ARRAY_TYPEDEF = re.compile(r"\btypedef\s+([\w:<>, ]+?)\s+(\w+)\s*((?:\[[^\]]+\]\s*)+);")
# conifer's sizes: `static const int n_features = 4;`
_CONSTANT = re.compile(r"\b(?:static\s+)?(?:const|constexpr)\s+(?:unsigned\s+)?(?:int|long|size_t)\s+(\w+)\s*=\s*([^;]+?)\s*;")
# conifer's BDT::fn_classes(n): a binary classifier has one score
_FN_CLASSES = re.compile(r"(?:BDT::)?fn_classes\s*\(([^()]*)\)")
_ARG = re.compile(r"^(?:const\s+)?([\w:<>,\s]+?)\s*(&?)\s*(\w+)\s*((?:\[[^\]]*\]\s*)*)$")


@dataclass(frozen=True)
class FirmwarePort:
    """One argument of the top function: its l1flow port and the C++ type name it is declared with."""

    port: Port
    type_name: str
    array: bool = True


@dataclass(frozen=True)
class FirmwareProject:
    """What verification needs to know about a project: its top, its ports, where its sources are."""

    kind: str  # "hls4ml" or "conifer"
    folder: Path
    top: str
    inputs: tuple[FirmwarePort, ...]
    outputs: tuple[FirmwarePort, ...]
    io_type: str
    keras_model: Path | None
    #: the top function's argument list as the firmware defines it (the bench declares it so)
    signature: str

    @property
    def input_ports(self) -> list[Port]:
        return [p.port for p in self.inputs]

    @property
    def output_ports(self) -> list[Port]:
        return [p.port for p in self.outputs]


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.DOTALL)
    return re.sub(r"//[^\n]*", "", text)


def _split_top_level(text: str) -> list[str]:
    """Split at commas outside <...>, (...) and [...]."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "<([":
            depth += 1
        elif ch in ">)]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _evaluate(expr: str, defines: dict[str, str], where: str, depth: int = 0) -> int:
    """An array size: integers, #define names, + - * / and parentheses."""
    if depth > 20:
        raise BadInputError(f"{where}: array size {expr!r} refers to itself through #defines")

    def name_value(m: re.Match[str]) -> str:
        name = m.group(0)
        if name not in defines:
            raise BadInputError(
                f"{where}: array size {expr!r} uses {name}, which firmware/defines.h and parameters.h do not #define"
            )
        return f"({_evaluate(defines[name], defines, where, depth + 1)})"

    expr = _FN_CLASSES.sub(lambda m: str(_fn_classes(_evaluate(m.group(1), defines, where, depth + 1))), expr)
    text = re.sub(r"\b[A-Za-z_]\w*\b", name_value, expr.strip())
    text = re.sub(r"\b(\d+)[uUlL]+\b", r"\1", text)
    if not re.fullmatch(r"[\d\s+\-*/()]+", text):
        raise BadInputError(f"{where}: cannot evaluate array size {expr!r}")
    return int(eval(text.replace("/", "//"), {"__builtins__": {}}, {}))


def _fn_classes(n_classes: int) -> int:
    return 1 if n_classes == 2 else n_classes


def _resolve_type(name: str, typedefs: dict[str, str], where: str) -> FixedType:
    seen: list[str] = []
    spelling = name.strip()
    while spelling in typedefs and spelling not in seen:
        seen.append(spelling)
        spelling = typedefs[spelling]
    if "stream" in spelling or "nnet::array" in spelling:
        raise BadInputError(
            f"{where}: {name} is {spelling}; only io_parallel projects (arrays of ap_fixed/ap_int) can be verified"
        )
    try:
        return FixedType.parse(spelling)
    except FixedTypeError as exc:
        raise BadInputError(f"{where}: type {name} ({spelling}) is not an ap_fixed/ap_int type: {exc}") from exc


@dataclass(frozen=True)
class _Declarations:
    constants: dict[str, str]
    typedefs: dict[str, str]
    arrays: dict[str, tuple[str, str]]  # array typedef name -> (element type, "[N][M]")


def _declarations(firmware: Path) -> _Declarations:
    found = _Declarations({}, {}, {})
    for header in sorted(firmware.glob("*.h")):
        text = _strip_comments(header.read_text(errors="replace"))
        for m in _DEFINE.finditer(text):
            found.constants.setdefault(m.group(1), m.group(2))
        for m in _CONSTANT.finditer(text):
            found.constants.setdefault(m.group(1), m.group(2))
        for m in _ARRAY_TYPEDEF.finditer(text):
            found.arrays.setdefault(m.group(2), (" ".join(m.group(1).split()), m.group(3)))
        for m in _TYPEDEF.finditer(text):
            found.typedefs.setdefault(m.group(2), " ".join(m.group(1).split()))
        for m in _USING.finditer(text):
            found.typedefs.setdefault(m.group(1), " ".join(m.group(2).split()))
    return found


def read_top_signature(source: Path, top: str, firmware: Path) -> tuple[list[FirmwarePort], str]:
    """The arguments of ``void <top>(...)`` declared (``;``) or defined (``{``) in ``source``, and their text."""
    if not source.exists():
        raise BadInputError(f"{source}: missing; the project's firmware/ must hold the top function")
    text = _strip_comments(source.read_text(errors="replace"))
    m = re.search(rf"\bvoid\s+{re.escape(top)}\s*\(([^)]*)\)\s*[;{{]", text)
    if m is None:
        raise BadInputError(f"{source}: no 'void {top}(...)' (the top function)")
    found = _declarations(firmware)
    ports: list[FirmwarePort] = []
    for arg in _split_top_level(m.group(1)):
        where = f"{source}: argument {arg!r} of {top}"
        am = _ARG.match(" ".join(arg.split()))
        if am is None:
            raise BadInputError(f"{where}: expected '<type> <name>[<size>]'")
        type_name, _ref, name, dims = am.groups()
        type_name = type_name.strip()
        if type_name in found.arrays:  # conifer: typedef input_t input_arr_t[n_features];
            type_name, dims = found.arrays[type_name]
        t = _resolve_type(type_name, found.typedefs, where)
        sizes = [_evaluate(d, found.constants, where) for d in re.findall(r"\[([^\]]*)\]", dims)]
        shape = (int(np.prod(sizes)),) if sizes else (1,)
        ports.append(FirmwarePort(Port(name, str(t), shape), type_name, bool(sizes)))
    return ports, " ".join(m.group(1).split())


def _output_names(source: Path, names: list[str]) -> list[str]:
    """Which arguments are outputs: hls4ml's io_parallel top reshapes its inputs and partitions its outputs."""
    text = _strip_comments(source.read_text(errors="replace")) if source.exists() else ""
    partitioned = set(re.findall(r"#\s*pragma\s+HLS\s+ARRAY_PARTITION\s+variable=(\w+)", text, flags=re.IGNORECASE))
    outputs = [n for n in names if n in partitioned]
    # without the pragmas, hls4ml's own naming: result variables are layer<N>_out
    return outputs or [n for n in names if re.fullmatch(r"layer\d+_out", n)]


def read_hls4ml_config(config_path: Path) -> dict[str, Any]:
    """hls4ml_config.yml as a dict; the model objects hls4ml serialises into it are read as None."""
    try:
        text = config_path.read_text()
    except OSError as exc:
        raise BadInputError(f"{config_path}: cannot read the hls4ml configuration ({exc})") from exc
    try:
        config = yaml.load(text, Loader=_TolerantLoader)  # a SafeLoader; unknown tags become None
    except yaml.YAMLError as exc:
        raise BadInputError(f"{config_path}: not valid YAML ({exc})") from exc
    if not isinstance(config, dict):
        raise BadInputError(f"{config_path}: not an hls4ml configuration (a YAML mapping)")
    return config


def read_hls4ml_project(folder: Path) -> FirmwareProject:
    folder = Path(folder)
    config_path = folder / CONFIG_FILE
    config = read_hls4ml_config(config_path)
    top = str(config.get("ProjectName") or "myproject")
    io_type = str(config.get("IOType") or "io_parallel")
    if io_type != "io_parallel":
        raise BadInputError(f"{config_path}: IOType is {io_type}; only io_parallel projects can be verified")
    firmware = folder / "firmware"
    ports, signature = read_top_signature(firmware / f"{top}.h", top, firmware)
    outputs = _output_names(firmware / f"{top}.cpp", [p.port.name for p in ports])
    ins = tuple(p for p in ports if p.port.name not in outputs)
    outs = tuple(p for p in ports if p.port.name in outputs)
    if not ins or not outs:
        raise BadInputError(
            f"{firmware / (top + '.cpp')}: cannot tell {top}'s inputs from its outputs (hls4ml marks outputs "
            f"with '#pragma HLS ARRAY_PARTITION variable=<output>'); arguments: {[p.port.name for p in ports]}"
        )
    keras = folder / "keras_model.keras"
    return FirmwareProject("hls4ml", folder, top, ins, outs, io_type, keras if keras.exists() else None, signature)


class _TolerantLoader(yaml.SafeLoader):
    """A safe loader that reads unknown tags (``!keras_model``) as plain strings."""


def _opaque(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> None:
    return None


# hls4ml writes the model object itself (`!keras_model`, `!!python/object:...`); verification never needs it
_TolerantLoader.add_multi_constructor("!", _opaque)
_TolerantLoader.add_multi_constructor("tag:yaml.org,2002:python/", _opaque)


def read_conifer_project(folder: Path) -> FirmwareProject:
    """A conifer HLS project: ``<name>.json`` (config.project_name) and the top defined in ``firmware/<name>.cpp``.

    conifer 1.11's header declares a third ``tree_scores`` argument that the
    .cpp never defines; the synthesized top is the .cpp's ``(input_arr_t x, score_arr_t score)``.
    """
    folder = Path(folder)
    name = None
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        config = data.get("config") if isinstance(data, dict) else None
        if isinstance(config, dict) and "project_name" in config:
            backend = str(config.get("backend", ""))
            if backend not in ("xilinxhls", "vivadohls", "vitishls"):
                raise BadInputError(f"{path}: conifer backend {backend!r}; only its HLS backends write firmware/<name>.cpp")
            name = str(config["project_name"])
            break
    if name is None:
        raise BadInputError(f"{folder}: no conifer model file (<name>.json with config.project_name)")
    firmware = folder / "firmware"
    ports, signature = read_top_signature(firmware / f"{name}.cpp", name, firmware)
    if len(ports) != 2:
        raise BadInputError(f"{firmware / (name + '.cpp')}: a conifer top has one input and one score array")
    return FirmwareProject("conifer", folder, name, (ports[0],), (ports[1],), "io_parallel", None, signature)


def read_project(folder: Path) -> FirmwareProject:
    """An hls4ml or conifer project folder, told apart by hls4ml's configuration file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BadInputError(f"{folder}: no such project folder (give the folder hls4ml or conifer wrote)")
    if (folder / CONFIG_FILE).exists():
        return read_hls4ml_project(folder)
    if (folder / "firmware").is_dir() and list(folder.glob("*.json")):
        return read_conifer_project(folder)
    raise BadInputError(
        f"{folder}: neither an hls4ml project ({CONFIG_FILE} + firmware/) nor a conifer project "
        "(<name>.json + firmware/)"
    )


def _project_inside(folder: Path, what: str) -> Path:
    """The hls4ml (or conifer) project folder in a run's firmware folder or a fetched bundle."""
    configs = sorted(folder.rglob(CONFIG_FILE), key=lambda p: (len(p.parts), str(p)))
    if configs:
        return configs[0].parent
    for candidate in sorted((p.parent for p in folder.rglob("firmware") if p.is_dir()), key=lambda p: len(p.parts)):
        if list(candidate.glob("*.json")):
            return candidate
    raise BadInputError(f"{what}: {folder} holds no hls4ml project ({CONFIG_FILE}) nor a conifer project")


_REGISTRY_REF = re.compile(r"^(?P<name>[\w.-]+)(?:@(?P<alias>[\w-]+)|/(?P<version>\d+))$")


def resolve_project(text: str, scratch: Path, workspace: Path | None = None, tracking_uri: str | None = None) -> Path:
    """The project folder that PROJECT names: a folder, ``RUN_DIR:MODEL`` or ``NAME@ALIAS`` / ``NAME/VERSION``."""
    path = Path(text)
    if path.is_dir():
        return path
    run_dir, sep, model = text.rpartition(":")
    if sep and run_dir and Path(run_dir).is_dir():
        from l1flow.records import read_summary

        models = read_summary(Path(run_dir)).models
        if model not in models:
            raise BadInputError(f"{run_dir}: the run has no model {model!r}; it has {', '.join(sorted(models)) or 'none'}")
        firmware = models[model].artifacts.get("firmware")
        if not firmware or not (Path(run_dir) / firmware).is_dir():
            raise BadInputError(f"{run_dir}/summary.json: model {model!r} names no firmware folder that exists")
        return _project_inside(Path(run_dir) / firmware, text)
    ref = _REGISTRY_REF.match(text)
    if ref is not None:
        from l1flow.registry.store import ModelRegistry, RegistryError

        version: int | str = int(ref.group("version")) if ref.group("version") else str(ref.group("alias"))
        try:
            registry = ModelRegistry(workspace=workspace or settings().workspace, tracking_uri=tracking_uri)
            fetched = registry.fetch(ref.group("name"), version, scratch)
        except RegistryError as exc:
            raise BadInputError(f"{text}: {exc}") from exc
        return _project_inside(fetched.folder, text)
    raise BadInputError(
        f"{text}: no such project folder, nor a run's model RUN_DIR:MODEL or a registry version "
        "NAME@ALIAS / NAME/VERSION"
    )
