"""Emulator packages: a model version's C simulation as a shared library for experiment frameworks.

CMS-style frameworks run trigger emulators by dlopening ``lib<model>.so`` and
calling its ``extern "C"`` factory ``create_model`` / ``destroy_model``, which
hands out an ``hls4mlEmulator::Model`` (``prepare_input``, ``predict``,
``read_result``; the interface of the public hls4mlEmulatorExtras package).
:func:`write_emulator_package` writes one self-contained folder per model
version:

    Makefile, exports.map     ``make`` builds ``lib<name>_v<N>.so``, ``make check`` runs the vectors
    src/lib<name>_v<N>.cpp    the Model, the factory and ``l1flow_predict_words`` (raw words in and out)
    src/check_vectors.cpp     the check: dlopen with RTLD_GLOBAL, both entry points, every word compared
    include/                  emulator.h (the interface), l1flow_emulator.h (the C entry point)
    firmware/, ap_types/      the project's C++ as the gate verified it (hls4ml, or conifer's cpp backend)
    vectors/                  the gate's largest emulator vector set (inputs, expected outputs, meta.json)
    README.md, emulator.json  model version, firmware hash, ports and types; every file's sha256

Two models in one process never share a symbol: the project's sources are
compiled inside a namespace made of the model name and version, with
``-fvisibility=hidden`` and a version script that exports only the factory and
the C entry point (two models' weight symbols once collided in production).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from l1flow.errors import BadInputError, L1flowError, VerificationFailed
from l1flow.fileio import (
    atomic_folder,
    folder_content,
    write_json_atomic,
    write_text_atomic,
)
from l1flow.firmware.fixed import FixedType
from l1flow.firmware.vectors import (
    INPUTS_FILE,
    META_FILE,
    OUTPUTS_FILE,
    VectorFormatError,
    VectorSet,
)
from l1flow.records import ModelRecord, read_summary
from l1flow.templates import template_path
from l1flow.toolchain import ap_types_include, require_executable

log = logging.getLogger("l1flow")

TEMPLATE_DIR = template_path("emulator")
MANIFEST_FILE = "emulator.json"
MANIFEST_FORMAT = "l1flow-emulator/1"
# The dynamic symbols an emulator library defines (checked by the tests with nm -D).
EXPORTED_SYMBOLS = ("create_model", "destroy_model", "l1flow_predict_words")
_IDENTIFIER = re.compile(r"[^A-Za-z0-9_]")
_INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.MULTILINE)
_TOP_PROTOTYPE = re.compile(
    r"void\s+(\w+)\s*\(\s*(\w+)\s+(\w+)\s*\[[^\]]*\]\s*,\s*(\w+)\s+(\w+)\s*\[[^\]]*\]\s*\)\s*;"
)
_BDT_CONFIG = re.compile(r"struct BDTConfig\s*:\s*conifer::ConiferConfiguration\s*\{.*?\};", re.DOTALL)


@dataclass(frozen=True)
class EmulatorSource:
    """One model version's firmware project and gate vectors, ready to package."""

    name: str
    version: int
    kind: str  # "hls4ml" or "conifer"
    project_dir: Path
    vectors: VectorSet
    vectors_dir: Path
    identity: dict[str, Any]  # run id, weights and firmware hashes, where it came from

    @property
    def library(self) -> str:
        return f"lib{_identifier(self.name)}_v{self.version}"

    @property
    def namespace(self) -> str:
        return f"l1flow_{_identifier(self.name)}_v{self.version}"


@dataclass(frozen=True)
class EmulatorPackage:
    """A written package folder and its manifest."""

    folder: Path
    library: str
    manifest: dict[str, Any]

    @property
    def library_file(self) -> Path:
        return self.folder / f"{self.library}.so"


@dataclass(frozen=True)
class PackageCheck:
    """`make` and `make check` of a package: times and the check's summary line."""

    build_seconds: float
    check_seconds: float
    events: int
    report: str


def _identifier(text: str) -> str:
    cleaned = _IDENTIFIER.sub("_", text)
    return cleaned if cleaned[:1].isalpha() or cleaned[:1] == "_" else f"m{cleaned}"


# ---- where a model version comes from --------------------------------------------


def parse_model_reference(text: str) -> tuple[str, str, str]:
    """``RUN_DIR:NAME`` -> ("run", RUN_DIR, NAME); ``NAME@ALIAS`` / ``NAME/VERSION`` -> ("registry", NAME, VERSION)."""
    if ":" in text:
        run_dir, _, name = text.rpartition(":")
        if run_dir and name:
            return "run", run_dir, name
    elif "@" in text:
        name, _, alias = text.partition("@")
        if name and alias:
            return "registry", name, alias
    else:
        match = re.fullmatch(r"([^/]+)/(\d+)", text)
        if match:
            return "registry", match.group(1), match.group(2)
    raise BadInputError(
        f"model {text!r}: give a run's model as RUN_DIR:NAME (e.g. work/runs/<run>:bdt) "
        "or a registry version as NAME@ALIAS (e.g. bdt@production) or NAME/VERSION (e.g. bdt/3)"
    )


def source_from_run(run_dir: Path, name: str) -> EmulatorSource:
    """The firmware and vectors of model `name` in a pipeline run folder (its registered version)."""
    run_dir = Path(run_dir)
    summary = read_summary(run_dir)
    if name not in summary.models:
        raise BadInputError(
            f"{run_dir / 'summary.json'} has no model {name!r}; its models are {sorted(summary.models) or 'none'}"
        )
    block = summary.models[name]
    versions = {entry.name: entry.version for entry in summary.registry or []}
    if name not in versions:
        raise BadInputError(
            f"{run_dir / 'summary.json'}: model {name!r} has no registry version (no 'registry' entry for it); "
            "export a registered run, or the registry version as NAME/VERSION"
        )
    artifacts = block.artifacts
    for key in ("firmware", "vectors"):
        if not artifacts.get(key):
            raise BadInputError(f"{run_dir / 'summary.json'}: models.{name}.artifacts.{key} is missing")
    return _source(
        name, int(versions[name]), run_dir / artifacts["firmware"], run_dir / artifacts["vectors"], block,
        origin=f"run folder {run_dir.resolve()}",
    )


def source_from_bundle(name: str, version: int, bundle_dir: Path, block: ModelRecord, origin: str) -> EmulatorSource:
    """The firmware and vectors of a registry version's extracted firmware bundle."""
    return _source(name, version, Path(bundle_dir) / "firmware", Path(bundle_dir) / "vectors", block, origin)


def _source(
    name: str, version: int, firmware_dir: Path, vectors_root: Path, block: ModelRecord, origin: str
) -> EmulatorSource:
    if (firmware_dir / "hls4ml" / "firmware").is_dir():
        kind, project = "hls4ml", firmware_dir / "hls4ml"
    elif (firmware_dir / "conifer_cpp").is_dir():
        kind, project = "conifer", firmware_dir / "conifer_cpp"
    else:
        raise BadInputError(
            f"{firmware_dir}: neither an hls4ml project (hls4ml/firmware/) nor a conifer cpp project "
            "(conifer_cpp/); point at the firmware folder the pipeline wrote for the model"
        )
    vectors_dir, vectors = _gate_vectors(vectors_root)
    firmware_hash = block.firmware_hash or ""
    vector_hash = str(vectors.model.get("firmware_hash") or "")
    if firmware_hash and vector_hash and firmware_hash != vector_hash:
        raise BadInputError(
            f"{vectors_dir / META_FILE}: vectors made for firmware {vector_hash}, but the model's firmware "
            f"is {firmware_hash}; the vectors belong to another version"
        )
    identity = {
        "run_id": str(block.run_id or vectors.model.get("run_id") or ""),
        "weights_hash": block.weights_hash or "",
        "firmware_hash": firmware_hash or vector_hash,
        "origin": origin,
    }
    return EmulatorSource(name, version, kind, project, vectors, vectors_dir, identity)


def _gate_vectors(root: Path) -> tuple[Path, VectorSet]:
    """The largest stimulus set (inputs and expected outputs) among the gate's vector folders."""
    if not root.is_dir():
        raise BadInputError(f"{root}: the model's test-vector folder does not exist")
    candidates: list[tuple[int, Path]] = []
    for meta in sorted(root.glob(f"*/{META_FILE}")):
        try:
            content = json.loads(meta.read_text())
            files, events = content.get("files") or {}, int(content.get("events", 0))
        except (json.JSONDecodeError, TypeError, ValueError) as error:
            raise BadInputError(f"{meta}: not a readable vector meta file ({error})") from error
        if "inputs" in files and "outputs" in files:
            candidates.append((events, meta.parent))
    if not candidates:
        raise BadInputError(f"{root}: no vector set with both inputs and expected outputs (the gate's emulation_N)")
    events, folder = max(candidates)
    try:
        vectors = VectorSet.load(folder)
    except VectorFormatError as error:
        raise BadInputError(str(error)) from error
    if len(vectors.inputs) != 1 or len(vectors.outputs) != 1:
        raise BadInputError(f"{folder / META_FILE}: an emulator package drives one input and one output port")
    return folder, vectors


# ---- writing the package -----------------------------------------------------------


def write_emulator_package(source: EmulatorSource, out: Path) -> EmulatorPackage:
    """Write the package folder `out` (replaced only once complete)."""
    with atomic_folder(out) as staging:
        for sub in ("src", "include", "vectors"):
            (staging / sub).mkdir()
        for header in ("emulator.h", "l1flow_emulator.h"):
            shutil.copyfile(TEMPLATE_DIR / header, staging / "include" / header)
        shutil.copyfile(TEMPLATE_DIR / "raw_words.h", staging / "src" / "raw_words.h")
        shutil.copyfile(TEMPLATE_DIR / "exports.map", staging / "exports.map")
        for file in (META_FILE, INPUTS_FILE, OUTPUTS_FILE):
            shutil.copyfile(source.vectors_dir / file, staging / "vectors" / file)
        in_port, out_port = source.vectors.inputs[0], source.vectors.outputs[0]
        in_type, out_type = FixedType.parse(in_port.type), FixedType.parse(out_port.type)
        values = {
            "@LIB@": source.library,
            "@NS@": source.namespace,
            "@MODEL@": source.name,
            "@VERSION@": str(source.version),
            "@N_IN@": str(in_port.size),
            "@N_OUT@": str(out_port.size),
            "@OUT_SIGNED@": "true" if out_type.signed else "false",
            "@INPUT_CPP@": _cpp_type(in_type),
            "@OUTPUT_CPP@": _cpp_type(out_type),
        }
        if source.kind == "hls4ml":
            model_source = _hls4ml_sources(source, staging, values)
        else:
            model_source = _conifer_sources(source, staging, values)
        write_text_atomic(staging / "src" / f"{source.library}.cpp", model_source)
        write_text_atomic(
            staging / "src" / "check_vectors.cpp", _fill((TEMPLATE_DIR / "check_vectors.cpp").read_text(), values)
        )
        write_text_atomic(staging / "Makefile", _fill((TEMPLATE_DIR / "Makefile").read_text(), values))
        manifest = _manifest(source, values)
        write_text_atomic(staging / "README.md", _readme(source, manifest))
        # every file's sha256, but not the staging folder's owner record (gone once the folder is published)
        manifest["files"] = folder_content(staging)
        write_json_atomic(staging / MANIFEST_FILE, manifest)
    log.info("%s version %d: emulator package %s written to %s", source.name, source.version, source.library, out)
    return EmulatorPackage(Path(out), source.library, manifest)


def _fill(template: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        template = template.replace(key, value)
    leftover = re.findall(r"@[A-Z_]+@", template)
    if leftover:
        raise L1flowError(f"emulator template left unfilled: {sorted(set(leftover))} (a bug in l1flow)")
    return template


def _cpp_type(t: FixedType) -> str:
    """The full C++ spelling of a port type (all five ap_fixed parameters, as the project's typedefs)."""
    if t.is_int:
        return str(t)
    kind = "ap_fixed" if t.signed else "ap_ufixed"
    return f"{kind}<{t.width},{t.integer},AP_{t.rounding},AP_{t.overflow},0>"


def _hls4ml_sources(source: EmulatorSource, staging: Path, values: dict[str, str]) -> str:
    """Copy the hls4ml firmware and ap_types; return the library's source."""
    project = source.project_dir
    config_file = project / "hls4ml_config.yml"
    # read by pattern: the file holds hls4ml's own YAML tags (!keras_model) that a safe loader refuses
    found = re.search(r"^ProjectName:\s*(\w+)\s*$", config_file.read_text(), re.MULTILINE) if config_file.exists() else None
    if found is None:
        raise BadInputError(f"{config_file}: no 'ProjectName:' line; is this an hls4ml project folder?")
    project_name = found.group(1)
    firmware = project / "firmware"
    shutil.copytree(
        firmware, staging / "firmware", ignore=shutil.ignore_patterns("*.so", "*.o", "ap_types")
    )
    shutil.copytree(firmware / "ap_types" if (firmware / "ap_types").is_dir() else ap_types_include(),
                    staging / "ap_types")
    header = staging / "firmware" / f"{project_name}.h"
    match = _TOP_PROTOTYPE.search(header.read_text()) if header.exists() else None
    if match is None:
        raise BadInputError(
            f"{header}: no top function 'void {project_name}(input_t in[N], result_t out[M]);' "
            "(an io_parallel project with one input and one output array)"
        )
    top, input_t, _, output_t, _ = match.groups()
    if top != project_name:
        raise BadInputError(f"{header}: the top function is {top!r}, the project is {project_name!r}")
    parameters = (staging / "firmware" / "parameters.h").read_text()
    weights = [name for kind, name in _INCLUDE.findall(parameters) if kind == '"' and name.startswith("weights/")]
    helpers = staging / "firmware" / "nnet_utils" / "nnet_helpers.h"
    traces = helpers.exists() and "extern bool trace_enabled" in helpers.read_text()
    filled = {
        **values,
        "@PROJECT@": project_name,
        "@TOP@": top,
        "@EXTERNAL_INCLUDES@": "\n".join(f"#include {inc}" for inc in _external_includes(staging / "firmware")),
        "@WEIGHT_INCLUDES@": "\n".join(f'#include "{name}"' for name in weights),
        "@TRACE_GLOBALS@": (
            "// nnet_helpers.h declares the layer-trace switches; defined once per library.\n"
            "namespace nnet {\nbool trace_enabled = false;\n"
            "std::map<std::string, void *> *trace_outputs = NULL;\nsize_t trace_type_size = sizeof(double);\n}"
            if traces else ""
        ),
        # the project's own type names; a static_assert ties them to the vectors' port types
        "@INPUT_T@": input_t,
        "@OUTPUT_T@": output_t,
    }
    return _fill((TEMPLATE_DIR / "hls4ml_model.cpp").read_text(), filled)


def _external_includes(firmware: Path) -> list[str]:
    """Every header the firmware includes from outside itself (C++ library, ap_types), in first-seen order.

    They are included before the namespace opens, so their include guards keep
    them out of it when the firmware includes them again inside.
    """
    seen: list[str] = []
    for path in sorted(firmware.rglob("*")):
        if not path.is_file() or path.suffix not in (".h", ".hpp", ".cpp"):
            continue
        for kind, name in _INCLUDE.findall(path.read_text(errors="replace")):
            internal = kind == '"' and ((path.parent / name).exists() or (firmware / name).exists())
            spelled = f"<{name}>" if kind == "<" else f'"{name}"'
            if not internal and spelled not in seen:
                seen.append(spelled)
    return seen


def _conifer_sources(source: EmulatorSource, staging: Path, values: dict[str, str]) -> str:
    """Copy conifer.h, the forest's JSON (compiled in), ap_types and nlohmann/json; return the library's source."""
    import conifer  # the cpp backend's header ships with the package

    project = source.project_dir
    configs = sorted(project.glob("*.json"))
    bridge = project / "bridge.cpp"
    if len(configs) != 1 or not bridge.exists():
        raise BadInputError(f"{project}: a conifer cpp project has one <project>.json and bridge.cpp")
    config_match = _BDT_CONFIG.search(bridge.read_text())
    if config_match is None:
        raise BadInputError(f"{bridge}: no 'struct BDTConfig : conifer::ConiferConfiguration {{...}};'")
    (staging / "firmware").mkdir()
    conifer_header = Path(conifer.__file__).parent / "backends" / "cpp" / "include" / "conifer.h"
    shutil.copyfile(conifer_header, staging / "firmware" / "conifer.h")
    shutil.copyfile(configs[0], staging / "firmware" / configs[0].name)
    shutil.copytree(ap_types_include(), staging / "ap_types")
    shutil.copytree(_json_headers(), staging / "include" / "nlohmann")
    forest_json = configs[0].read_text()
    delimiter = "l1flow_forest"
    if f"){delimiter}\"" in forest_json:
        raise BadInputError(f"{configs[0]}: holds the text ){delimiter}\" and cannot be compiled in")
    write_text_atomic(staging / "src" / "forest_json.inc", f'R"{delimiter}({forest_json}){delimiter}"\n')
    return _fill((TEMPLATE_DIR / "conifer_model.cpp").read_text(), {**values, "@BDT_CONFIG@": config_match.group(0)})


def _json_headers() -> Path:
    """nlohmann/json (conifer.h needs it; Debian's nlohmann-json3-dev)."""
    for folder in (Path("/usr/include/nlohmann"), Path("/usr/local/include/nlohmann")):
        if (folder / "json.hpp").exists():
            return folder
    raise L1flowError("nlohmann/json.hpp not found: install Debian's nlohmann-json3-dev (conifer.h includes it)")


def _manifest(source: EmulatorSource, values: dict[str, str]) -> dict[str, Any]:
    return {
        "format": MANIFEST_FORMAT,
        "model": source.name,
        "version": source.version,
        "library": f"{source.library}.so",
        "namespace": source.namespace,
        "kind": source.kind,
        **source.identity,
        "ports": {
            "inputs": [p.to_json() for p in source.vectors.inputs],
            "outputs": [p.to_json() for p in source.vectors.outputs],
        },
        "cpp_types": {"input": values["@INPUT_CPP@"], "output": values["@OUTPUT_CPP@"]},
        "vectors": {"events": source.vectors.events, "content_hash": source.vectors.content_hash},
        "exported_symbols": list(EXPORTED_SYMBOLS),
    }


def _readme(source: EmulatorSource, manifest: dict[str, Any]) -> str:
    lib = source.library
    in_port, out_port = source.vectors.inputs[0], source.vectors.outputs[0]
    firmware = "hls4ml (Vitis, io_parallel)" if source.kind == "hls4ml" else "conifer, cpp backend (conifer.h)"
    return f"""# {lib}: emulator of {source.name} version {source.version}

| | |
| --- | --- |
| model | `{source.name}` version {source.version} |
| firmware | {firmware} |
| firmware hash | `{manifest['firmware_hash']}` |
| weights hash | `{manifest['weights_hash']}` |
| pipeline run | `{manifest['run_id']}` |
| exported from | {manifest['origin']} |
| C++ namespace | `{source.namespace}` |
| test vectors | {source.vectors.events} events, content hash `{source.vectors.content_hash}` |

## Ports (in the order of the test vectors)

| port | direction | type | words |
| --- | --- | --- | --- |
| `{in_port.name}` | in | `{manifest['cpp_types']['input']}` | {in_port.size} |
| `{out_port.name}` | out | `{manifest['cpp_types']['output']}` | {out_port.size} |

A word is the raw two's complement integer of the port's type, sign-extended
to 64 bits (unsigned types hold non-negative words).

## Build and check

    make          # builds {lib}.so (g++ with C++17)
    make check    # loads it with dlopen(RTLD_GLOBAL) and compares every output word of vectors/

`make check` prints the mismatching words of both entry points and exits 1 if
any word differs from `vectors/outputs.txt`.

## Use

The library defines three dynamic symbols and nothing else (`nm -D
--defined-only {lib}.so`): `create_model`, `destroy_model` (the
hls4mlEmulatorExtras factory) and `l1flow_predict_words`. Everything else, the
weights included, is local to the library and lives in the namespace
`{source.namespace}`, so several models and versions load into one process.

- Framework (hls4mlEmulatorExtras): put the folder holding `{lib}.so` on the
  library path and load `hls4mlEmulator::ModelLoader loader("{lib}")` (the
  loader appends `.so`). `prepare_input` takes a pointer to
  {in_port.size} values of `{manifest['cpp_types']['input']}`,
  `read_result` a pointer to {out_port.size} values of
  `{manifest['cpp_types']['output']}`. Keep the loader alive longer than every
  model it created: destroying it dlcloses the library, and the model's code
  goes with it.
- Any language: `int l1flow_predict_words(const long long *inputs, long long
  *outputs, long long n_events)` (`include/l1flow_emulator.h`) takes
  `n_events` rows of {in_port.size} input words and writes `n_events` rows of
  {out_port.size} output words; 0 on success, -1 for a negative count or a
  null pointer. From Python: `ctypes.CDLL("./{lib}.so").l1flow_predict_words`.

`emulator.json` lists the sha256 of every file of this package.
"""


# ---- building and checking ------------------------------------------------------------


def build_and_check(folder: Path, jobs: int = 1) -> PackageCheck:
    """`make` then `make check` in a package folder; VerificationFailed on any mismatching word."""
    make = require_executable("make", "building the emulator package", "Install make (Debian: make).")
    folder = Path(folder)
    began = time.perf_counter()
    built = subprocess.run([make, "-C", str(folder), f"-j{jobs}"], check=False, capture_output=True, text=True)
    build_seconds = time.perf_counter() - began
    if built.returncode != 0:
        raise L1flowError(f"`make` failed in {folder}:\n{(built.stdout + built.stderr)[-4000:]}")
    began = time.perf_counter()
    checked = subprocess.run([make, "-C", str(folder), "check"], check=False, capture_output=True, text=True)
    check_seconds = time.perf_counter() - began
    lines = [line for line in checked.stdout.splitlines() if "mismatching words" in line or line.startswith("  ")]
    report = "\n".join(lines) or (checked.stdout + checked.stderr)[-2000:]
    if checked.returncode != 0:
        raise VerificationFailed(f"`make check` failed in {folder}:\n{report}\n{checked.stderr[-2000:]}")
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    return PackageCheck(build_seconds, check_seconds, int(manifest["vectors"]["events"]), report)


def pack_for_registry(package: Path, dest: Path) -> Path:
    """A reproducible tar.gz of the package's own files (those in emulator.json, no build products)."""
    from l1flow.registry.bundle import write_bundle

    package = Path(package)
    manifest = json.loads((package / MANIFEST_FILE).read_text())
    with tempfile.TemporaryDirectory(prefix="l1flow-emulator-") as scratch:
        copy = Path(scratch) / package.name
        for relative in [*manifest["files"], MANIFEST_FILE]:
            target = copy / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(package / relative, target)
        write_bundle(Path(scratch), {manifest["library"].removesuffix(".so"): package.name}, dest)
    return dest
