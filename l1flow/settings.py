"""Every ``L1FLOW_*`` environment variable, read in one place.

- ``L1FLOW_WORKSPACE``: workspace folder of every command (the pipeline's
  stores, caches and runs; the model registry); the default is ``work``, as in
  the example configs
- ``L1FLOW_DEBUG``: any non-empty value shows tracebacks of errors
- ``L1FLOW_USER``: who promoted or rolled back a version (default: the login name)
- ``L1FLOW_CACHE``: machine-wide build cache (Verilated simulators); default
  ``~/.cache/l1flow``
- ``L1FLOW_ARTIFACT_STORE``: artifact store URL shared with the synthesis
  workers; default ``~/.l1flow/artifacts``
- ``L1FLOW_PREFECT_AUTH_FILE``: file holding the Prefect API credential
  (``user:password``, mode 600), for the server and every client command
  (docs/scaling.md)
- ``L1FLOW_REGISTRY_AUTH_FILE``: file holding the MLflow registry server's admin
  credential, for ``registry-server`` and registry clients

``settings()`` reads the environment on each call, so a test or a command that
changes a variable sees it at once.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

#: the workspace every command uses when neither --workspace nor $L1FLOW_WORKSPACE says otherwise
DEFAULT_WORKSPACE = Path("work")
#: the variables naming credential files (read by l1flow.auth)
AUTH_FILE_VARIABLES = ("L1FLOW_PREFECT_AUTH_FILE", "L1FLOW_REGISTRY_AUTH_FILE")


@dataclass(frozen=True)
class Settings:
    """l1flow's settings from the environment (see the module docstring)."""

    workspace_override: Path | None
    debug: bool
    user: str
    cache: Path
    artifact_store: str
    #: ``L1FLOW_PREFECT_AUTH_FILE`` / ``L1FLOW_REGISTRY_AUTH_FILE`` by variable name, when set
    auth_files: dict[str, Path]

    @property
    def workspace(self) -> Path:
        """$L1FLOW_WORKSPACE, else the default ``work``."""
        return self.workspace_override or DEFAULT_WORKSPACE


def settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings of ``environ`` (default: this process's environment)."""
    env = os.environ if environ is None else environ
    workspace = env.get("L1FLOW_WORKSPACE")
    return Settings(
        workspace_override=Path(workspace) if workspace else None,
        debug=bool(env.get("L1FLOW_DEBUG")),
        user=env.get("L1FLOW_USER") or getpass.getuser(),
        cache=Path(env.get("L1FLOW_CACHE") or Path.home() / ".cache" / "l1flow"),
        artifact_store=env.get("L1FLOW_ARTIFACT_STORE") or str(Path.home() / ".l1flow" / "artifacts"),
        auth_files={name: Path(env[name]) for name in AUTH_FILE_VARIABLES if env.get(name)},
    )
