"""Emulator packages: build real exported models, load several into one process, check every word.

Run folders are laid out as the pipeline writes them (summary.json with the
model's artifacts and registry version, firmware/<name>/hls4ml or
conifer_cpp, vectors/<name>/emulation_N) from tiny real models: a QKeras net
through hls4ml and an xgboost BDT through conifer, their gate vectors made by
l1flow's bit-exact emulators.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import l1flow  # noqa: F401  (toolchain environment)
from l1flow.errors import BadInputError, VerificationFailed
from l1flow.export.emulator import (
    EXPORTED_SYMBOLS,
    build_and_check,
    parse_model_reference,
    source_from_run,
    write_emulator_package,
)

PART = "xcvu9p-flgb2104-2L-e"
EVENTS = 400


def _qkeras_net(seed: int) -> Any:
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu
    from tensorflow.keras.layers import Input
    from tensorflow.keras.models import Model

    inp = Input((6,), name="features")
    x = QActivation(quantized_bits(9, 3, alpha=1), name="q_in")(inp)
    x = QDense(4, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1),
               name="enc")(x)
    x = QActivation(quantized_relu(6, 2), name="act")(x)
    x = QDense(6, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1),
               name="dec")(x)
    model = Model(inp, x, name="tiny_ae")
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if layer.get_weights():
            layer.set_weights([rng.normal(0, 0.5, w.shape) for w in layer.get_weights()])
    return model


def _write_run(run: Path, name: str, kind: str, version: int, block: dict[str, Any]) -> Path:
    summary = {
        "run_id": run.name,
        "models": {name: {"kind": kind, "run_id": run.name, **block,
                          "artifacts": {"firmware": f"firmware/{name}", "vectors": f"vectors/{name}"}}},
        "registry": [{"name": name, "version": version, "promoted": False, "verdict": ""}],
    }
    (run / "summary.json").write_text(json.dumps(summary, indent=2))
    return run


def make_ae_run(run: Path, name: str, version: int, seed: int) -> Path:
    """A run folder holding a tiny autoencoder's hls4ml project and its gate vectors."""
    from l1flow.firmware import netgraph
    from l1flow.firmware.hls4ml_project import convert_keras
    from l1flow.firmware.netgraph import FirmwareNet
    from l1flow.firmware.nn_emulator import NNEmulator

    hls_model = convert_keras(_qkeras_net(seed), run / "firmware" / name / "hls4ml", part=PART, clock_period_ns=5.0)
    net = FirmwareNet.from_hls_model(hls_model)
    emulator = NNEmulator(net)
    words = emulator.quantize_inputs(np.random.default_rng(100 + seed).normal(0, 2, (EVENTS, 6)))
    version_info = {"name": name, "run_id": run.name, "weights_hash": f"w{seed}", "firmware_hash": net.content_hash()}
    netgraph.export_vectors(net, words, emulator.predict_words(words), version_info,
                            run / "vectors" / name / f"emulation_{EVENTS}")
    netgraph.export_vectors(net, words[:10], emulator.predict_words(words[:10]), version_info,
                            run / "vectors" / name / "emulation_10")
    return _write_run(run, name, "dense_ae", version, {"weights_hash": f"w{seed}", "firmware_hash": net.content_hash()})


def make_bdt_run(run: Path, name: str, version: int) -> Path:
    """A run folder holding a small BDT's conifer cpp project and its gate vectors."""
    import xgboost as xgb

    from l1flow.firmware import bdt_emulator
    from l1flow.firmware.bdt_emulator import BDTEmulator
    from l1flow.firmware.conifer_project import convert_xgboost
    from l1flow.firmware.forest import FirmwareForest

    rng = np.random.default_rng(5)
    x = rng.normal(size=(2000, 5))
    booster = xgb.train({"max_depth": 3, "objective": "binary:logistic", "nthread": 1},
                        xgb.DMatrix(x, (x[:, 0] + x[:, 1] * x[:, 2] > 0).astype(int)), 6)
    precision = "ap_fixed<14,5>"
    model = convert_xgboost(booster, run / "firmware" / name / "conifer_cpp", backend="cpp",
                            input_precision=precision, threshold_precision=precision,
                            score_precision="ap_fixed<16,6,AP_RND,AP_SAT>", part=PART, clock_period_ns=5.0)
    forest = FirmwareForest.from_conifer(model)
    emulator = BDTEmulator(forest)
    words = emulator.quantize_inputs(rng.normal(0, 1.5, (EVENTS, 5)))
    version_info = {"name": name, "run_id": run.name, "weights_hash": "wb", "firmware_hash": forest.content_hash()}
    bdt_emulator.export_vectors(forest, words, emulator.predict_words(words), version_info,
                                run / "vectors" / name / f"emulation_{EVENTS}")
    return _write_run(run, name, "bdt_classifier", version, {"weights_hash": "wb", "firmware_hash": forest.content_hash()})


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three run folders: ae version 1, ae version 2 (other weights) and bdt version 1."""
    root = tmp_path_factory.mktemp("runs")
    return {
        "ae_v1": make_ae_run(root / "run_a", "ae", 1, seed=1),
        "ae_v2": make_ae_run(root / "run_b", "ae", 2, seed=2),
        "bdt_v1": make_bdt_run(root / "run_c", "bdt", 1),
    }


@pytest.fixture(scope="module")
def packages(runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The three runs' packages, each built and passing `make check`."""
    root = tmp_path_factory.mktemp("packages")
    built: dict[str, Path] = {}
    for key, run in runs.items():
        package = write_emulator_package(source_from_run(run, key.split("_")[0]), root / key)
        result = build_and_check(package.folder)
        assert result.events == EVENTS
        assert f"{EVENTS} events" in result.report
        assert "mismatching words: 0 (l1flow_predict_words), 0 (hls4mlEmulator::Model)" in result.report
        built[key] = package.folder
    return built


@pytest.mark.slow
def test_package_contents_name_the_version_and_only_three_symbols_are_exported(packages: dict[str, Path]) -> None:
    manifest = json.loads((packages["ae_v2"] / "emulator.json").read_text())
    assert (manifest["model"], manifest["version"], manifest["library"]) == ("ae", 2, "libae_v2.so")
    assert manifest["namespace"] == "l1flow_ae_v2"
    assert manifest["ports"]["inputs"] == [{"name": "features", "type": "ap_fixed<9,4,AP_RND_CONV,AP_SAT>",
                                            "shape": [6]}]
    readme = (packages["ae_v2"] / "README.md").read_text()
    assert manifest["firmware_hash"] in readme and "ap_fixed<9,4,AP_RND_CONV,AP_SAT,0>" in readme
    # the largest gate vector set was bundled, not the 10-event one
    assert manifest["vectors"]["events"] == EVENTS
    for key, folder in packages.items():
        library = folder / f"lib{key}.so"
        listed = subprocess.run(["nm", "-D", "--defined-only", str(library)], capture_output=True, text=True,
                                check=True).stdout.split()
        # nm prints "address type name"; the linker adds no other dynamic symbol with the version script,
        # but _init / _fini are what a toolchain may add, so they are filtered by name
        names = sorted(n for n in listed[2::3] if n not in ("_init", "_fini"))
        assert names == sorted(EXPORTED_SYMBOLS), f"{library} exports {names}"
        # the weights are in the library, but only as local data symbols of the model's namespace
        symbols = subprocess.run(["nm", "-C", str(library)], capture_output=True, text=True, check=True).stdout
        weights = re.findall(r"^[0-9a-f]+ (\w) (\S*\bw\d+)$", symbols, re.MULTILINE)
        if key.startswith("ae"):
            assert weights and all(kind.islower() and name.startswith(f"l1flow_{key}::") for kind, name in weights)


_LOADER = textwrap.dedent(
    """
    import ctypes, json, os, sys
    import numpy as np

    def load(folder):
        meta = json.load(open(os.path.join(folder, "emulator.json")))
        lib = ctypes.CDLL(os.path.join(folder, meta["library"]), mode=os.RTLD_GLOBAL)
        lib.l1flow_predict_words.restype = ctypes.c_int
        lib.l1flow_predict_words.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_longlong]
        return lib, meta

    def mismatches(lib, folder):
        x = np.loadtxt(os.path.join(folder, "vectors/inputs.txt"), dtype=np.int64, ndmin=2)
        expected = np.loadtxt(os.path.join(folder, "vectors/outputs.txt"), dtype=np.int64, ndmin=2)
        got = np.zeros_like(expected)
        assert lib.l1flow_predict_words(x.ctypes.data, got.ctypes.data, len(x)) == 0
        return int(np.count_nonzero(got != expected)), got

    def mapped(name):
        return name in open("/proc/self/maps").read()

    folders = sys.argv[1:]
    libs = {f: load(f) for f in folders}
    report = {"before": {}, "after": {}}
    outputs = {}
    for f, (lib, meta) in libs.items():
        report["before"][meta["library"]], outputs[meta["library"]] = mismatches(lib, f)
    report["words"] = {k: int(v.size) for k, v in outputs.items()}
    report["differing"] = {
        f"{a}|{b}": int(np.count_nonzero(outputs[a] != outputs[b]))
        for a in outputs for b in outputs if a < b and outputs[a].shape == outputs[b].shape
    }
    # unload the first library for real, then run the others again
    first, (lib, meta) = folders[0], libs.pop(folders[0])
    import _ctypes
    _ctypes.dlclose(lib._handle)
    report["unloaded"] = meta["library"]
    report["still_mapped"] = mapped(meta["library"])
    for f, (lib, meta) in libs.items():
        report["after"][meta["library"]] = mismatches(lib, f)[0]
    print(json.dumps(report))
    """
)


@pytest.mark.slow
def test_three_libraries_in_one_process_each_reproduce_their_own_vectors(packages: dict[str, Path],
                                                                         tmp_path: Path) -> None:
    script = tmp_path / "loader.py"
    script.write_text(_LOADER)
    order = [packages["ae_v1"], packages["ae_v2"], packages["bdt_v1"]]
    run = subprocess.run([sys.executable, str(script), *map(str, order)], check=False, capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["before"] == {"libae_v1.so": 0, "libae_v2.so": 0, "libbdt_v1.so": 0}
    assert report["words"] == {"libae_v1.so": EVENTS * 6, "libae_v2.so": EVENTS * 6, "libbdt_v1.so": EVENTS}
    # the two versions really compute different things, so agreeing with their own vectors means no collision
    assert report["differing"]["libae_v1.so|libae_v2.so"] > EVENTS
    assert report["unloaded"] == "libae_v1.so" and report["still_mapped"] is False
    assert report["after"] == {"libae_v2.so": 0, "libbdt_v1.so": 0}


_MODEL_LOADER = textwrap.dedent(
    """
    // Two versions of one model through hls4mlEmulator::Model, loaded with RTLD_GLOBAL into one process.
    #include <dlfcn.h>
    #include <cstdio>
    #include "ap_fixed.h"
    #include "emulator.h"
    typedef ap_fixed<9,4,AP_RND_CONV,AP_SAT,0> in_t;
    typedef ap_fixed<OUT_W,OUT_I,AP_TRN,AP_WRAP,0> out_t;
    int main(int argc, char **argv) {
        in_t x[6];
        for (int i = 0; i < 6; i++) x[i] = 0.75 * (i - 2);
        for (int k = 1; k < argc; k++) {
            void *lib = dlopen(argv[k], RTLD_NOW | RTLD_GLOBAL);
            if (!lib) { printf("dlopen %s\\n", dlerror()); return 2; }
            auto create = (hls4mlEmulator::create_model_cls *)dlsym(lib, "create_model");
            auto destroy = (hls4mlEmulator::destroy_model_cls *)dlsym(lib, "destroy_model");
            hls4mlEmulator::Model *model = create();
            out_t y[6];
            model->prepare_input(x);
            model->predict();
            model->read_result(y);
            for (int j = 0; j < 6; j++) printf("%s%.6f", j ? " " : "", y[j].to_double());
            printf("\\n");
            destroy(model);
        }
        return 0;
    }
    """
)


@pytest.mark.slow
def test_model_interface_of_two_versions_in_one_process_matches_each_alone(packages: dict[str, Path],
                                                                           tmp_path: Path) -> None:
    manifest = json.loads((packages["ae_v1"] / "emulator.json").read_text())
    out_type = manifest["cpp_types"]["output"]
    width, integer = (int(v) for v in out_type.split("<")[1].split(",")[:2])
    assert manifest["cpp_types"]["output"] == f"ap_fixed<{width},{integer},AP_TRN,AP_WRAP,0>"
    source = tmp_path / "loader.cpp"
    source.write_text(_MODEL_LOADER)
    program = tmp_path / "loader"
    subprocess.run(["g++", "-std=c++17", f"-DOUT_W={width}", f"-DOUT_I={integer}",
                    f"-I{packages['ae_v1'] / 'include'}", f"-I{packages['ae_v1'] / 'ap_types'}",
                    str(source), "-o", str(program), "-ldl"], check=True)
    v1, v2 = (str(packages[k] / f"lib{k}.so") for k in ("ae_v1", "ae_v2"))
    alone = [subprocess.run([str(program), lib], capture_output=True, text=True, check=True).stdout for lib in (v1, v2)]
    together = subprocess.run([str(program), v1, v2], capture_output=True, text=True, check=True).stdout
    assert together == alone[0] + alone[1]
    assert alone[0] != alone[1]


_HLS4ML_CSIM = textwrap.dedent(
    """
    import ctypes, glob, json, os, sys
    import numpy as np
    x = np.linspace(-2, 2, 6)
    outputs = []
    for run in sys.argv[1:]:
        [library] = glob.glob(os.path.join(run, "firmware/ae/hls4ml/firmware/myproject-*.so"))
        lib = ctypes.CDLL(library, mode=os.RTLD_GLOBAL)
        y = np.zeros(6)
        lib.myproject_double(x.ctypes.data_as(ctypes.c_void_p), y.ctypes.data_as(ctypes.c_void_p))
        outputs.append(y.tolist())
    print(json.dumps(outputs))
    """
)


@pytest.mark.slow
def test_hls4ml_own_csim_libraries_collide_in_one_process(runs: dict[str, Path], tmp_path: Path) -> None:
    """The failure the packages prevent: hls4ml's C-sim libraries export `myproject`, `w3`, ...

    Loaded with RTLD_GLOBAL after version 1, version 2's library runs
    version 1's code and weights, so this check would catch a package that
    leaked its symbols the same way.
    """
    script = tmp_path / "csim.py"
    script.write_text(_HLS4ML_CSIM)

    def outputs(*keys: str) -> list[list[float]]:
        run = subprocess.run([sys.executable, str(script), *(str(runs[k]) for k in keys)],
                             check=True, capture_output=True, text=True)
        return list(json.loads(run.stdout))

    [v1_alone], [v2_alone] = outputs("ae_v1"), outputs("ae_v2")
    assert v1_alone != v2_alone
    v1_first, v2_second = outputs("ae_v1", "ae_v2")
    assert v1_first == v1_alone and v2_second != v2_alone


@pytest.mark.slow
def test_make_check_catches_one_flipped_bit(packages: dict[str, Path], tmp_path: Path) -> None:
    copy = tmp_path / "bdt"
    shutil.copytree(packages["bdt_v1"], copy)
    outputs = copy / "vectors" / "outputs.txt"
    rows = outputs.read_text().splitlines()
    rows[7] = str(int(rows[7]) ^ 1)
    outputs.write_text("\n".join(rows) + "\n")
    with pytest.raises(VerificationFailed, match=r"mismatching words: 1 \(l1flow_predict_words\), 1 "):
        build_and_check(copy)
    run = subprocess.run(["make", "-C", str(copy), "check"], check=False, capture_output=True, text=True)
    assert run.returncode != 0 and "event 7 word 0" in run.stdout


def test_model_references_and_bad_runs_are_refused(tmp_path: Path) -> None:
    assert parse_model_reference("work/runs/r1:bdt") == ("run", "work/runs/r1", "bdt")
    assert parse_model_reference("bdt@production") == ("registry", "bdt", "production")
    assert parse_model_reference("axol1tl_ae/3") == ("registry", "axol1tl_ae", "3")
    for bad in ("bdt", "bdt@", ":bdt", "a/b/c"):
        with pytest.raises(BadInputError, match="RUN_DIR:NAME"):
            parse_model_reference(bad)
    with pytest.raises(BadInputError, match="summary.json does not exist"):
        source_from_run(tmp_path, "bdt")
    (tmp_path / "summary.json").write_text(json.dumps({"models": {"bdt": {"artifacts": {}}}, "registry": []}))
    with pytest.raises(BadInputError, match="no model 'ae'; its models are \\['bdt'\\]"):
        source_from_run(tmp_path, "ae")
    with pytest.raises(BadInputError, match="has no registry version"):
        source_from_run(tmp_path, "bdt")
    (tmp_path / "summary.json").write_text(json.dumps({
        "models": {"bdt": {"artifacts": {"firmware": "firmware/bdt", "vectors": "vectors/bdt"}}},
        "registry": [{"name": "bdt", "version": 4, "promoted": False, "verdict": ""}],
    }))
    (tmp_path / "firmware" / "bdt").mkdir(parents=True)
    with pytest.raises(BadInputError, match="neither an hls4ml project"):
        source_from_run(tmp_path, "bdt")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_registry_version_keeps_the_attached_package_and_refuses_a_tampered_one(runs: dict[str, Path],
                                                                                tmp_path: Path) -> None:
    from l1flow.cli.main import main
    from l1flow.registry.criteria import AcceptanceCriteria
    from l1flow.registry.store import ModelRegistry, RegistryError

    workspace = tmp_path / "workspace"
    registry = ModelRegistry(workspace)
    [registered] = registry.record_run(runs["bdt_v1"], AcceptanceCriteria(), promote=False)
    number = registered.version
    common = ["--workspace", str(workspace)]
    assert main(["export", "emulator", f"bdt/{number}", "--out", str(tmp_path / "first"), "--attach", *common]) == 0
    assert registry.has_emulator("bdt", number)
    with pytest.raises(RegistryError, match="already has an emulator package"):
        registry.attach_emulator("bdt", number, tmp_path / "first" / "emulator.json")
    # a later export of the alias gets the attached files, byte for byte
    assert main(["export", "emulator", "bdt@candidate", "--out", str(tmp_path / "second"), *common]) == 0
    first, second = (json.loads((tmp_path / k / "emulator.json").read_text()) for k in ("first", "second"))
    assert first == second and first["library"] == f"libbdt_v{number}.so"
    assert f"bdt version {number}" in first["origin"]
    assert sorted(p.name for p in (tmp_path / "second").iterdir()) == sorted(
        p.name for p in (tmp_path / "first").iterdir()
    )
    for relative in first["files"]:
        assert (tmp_path / "second" / relative).read_bytes() == (tmp_path / "first" / relative).read_bytes()
    # a replaced archive in the artifact store is refused, and nothing is written
    [stored] = list(workspace.glob("mlartifacts/**/emulators/bdt/*/*.tar.gz"))
    stored.write_bytes(stored.read_bytes()[:-10] + bytes(10))
    assert main(["export", "emulator", "bdt@candidate", "--out", str(tmp_path / "third"), *common]) == 2
    assert not (tmp_path / "third").exists()
    # an existing --out is refused before anything is done
    assert main(["export", "emulator", f"{runs['bdt_v1']}:bdt", "--out", str(tmp_path / "first")]) == 2
