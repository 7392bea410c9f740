"""`l1flow export emulator MODEL --out DIR`: a model version's emulator package.

MODEL is a run's model (``RUN_DIR:NAME``, the version the run registered) or
a registry version (``NAME@ALIAS``, ``NAME/VERSION``). For a registry version
that already has an emulator package attached, that package is fetched
(sha256 checked), so every framework release gets the same bytes; otherwise
it is written from the version's firmware bundle, and ``--attach`` records it
with the version. ``--check`` builds the library and runs ``make check``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

from l1flow.errors import BadInputError, L1flowError
from l1flow.settings import settings


def _registry(args: argparse.Namespace) -> Any:
    from l1flow.registry.store import ModelRegistry

    return ModelRegistry(workspace=Path(args.workspace or settings().workspace), tracking_uri=args.tracking_uri)


def _fetch_attached(registry: Any, name: str, version: int, out: Path) -> None:
    """Extract the attached package (archived as <library>/...) into `out` itself."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}-", dir=out.parent) as scratch:
        fetched = registry.fetch_emulator(name, version, Path(scratch) / "package")
        inner = [p for p in fetched.folder.iterdir() if p.is_dir()]
        if len(inner) != 1:
            raise L1flowError(f"the emulator package of {name} version {version} holds no single package folder")
        os.replace(inner[0], out)
    print(f"{out}/  fetched: the emulator package attached to {name} version {version} (sha256 {fetched.sha256})")


def _export_emulator(args: argparse.Namespace) -> int:
    from l1flow.export.emulator import (
        build_and_check,
        pack_for_registry,
        parse_model_reference,
        source_from_bundle,
        source_from_run,
        write_emulator_package,
    )
    from l1flow.registry.store import RegistryError

    out = Path(args.out)
    if out.exists():
        raise BadInputError(f"--out {out} already exists; choose a new folder (the package is written whole)")
    kind, where, name = parse_model_reference(args.model)
    if kind == "run":
        if args.attach:
            raise BadInputError("--attach needs a registry version (NAME@ALIAS or NAME/VERSION), not a run folder")
        package = write_emulator_package(source_from_run(Path(where), name), out)
    else:
        model_name, version = where, name
        try:
            registry = _registry(args)
            number = registry.resolve_version(model_name, version)
            if registry.has_emulator(model_name, number):
                _fetch_attached(registry, model_name, number, out)
                if args.check:
                    _report(build_and_check(out, args.jobs))
                return 0
            with tempfile.TemporaryDirectory(prefix="l1flow-export-") as scratch:
                fetched = registry.fetch(model_name, number, Path(scratch))
                block = registry.show(model_name, number).summary
                source = source_from_bundle(
                    model_name, number, fetched.folder, block,
                    origin=f"registry {registry.tracking_uri}, {model_name} version {number}",
                )
                package = write_emulator_package(source, out)
        except RegistryError as error:
            raise BadInputError(str(error)) from error
    print(f"{package.folder}/  {package.library}.so from {package.manifest['origin']}")
    if args.check:
        _report(build_and_check(package.folder, args.jobs))
    if args.attach:
        with tempfile.TemporaryDirectory(prefix="l1flow-attach-") as scratch:
            archive = pack_for_registry(package.folder, Path(scratch) / "emulator_package.tar.gz")
            sha = registry.attach_emulator(model_name, number, archive)
        print(f"attached to {model_name} version {number} (sha256 {sha})")
    return 0


def _report(check: Any) -> None:
    print(check.report)
    print(f"make: {check.build_seconds:.1f} s; make check: {check.check_seconds:.1f} s ({check.events} events)")


def add_commands(subparsers: Any) -> None:
    """Add `export` and its sub-commands to the `l1flow` argument parser."""
    export = subparsers.add_parser("export", help="packages of a model version for other software")
    verbs = export.add_subparsers(dest="export_command", required=True)
    emulator = verbs.add_parser(
        "emulator",
        help="the model's C-sim as a shared library for experiment frameworks (hls4mlEmulator::Model)",
    )
    emulator.add_argument("model", help="RUN_DIR:NAME (a run's model), NAME@ALIAS or NAME/VERSION (registry)")
    emulator.add_argument("--out", required=True, help="new folder to write the package into")
    emulator.add_argument("--check", action="store_true", help="then run `make` and `make check` in it")
    emulator.add_argument("--jobs", type=int, default=1, help="parallel make jobs for --check (default 1)")
    emulator.add_argument(
        "--attach", action="store_true",
        help="record the written package with the registry version (fetched as-is by later exports)",
    )
    emulator.add_argument(
        "--workspace", default=None,
        help="workspace of the embedded MLflow store (default: $L1FLOW_WORKSPACE, else work)",
    )
    emulator.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: the workspace's)")
    emulator.set_defaults(func=_export_emulator)

