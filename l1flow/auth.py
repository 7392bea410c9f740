"""Credentials of the Prefect API and the MLflow registry server, and where servers may listen.

A credential is one ``user:password`` line, read from a file that only its
owner can read (l1flow's ``L1FLOW_*_AUTH_FILE`` variables, which win when set)
or from the tool's own environment variable, and handed to the tool's own client
setting (``PREFECT_API_AUTH_STRING``, ``MLFLOW_TRACKING_USERNAME`` /
``MLFLOW_TRACKING_PASSWORD``) through the environment, never on a command
line where ``ps`` would show it. Its ``repr`` hides the password.

A server listens on a loopback address unless authentication is on: anything
else (``0.0.0.0``, a host name, a LAN address) is refused without a credential.
"""

from __future__ import annotations

import ipaddress
import os
import stat
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path

from l1flow.errors import BadInputError
from l1flow.settings import settings

# Prefect's own settings: the client's credential and the server's expected one.
PREFECT_CLIENT_AUTH_ENV = "PREFECT_API_AUTH_STRING"
PREFECT_SERVER_AUTH_ENV = "PREFECT_SERVER_API_AUTH_STRING"
# l1flow's: a file holding the Prefect credential, read by the server and every client command.
PREFECT_AUTH_FILE_ENV = "L1FLOW_PREFECT_AUTH_FILE"
# A file holding the registry server's admin credential, read by `registry-server` and registry clients.
REGISTRY_AUTH_FILE_ENV = "L1FLOW_REGISTRY_AUTH_FILE"
# MLflow's own client settings.
MLFLOW_USERNAME_ENV = "MLFLOW_TRACKING_USERNAME"
MLFLOW_PASSWORD_ENV = "MLFLOW_TRACKING_PASSWORD"
# MLflow refuses a shorter admin password (mlflow.utils.validation._validate_password).
MLFLOW_MIN_PASSWORD = 12


@dataclass(frozen=True)
class Credential:
    """A ``user:password`` pair and where it came from (for messages); never printed."""

    username: str
    password: str = field(repr=False)
    source: str

    def basic(self) -> str:
        """The ``user:password`` string HTTP basic authentication encodes."""
        return f"{self.username}:{self.password}"


def parse_credential(text: str, source: str) -> Credential:
    """A credential from one ``user:password`` line; ``source`` names its file or variable in errors."""
    line = text.strip("\r\n")
    if "\n" in line or "\r" in line:
        raise BadInputError(f"{source}: holds several lines; write the credential as one line user:password")
    user, colon, password = line.partition(":")
    if not colon or not user or not password:
        raise BadInputError(f"{source}: is not of the form user:password (both parts non-empty)")
    if any(char.isspace() for char in user):
        raise BadInputError(f"{source}: the user name contains white space; write user:password on one line")
    return Credential(username=user, password=password, source=source)


def read_credential_file(path: Path) -> Credential:
    """The credential in ``path``, which must be a file that only its owner can read or write."""
    path = Path(path)
    try:
        info = path.stat()
    except OSError as exc:
        raise BadInputError(f"credential file {path}: {exc.strerror}; write user:password into it (mode 600)") from exc
    if not stat.S_ISREG(info.st_mode):
        raise BadInputError(f"credential file {path} is not a regular file; write user:password into a file")
    if info.st_mode & 0o077:
        raise BadInputError(
            f"credential file {path} can be read or written by other users "
            f"(mode {stat.S_IMODE(info.st_mode):o}); run `chmod 600 {path}`"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInputError(f"credential file {path} cannot be read: {exc}") from exc
    return parse_credential(text, f"credential file {path}")


def credential_from_env(
    file_var: str, string_var: str | None, environ: MutableMapping[str, str] | None = None
) -> Credential | None:
    """The credential in the file named by ``file_var`` (an ``L1FLOW_*_AUTH_FILE`` setting), else in
    ``string_var`` itself, else None."""
    env = os.environ if environ is None else environ
    auth_files = settings(env).auth_files
    if auth_files.get(file_var):
        return read_credential_file(auth_files[file_var])
    if string_var is not None and env.get(string_var):
        return parse_credential(env[string_var], f"environment variable {string_var}")
    return None


def prefect_client_credential(environ: MutableMapping[str, str] | None = None) -> Credential | None:
    """The Prefect credential of a client command, exported for Prefect's client.

    Must run before Prefect is imported: Prefect reads its settings from the
    environment once. The processes the command starts (a worker's flow runs)
    inherit it.
    """
    env = os.environ if environ is None else environ
    credential = credential_from_env(PREFECT_AUTH_FILE_ENV, PREFECT_CLIENT_AUTH_ENV, env)
    if credential is not None:
        env[PREFECT_CLIENT_AUTH_ENV] = credential.basic()
    return credential


def prefect_server_credential(environ: MutableMapping[str, str] | None = None) -> Credential | None:
    """The credential a Prefect server requires: l1flow's file, else Prefect's server setting."""
    return credential_from_env(PREFECT_AUTH_FILE_ENV, PREFECT_SERVER_AUTH_ENV, environ)


def registry_credential(environ: MutableMapping[str, str] | None = None) -> Credential | None:
    """The registry credential in L1FLOW_REGISTRY_AUTH_FILE, exported for MLflow's client.

    Without the file, MLflow's own MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD apply.
    """
    env = os.environ if environ is None else environ
    credential = credential_from_env(REGISTRY_AUTH_FILE_ENV, None, env)
    if credential is not None:
        env[MLFLOW_USERNAME_ENV] = credential.username
        env[MLFLOW_PASSWORD_ENV] = credential.password
    return credential


def is_loopback(host: str) -> bool:
    """Whether ``host`` is only reachable from this machine (``localhost``, 127.0.0.0/8, ::1).

    Any other name counts as reachable from outside: a name is not resolved,
    so one that happens to point at 127.0.0.1 today is still treated as public.
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_listen_address(host: str, credential: Credential | None, server: str, how: str) -> None:
    """Refuse to listen on a non-loopback ``host`` without a credential; ``how`` says how to give one."""
    if credential is None and not is_loopback(host):
        raise BadInputError(
            f"--host {host}: refusing to serve {server} on an address other machines can reach "
            f"without authentication; {how}, or listen on 127.0.0.1"
        )


def mask_url_password(url: str) -> str:
    """``url`` with the password of its ``user:password@`` part replaced by ``***``, for printing."""
    scheme, sep, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    userinfo, at, hostport = authority.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{hostport}{slash}{path}"
