"""``l1flow serve`` and ``l1flow worker --pool NAME``: the Prefect side of l1flow.

Prefect is imported only inside the commands, from :mod:`l1flow.flows` (the
library stays free of it); every command that talks to a server needs
PREFECT_API_URL, and the server's credential (L1FLOW_PREFECT_AUTH_FILE or
PREFECT_API_AUTH_STRING) when it requires one. ``l1flow prefect-server`` and
``l1flow registry-server`` start the servers, on loopback unless authenticated.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from base64 import b64encode
from pathlib import Path
from typing import Any

from l1flow.auth import (
    PREFECT_AUTH_FILE_ENV,
    PREFECT_CLIENT_AUTH_ENV,
    REGISTRY_AUTH_FILE_ENV,
    Credential,
    is_loopback,
    prefect_client_credential,
)
from l1flow.errors import BadInputError, L1flowError
from l1flow.flows import FLOW_SOURCE, PIPELINE_ENTRYPOINT
from l1flow.service.servers import (
    ServerLaunch,
    prefect_server_launch,
    registry_server_launch,
)
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
    """The Prefect API URL, or an error saying how to get one; refused credentials are named here.

    Reads the credential first: Prefect takes its settings from the environment when imported.
    """
    credential = prefect_client_credential()
    from l1flow.flows.prefect_settings import api_url

    url = api_url()
    if not url:
        raise ServiceError(
            "no Prefect server configured: set PREFECT_API_URL, e.g. "
            "`export PREFECT_API_URL=http://127.0.0.1:4200/api` after `l1flow prefect-server` "
            "(see docs/scaling.md); `l1flow run` needs no server"
        )
    check_credential_accepted(url, credential)
    return url


def check_credential_accepted(url: str, credential: Credential | None) -> None:
    """Ask the server one authenticated question, so that a refusal reads as one, not as a Prefect traceback.

    An unreachable server is left for Prefect's client to report.
    """
    request = urllib.request.Request(f"{url.rstrip('/')}/admin/version")
    if credential is not None:
        request.add_header("Authorization", "Basic " + b64encode(credential.basic().encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=15):
            return
    except urllib.error.HTTPError as exc:
        if exc.code != 401:
            return
    except (urllib.error.URLError, OSError):
        return
    if credential is None:
        raise BadInputError(
            f"the Prefect server at {url} requires authentication (HTTP 401): set {PREFECT_AUTH_FILE_ENV} "
            f"to a file holding user:password (mode 600), or {PREFECT_CLIENT_AUTH_ENV}"
        )
    raise BadInputError(f"the Prefect server at {url} refused the credential of {credential.source} (HTTP 401)")


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


def _check_runner_webserver() -> None:
    """Refuse to expose the runner's webserver, which has no authentication, beyond this machine."""
    from l1flow.flows.prefect_settings import runner_webserver_host

    host = runner_webserver_host()
    if host is not None and not is_loopback(host):
        raise BadInputError(
            f"PREFECT_RUNNER_SERVER_HOST={host}: the webserver of `l1flow serve`'s runner has no "
            "authentication; keep it on 127.0.0.1 or set PREFECT_RUNNER_SERVER_ENABLE=false"
        )


def _cmd_serve(args: argparse.Namespace) -> int:
    require_server()
    _check_runner_webserver()
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


# ---------------------------------------------------------------- servers


def _exec_server(launch: ServerLaunch) -> int:
    """Replace this process by the server, so that signals and the process group reach it directly."""
    print(f"starting the {launch.description}", flush=True)
    os.execve(launch.command[0], launch.command, launch.env)
    return 0  # not reached: exec replaced this process


def _cmd_prefect_server(args: argparse.Namespace) -> int:
    return _exec_server(prefect_server_launch(args.host, args.port))


def _cmd_registry_server(args: argparse.Namespace) -> int:
    return _exec_server(registry_server_launch(args.workspace, args.host, args.port, args.allowed_hosts))


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
    """Add ``serve``, ``worker``, ``prefect-server`` and ``registry-server``."""
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

    prefect_server = subparsers.add_parser(
        "prefect-server",
        help="start the Prefect API server (database: PREFECT_API_DATABASE_CONNECTION_URL); "
        f"requires the credential in {PREFECT_AUTH_FILE_ENV} to listen beyond 127.0.0.1",
    )
    prefect_server.add_argument(
        "--host", default="127.0.0.1",
        help="address to listen on; anything but loopback needs authentication (default 127.0.0.1)",
    )
    prefect_server.add_argument("--port", type=int, default=4200, help="port (default 4200)")
    prefect_server.set_defaults(func=_cmd_prefect_server)

    registry_server = subparsers.add_parser(
        "registry-server",
        help="serve a registry workspace with MLflow (basic authentication with the admin credential "
        f"in {REGISTRY_AUTH_FILE_ENV}; required to listen beyond 127.0.0.1)",
    )
    registry_server.add_argument("--workspace", type=Path, required=True, help="the registry's workspace folder")
    registry_server.add_argument(
        "--host", default="127.0.0.1",
        help="address to listen on; anything but loopback needs authentication (default 127.0.0.1)",
    )
    registry_server.add_argument("--port", type=int, default=5000, help="port (default 5000)")
    registry_server.add_argument(
        "--allowed-hosts", default=None,
        help="Host headers MLflow accepts when clients use a name, e.g. registry.example.org:5000",
    )
    registry_server.set_defaults(func=_cmd_registry_server)

    worker = subparsers.add_parser(
        "worker",
        help="start a Prefect process worker for a synthesis pool (refuses if this machine lacks the pool's tools)",
    )
    worker.add_argument("--pool", required=True, choices=sorted(SYNTHESIS_POOLS), help=describe_pools())
    worker.add_argument("--name", default=None, help="worker name shown in Prefect (default: generated)")
    worker.add_argument("--limit", type=int, default=None, help="most flow runs this worker runs at once")
    worker.set_defaults(func=_cmd_worker)
