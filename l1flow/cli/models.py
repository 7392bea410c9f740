"""`l1flow models list | show | promote | rollback | fetch`.

MLflow is imported only when a command runs, so `l1flow --help` stays fast.
The registry lives in the workspace: ``--workspace``, else ``$L1FLOW_WORKSPACE``,
else ``work`` (where ``l1flow run`` registers its versions). Exit codes: 0 done,
1 promotion refused by the acceptance criteria, 2 bad input (no such workspace,
model or version; bad criteria file; usage).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from l1flow.errors import BadInputError
from l1flow.registry.criteria import load_criteria
from l1flow.settings import settings


def _registry(args: argparse.Namespace) -> Any:
    from l1flow.registry.store import ModelRegistry

    workspace = Path(args.workspace or settings().workspace)
    # Opening a registry creates its store: a mistyped --workspace must not become a new, empty registry.
    if args.tracking_uri is None and not (workspace / "mlflow.db").is_file():
        what = "does not exist" if not workspace.exists() else "holds no registry (no mlflow.db)"
        raise BadInputError(
            f"--workspace {workspace} {what}; give the workspace of a pipeline run (its config's `workspace`) "
            f"or set $L1FLOW_WORKSPACE"
        )
    return ModelRegistry(workspace=workspace, tracking_uri=args.tracking_uri)


def _version(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str))


def _list(args: argparse.Namespace) -> int:
    overviews = _registry(args).list_models()
    if args.json:
        _print_json([asdict(o) for o in overviews])
        return 0
    if not overviews:
        print(f"no models registered in {args.tracking_uri or args.workspace or settings().workspace}")
        return 0
    print(f"{'model':24} {'versions':>8} {'latest':>6}  aliases")
    for o in overviews:
        aliases = ", ".join(f"{alias}=v{v}" for alias, v in sorted(o.aliases.items())) or "-"
        print(f"{o.name:24} {o.versions:>8} {o.latest_version:>6}  {aliases}")
    return 0


def _show(args: argparse.Namespace) -> int:
    registry = _registry(args)
    details = registry.show(args.name, _version(args.version))
    history = registry.production_history(args.name)
    if args.json:
        data = asdict(details)
        data["production_history"] = history
        _print_json(data)
        return 0
    print(f"{details.name} version {details.version}  aliases: {', '.join(details.aliases) or '-'}")
    print(f"  created {details.created}  run {details.run_id}")
    print(f"  source  {details.source}")
    print("lineage:")
    for key, value in details.lineage.items():
        print(f"  {key:36} {value}")
    print("metrics:")
    for key, value in sorted(details.metrics.items()):
        print(f"  {key:48} {value:.6g}")
    if history:
        print("production history:")
        for entry in history:
            extra = f" (from v{entry['from_version']})" if "from_version" in entry else ""
            print(f"  {entry['at']} {entry['action']:9} v{entry['version']}{extra} by {entry['by']}: {entry['reason']}")
    return 0


def _promote(args: argparse.Namespace) -> int:
    if args.force and not (args.reason or "").strip():
        raise BadInputError("--force needs --reason \"why\"; the reason is recorded with the version")
    criteria = load_criteria(Path(args.criteria)) if args.criteria else None
    entry = _registry(args).promote(
        args.name, _version(args.version), force=args.force, reason=args.reason or "", criteria=criteria
    )
    note = f" (FORCED, overriding: {entry['overridden']})" if entry["action"] == "forced" else ""
    print(f"{args.name} version {entry['version']} is now production{note}")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    entry = _registry(args).rollback(args.name, reason=args.reason or "")
    print(f"{args.name}: production rolled back from version {entry['from_version']} to version {entry['version']}")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    fetched = _registry(args).fetch(args.name, _version(args.version), Path(args.dest))
    print(f"{fetched.archive}  sha256 {fetched.sha256}")
    print(f"{fetched.folder}/  ({len(fetched.files)} files)")
    return 0


def add_commands(subparsers: Any) -> None:
    """Add `models` and its sub-commands to the `l1flow` argument parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--workspace",
        type=Path,
        default=None,
        help="workspace folder holding the embedded MLflow store (default: $L1FLOW_WORKSPACE, else work)",
    )
    common.add_argument(
        "--tracking-uri", default=None, help="MLflow tracking URI (default: sqlite:///<workspace>/mlflow.db)"
    )
    models = subparsers.add_parser("models", help="model versions, aliases and firmware bundles in MLflow")
    verbs = models.add_subparsers(dest="models_command", required=True)

    listing = verbs.add_parser("list", parents=[common], help="registered models, latest versions and aliases")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=_list)

    show = verbs.add_parser("show", parents=[common], help="lineage, metrics and aliases of one version")
    show.add_argument("name")
    show.add_argument("version", nargs="?", default="production", help="number or alias (default: production)")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(func=_show)

    promote = verbs.add_parser("promote", parents=[common], help="move production to a version that meets the criteria")
    promote.add_argument("name")
    promote.add_argument("version", help="number or alias (e.g. candidate)")
    promote.add_argument("--force", action="store_true", help="promote even if a criterion fails (recorded)")
    promote.add_argument("--reason", default="", help="why; required with --force")
    promote.add_argument(
        "--criteria", help="acceptance criteria file (JSON/YAML); default: those recorded with the version"
    )
    promote.set_defaults(func=_promote)

    rollback = verbs.add_parser("rollback", parents=[common], help="restore the previous production version")
    rollback.add_argument("name")
    rollback.add_argument("--reason", default="", help="why (recorded)")
    rollback.set_defaults(func=_rollback)

    fetch = verbs.add_parser("fetch", parents=[common], help="download and unpack a version's firmware bundle")
    fetch.add_argument("name")
    fetch.add_argument("version", nargs="?", default="production", help="number or alias (default: production)")
    fetch.add_argument("--dest", default=".", help="folder to write <name>-v<N>.tar.gz and <name>-v<N>/ into")
    fetch.set_defaults(func=_fetch)
