"""The command lines and environments of the two servers l1flow starts: Prefect's API and the MLflow registry.

Plain functions (no Prefect, no MLflow import) so that a refusal (a public
address without a credential, a bad credential file) comes back at once and
the launch can be checked without starting anything. The credential goes to
the server through its environment, never its arguments.
"""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

from l1flow.auth import (
    MLFLOW_MIN_PASSWORD,
    PREFECT_AUTH_FILE_ENV,
    PREFECT_SERVER_AUTH_ENV,
    REGISTRY_AUTH_FILE_ENV,
    Credential,
    check_listen_address,
    credential_from_env,
    mask_url_password,
    prefect_server_credential,
)
from l1flow.errors import BadInputError
from l1flow.fileio import write_text_atomic

TELEMETRY_OFF = {"DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
# the registry server's own files inside the workspace: auth config, user store, CSRF key
REGISTRY_SERVER_DIR = ".registry-server"


@dataclass(frozen=True)
class ServerLaunch:
    """A server process to exec: its command line, environment and a one-line description."""

    command: list[str]
    env: dict[str, str]
    description: str


def prefect_server_launch(host: str, port: int, environ: dict[str, str] | None = None) -> ServerLaunch:
    """`prefect server start` on ``host``:``port``, with API authentication when a credential is set.

    The database is Prefect's PREFECT_API_DATABASE_CONNECTION_URL (PostgreSQL in
    production; SQLite under PREFECT_HOME when unset).
    """
    env = dict(os.environ if environ is None else environ)
    credential = prefect_server_credential(env)
    check_listen_address(
        host, credential, "the Prefect API",
        f"set {PREFECT_AUTH_FILE_ENV} to a file holding user:password (mode 600)",
    )
    env.update(TELEMETRY_OFF)
    if credential is not None:
        env[PREFECT_SERVER_AUTH_ENV] = credential.basic()
    database = env.get("PREFECT_API_DATABASE_CONNECTION_URL")
    auth = f"basic authentication ({credential.source})" if credential else "no authentication (loopback only)"
    return ServerLaunch(
        command=[sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port)],
        env=env,
        description=(
            f"Prefect API on http://{host}:{port}/api, {auth}, database "
            f"{mask_url_password(database) if database else 'SQLite under PREFECT_HOME'}"
        ),
    )


def _registry_credential(env: dict[str, str]) -> Credential | None:
    credential = credential_from_env(REGISTRY_AUTH_FILE_ENV, None, env)
    if credential is not None and len(credential.password) < MLFLOW_MIN_PASSWORD:
        raise BadInputError(
            f"{credential.source}: MLflow needs an admin password of at least {MLFLOW_MIN_PASSWORD} characters"
        )
    return credential


def _flask_secret_key(folder: Path) -> str:
    """The registry server's CSRF key, made once so that restarts keep the UI's sessions valid."""
    path = folder / "flask-secret-key"
    if not path.is_file():
        write_text_atomic(path, secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def registry_server_launch(
    workspace: Path,
    host: str,
    port: int,
    allowed_hosts: str | None = None,
    environ: dict[str, str] | None = None,
) -> ServerLaunch:
    """`mlflow server` for the registry of ``workspace``, behind MLflow's basic auth when a credential is set.

    The admin user is created from L1FLOW_REGISTRY_AUTH_FILE the first time the
    server starts; artifacts are proxied by the server (``mlflow-artifacts:``),
    so clients need no access to the workspace's disk.
    """
    env = dict(os.environ if environ is None else environ)
    credential = _registry_credential(env)
    check_listen_address(
        host, credential, "the model registry",
        f"set {REGISTRY_AUTH_FILE_ENV} to a file holding admin:password (mode 600, password of "
        f"{MLFLOW_MIN_PASSWORD}+ characters)",
    )
    workspace = Path(workspace).resolve()
    if workspace.exists() and not workspace.is_dir():
        raise BadInputError(f"--workspace {workspace} is a file; give the registry's workspace folder")
    server_dir = workspace / REGISTRY_SERVER_DIR
    server_dir.mkdir(parents=True, exist_ok=True)
    server_dir.chmod(0o700)
    command = [
        sys.executable, "-m", "mlflow", "server", "--host", host, "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{workspace / 'mlflow.db'}",
        "--serve-artifacts", "--artifacts-destination", (workspace / "mlartifacts").as_uri(),
    ]
    if allowed_hosts:
        command += ["--allowed-hosts", allowed_hosts]
    env.update(TELEMETRY_OFF)
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    if credential is not None:
        config = server_dir / "basic_auth.ini"
        # no secret in this file: the admin credential reaches MLflow through its environment
        write_text_atomic(
            config,
            "[mlflow]\n"
            "default_permission = READ\n"
            f"database_uri = sqlite:///{server_dir / 'auth.db'}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
            # MLflow checks a PBKDF2 hash on every request (seconds on a loaded host; a registration
            # makes dozens): cache a good check for a minute. With one worker a password changed
            # through the API takes effect at once; only out-of-band changes wait for the TTL.
            "auth_cache_ttl_seconds = 60\n",
        )
        command += ["--app-name", "basic-auth"]
        env.update(
            {
                "MLFLOW_AUTH_CONFIG_PATH": str(config),
                "MLFLOW_AUTH_ADMIN_USERNAME": credential.username,
                "MLFLOW_AUTH_ADMIN_PASSWORD": credential.password,
                "MLFLOW_FLASK_SERVER_SECRET_KEY": _flask_secret_key(server_dir),
            }
        )
    auth = f"basic authentication ({credential.source})" if credential else "no authentication (loopback only)"
    return ServerLaunch(
        command=command,
        env=env,
        description=f"model registry of {workspace} on http://{host}:{port}, {auth}",
    )
