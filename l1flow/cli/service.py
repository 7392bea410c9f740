"""``l1flow serve`` and ``l1flow worker --pool NAME``: the Prefect side of l1flow.

Prefect is imported only inside the commands, from :mod:`l1flow.flows` (the
library stays free of it); every command that talks to a server needs
PREFECT_API_URL.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from l1flow.errors import BadInputError, L1flowError
from l1flow.flows import FLOW_SOURCE, PIPELINE_ENTRYPOINT
from l1flow.service.synthesis import (
    DEFAULT_MEMORY_SLOTS_GB,
    SYNTHESIS_POOLS,
    check_pool_tools,
    describe_pools,
)
from l1flow.toolchain import ToolMissingError


class ServiceError(BadInputError):
    """A service command cannot run as asked (no server, bad job file...)."""


def require_server() -> str:
    """The Prefect API URL, or an error saying how to get one."""
    from l1flow.flows.prefect_settings import api_url

    url = api_url()
    if not url:
        raise ServiceError(
            "no Prefect server configured: set PREFECT_API_URL, e.g. "
            "`export PREFECT_API_URL=http://127.0.0.1:4200/api` after `prefect server start` "
            "(see docs/scaling.md); `l1flow run` needs no server"
        )
    return url


def print_result(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    print(json.dumps(data, sort_keys=True) if getattr(args, "json", False) else text)


# ---------------------------------------------------------------- serve


def _watch_registry_parameters(args: argparse.Namespace) -> dict[str, Any] | None:
    """Where the watch reads production's conditions (the registry), if given."""
    if (args.registry is None) != (args.model is None):
        raise ServiceError("--registry and --model go together: the registry workspace and the model it watches")
    if args.registry is None:
        return None
    return {
        "registry_workspace": str(Path(args.registry).resolve()),
        "model_name": args.model,
        "tracking_uri": args.tracking_uri,
    }


def _cmd_serve(args: argparse.Namespace) -> int:
    require_server()
    from l1flow.flows.deployments import control_deployments, register_synthesis, serve_control_flows

    registration = register_synthesis(source=args.source, memory_slots_gb=args.memory_gb)
    print(f"synthesis deployments: {', '.join(registration.deployments)}")
    if registration.created_pools:
        print(f"created work pools: {', '.join(registration.created_pools)}")
    if registration.created_limit:
        print(f"created the concurrency limit fpga-synthesis-memory ({args.memory_gb} GB of slots)")
    deployments = control_deployments(
        config_path=str(Path(args.config).resolve()),
        conditions_db=str(Path(args.conditions_db).resolve()),
        conditions_tag=args.tag,
        watch_cron=args.cron,
        watch_interval_s=args.watch_interval,
        retrain_entrypoint=args.retrain_entrypoint,
        source=args.source,
        watch_parameters=_watch_registry_parameters(args),
    )
    print("serving watch_conditions/watch and retrain; stop with Ctrl-C")
    serve_control_flows(deployments)
    return 0


# ---------------------------------------------------------------- worker


def worker_command(pool: str, name: str | None, limit: int | None) -> list[str]:
    """The `prefect worker start` command line for a process worker of ``pool``."""
    command = [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type", "process"]
    if name:
        command += ["--name", name]
    if limit is not None:
        command += ["--limit", str(limit)]
    return command


def _cmd_worker(args: argparse.Namespace) -> int:
    try:
        pool = check_pool_tools(args.pool)
    except ToolMissingError as exc:
        # the machine lacks a tool (exit 1), not a usage mistake
        raise L1flowError(f"refusing to start a worker for pool '{args.pool}': {exc}") from exc
    require_server()
    command = worker_command(pool.name, args.name, args.limit)
    # runs send heartbeats so a lost worker is noticed (Prefect's minimum period is 30 s)
    os.environ.setdefault("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "30")
    print(f"starting a process worker for pool {pool.name} (tools: {', '.join(pool.tools)})", flush=True)
    os.execv(command[0], command)
    return 0  # not reached: exec replaced this process


# ---------------------------------------------------------------- wiring


def add_commands(subparsers: Any) -> None:
    """Add ``serve`` and ``worker``."""
    serve = subparsers.add_parser(
        "serve",
        help="register deployments, pools, limits and automations on the Prefect server, then serve "
        "the conditions watch and retraining",
    )
    serve.add_argument("config", type=Path, help="pipeline YAML the retraining runs, e.g. configs/default.yaml")
    serve.add_argument("--conditions-db", type=Path, required=True, help="the SQLite conditions store to watch")
    serve.add_argument("--tag", required=True, help="conditions tag to watch, e.g. L1Conditions_v1")
    serve.add_argument("--cron", default="*/15 * * * *", help="when to look at the conditions (cron, UTC)")
    serve.add_argument(
        "--watch-interval", type=float, default=None, metavar="SECONDS",
        help="look every SECONDS instead of on the cron schedule",
    )
    serve.add_argument(
        "--memory-gb", type=int, default=DEFAULT_MEMORY_SLOTS_GB,
        help="slots of the fpga-synthesis-memory limit if it must be created (GB summed over running jobs)",
    )
    serve.add_argument(
        "--source", default=str(FLOW_SOURCE),
        help="where workers find the flow code: this repository's path on every host, or a git URL",
    )
    serve.add_argument(
        "--registry", default=None,
        help="registry workspace whose production --model records the conditions it was trained on "
        "(default: compare with the last IOV announced)",
    )
    serve.add_argument("--model", default=None, help="registered model whose production version is watched")
    serve.add_argument("--tracking-uri", default=None, help="MLflow tracking URI, if not the registry's embedded store")
    serve.add_argument(
        "--retrain-entrypoint", default=PIPELINE_ENTRYPOINT,
        help="flow the retrain deployment runs (path:function inside --source)",
    )
    serve.set_defaults(func=_cmd_serve)

    worker = subparsers.add_parser(
        "worker",
        help="start a Prefect process worker for a synthesis pool (refuses if this machine lacks the pool's tools)",
    )
    worker.add_argument("--pool", required=True, choices=sorted(SYNTHESIS_POOLS), help=describe_pools())
    worker.add_argument("--name", default=None, help="worker name shown in Prefect (default: generated)")
    worker.add_argument("--limit", type=int, default=None, help="most flow runs this worker runs at once")
    worker.set_defaults(func=_cmd_worker)
