"""`l1flow conditions list | show | add | diff | import | export`.

The store defaults to ``<workspace>/conditions.sqlite`` with the workspace from
``$L1FLOW_WORKSPACE`` or ``work`` (the pipeline's default workspace).
Exit codes: 0 done, 1 error (message on stderr).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from l1flow.conditions.change import ChangeTolerances, decide_retrain
from l1flow.conditions.payload import ConditionsPayload, PayloadError, parse_payload
from l1flow.conditions.store import DEFAULT_STORE_NAME, ConditionsStore, StoreError

WORKSPACE_ENV = "L1FLOW_WORKSPACE"


def default_store_path() -> Path:
    return Path(os.environ.get(WORKSPACE_ENV, "work")) / DEFAULT_STORE_NAME


def _open(args: argparse.Namespace, create: bool = False) -> ConditionsStore:
    path = Path(args.store)
    if not create and not path.is_file():
        raise StoreError(f"{path}: no conditions store here; create one with `l1flow conditions add` or `import`")
    return ConditionsStore(path)


def _set(data: dict[str, Any], assignment: str) -> None:
    """Apply one ``dotted.field=value`` (value parsed as YAML) to a payload dict."""
    key, sep, text = assignment.partition("=")
    if not sep or not key:
        raise PayloadError(f"--set {assignment!r}: expected dotted.field=value, e.g. calibration.jet=1.05")
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            raise PayloadError(f"--set {assignment!r}: {part!r} is not a group of fields")
        node = child
    node[parts[-1]] = yaml.safe_load(text)


def _list(args: argparse.Namespace) -> int:
    with _open(args) as store:
        iovs = store.list(args.tag)
        if not iovs:
            print(f"{store.path}: no IOVs")
        for iov in iovs:
            end = "open" if iov.last_run is None else str(iov.last_run)
            print(f"{iov.tag:20} {iov.first_run:>10} - {end:<10} {iov.payload_hash[:12]}  {iov.comment}")
    return 0


def _show(args: argparse.Namespace) -> int:
    with _open(args) as store:
        iov = store.iov(args.tag, args.run) if args.run is not None else store.latest(args.tag)
    end = "open-ended" if iov.last_run is None else f"to run {iov.last_run}"
    print(f"# {iov.tag}: from run {iov.first_run} {end}, payload {iov.payload_hash}")
    print(yaml.safe_dump(iov.payload.to_dict(), sort_keys=False), end="")
    return 0


def _add(args: argparse.Namespace) -> int:
    with _open(args, create=True) as store:
        if args.file:
            source = str(args.file)
            try:
                data = yaml.safe_load(Path(args.file).read_text())
            except (OSError, yaml.YAMLError) as exc:
                raise PayloadError(f"{args.file}: cannot read the payload YAML ({exc})") from exc
        elif store.has_tag(args.tag):
            source = f"latest IOV of {args.tag} with --set"
            data = store.latest(args.tag).payload.to_dict()
        else:
            source = "default conditions with --set"
            data = ConditionsPayload().to_dict()
        if not isinstance(data, dict):
            raise PayloadError(f"{source}: a payload must be a mapping of fields")
        for assignment in args.set:
            _set(data, assignment)
        payload = parse_payload(data, source)
        iov = store.add(args.tag, args.first_run, payload, args.comment)
    print(f"added {iov.describe()}")
    return 0


def _diff(args: argparse.Namespace) -> int:
    tolerances = ChangeTolerances()
    with _open(args) as store:
        old = store.get(args.tag, args.run_a)
        new = store.get(args.other_tag or args.tag, args.run_b)
    decision = decide_retrain(old, new, tolerances)
    for change in decision.changes:
        mark = "!" if change.exceeds else " "
        print(f"{mark} {change.describe()}")
    print(decision.reason)
    return 0


def _import(args: argparse.Namespace) -> int:
    with _open(args, create=True) as store:
        added = store.import_yaml(args.file)
    print(f"imported {len(added)} IOV(s) from {args.file} into {args.store}")
    for iov in added:
        print(f"  {iov.describe()}")
    return 0


def _export(args: argparse.Namespace) -> int:
    with _open(args) as store:
        path = store.export_yaml(args.file, args.tag or None)
    print(f"exported {', '.join(args.tag) if args.tag else 'all tags'} to {path}")
    return 0


def _guarded(action: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return action(args)
        except (StoreError, PayloadError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return exc.exit_code

    return run


def add_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `conditions` and its subcommands on the top-level parser's subparsers."""
    parser = subparsers.add_parser("conditions", help="detector conditions store: IOVs under tags")
    parser.set_defaults(func=lambda _args: (parser.print_help(), 1)[1])
    commands = parser.add_subparsers(dest="conditions_command", metavar="COMMAND")

    def command(name: str, action: Callable[[argparse.Namespace], int], help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--store", type=Path, default=default_store_path(),
                         help=f"SQLite conditions store (default: ${WORKSPACE_ENV}/conditions.sqlite or work/conditions.sqlite)")
        sub.set_defaults(func=_guarded(action))
        return sub

    sub = command("list", _list, "list IOVs (of one tag or of all)")
    sub.add_argument("--tag", default=None)

    sub = command("show", _show, "print the payload of an IOV as YAML")
    sub.add_argument("tag")
    sub.add_argument("--run", type=int, default=None, help="run whose IOV to show (default: the latest IOV)")

    sub = command("add", _add, "add an IOV: payload from a YAML file and/or --set on the tag's latest payload")
    sub.add_argument("tag")
    sub.add_argument("--first-run", type=int, required=True, help="first run of the new IOV")
    sub.add_argument("--file", type=Path, default=None, help="payload YAML (fields of ConditionsPayload)")
    sub.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                     help="change one field, e.g. calibration.jet=1.05 or mean_pileup=60 (repeatable)")
    sub.add_argument("--comment", default="")

    sub = command("diff", _diff, "compare two IOVs and say whether a model trained on the first must be retrained")
    sub.add_argument("tag")
    sub.add_argument("run_a", type=int)
    sub.add_argument("run_b", type=int)
    sub.add_argument("--other-tag", default=None, help="take run_b from this tag instead")

    sub = command("import", _import, "add every IOV of a YAML export (all or nothing)")
    sub.add_argument("file", type=Path)

    sub = command("export", _export, "write tags to a YAML file")
    sub.add_argument("file", type=Path)
    sub.add_argument("--tag", action="append", default=[], help="tag to export (repeatable; default all)")
