"""The production setup as docs/scaling.md describes it: authenticated servers, credentials from files.

- `l1flow prefect-server` / `l1flow registry-server` refuse a non-loopback
  address without a credential (exit 2, before anything starts);
- against the PostgreSQL-backed Prefect server with API authentication, a client
  without the credential gets HTTP 401 and `l1flow` commands say so (exit 2);
  with it, they work;
- the MLflow registry served with basic auth refuses an anonymous client and lets
  l1flow's registry code register and read a model version with the credential.

The submit -> worker -> fetch and worker-SIGKILL scenarios on PostgreSQL are in
test_prefect_synthesis.py (parametrized over the database).
"""

from __future__ import annotations

import base64
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

# its asserts are rewritten even when this import comes before pytest loads it as a plugin
pytest.register_assert_rewrite("prefect_fixtures")
from prefect_fixtures import (  # noqa: E402
    PYTHON,
    REPO_ROOT,
    PrefectServer,
    free_port,
    l1flow_command,
    prefect_env,
    stop_process,
    wait_for,
    write_credential,
)

from l1flow.auth import (
    Credential,
    is_loopback,
    mask_url_password,
    parse_credential,
    prefect_client_credential,
    prefect_server_credential,
    read_credential_file,
    registry_credential,
)
from l1flow.errors import BadInputError

pytest_plugins = ["prefect_fixtures"]


def _run(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT, check=False)


# ---------------------------------------------------------------- credentials (no server)


def test_credential_is_one_user_password_line_and_never_printed(tmp_path: Path) -> None:
    credential = parse_credential("admin:s3cret:with:colons\n", "test")
    assert (credential.username, credential.password) == ("admin", "s3cret:with:colons")
    assert "s3cret" not in repr(credential)
    for bad in ("no-colon", ":password", "user:", "a:b\nc:d", "us er:pw"):
        with pytest.raises(BadInputError, match="^test: "):
            parse_credential(bad, "test")

    path = tmp_path / "credential"
    path.write_text("admin:s3cret\n")
    path.chmod(0o640)
    with pytest.raises(BadInputError, match=r"can be read or written by other users \(mode 640\); run `chmod 600"):
        read_credential_file(path)
    path.chmod(0o600)
    assert read_credential_file(path).basic() == "admin:s3cret"
    with pytest.raises(BadInputError, match="credential file .*missing: No such file"):
        read_credential_file(tmp_path / "missing")


def test_clients_export_the_credential_to_the_tools_own_settings(tmp_path: Path) -> None:
    path = write_credential(tmp_path / "credential", "alice:correct-horse-battery")
    env: dict[str, str] = {"L1FLOW_PREFECT_AUTH_FILE": str(path)}
    assert prefect_client_credential(env) == Credential("alice", "correct-horse-battery", f"credential file {path}")
    assert env["PREFECT_API_AUTH_STRING"] == "alice:correct-horse-battery"

    env = {"L1FLOW_REGISTRY_AUTH_FILE": str(path)}
    registry_credential(env)
    assert (env["MLFLOW_TRACKING_USERNAME"], env["MLFLOW_TRACKING_PASSWORD"]) == ("alice", "correct-horse-battery")
    # l1flow's file, when set, wins over the tool's own variables, on every side
    env = {"L1FLOW_REGISTRY_AUTH_FILE": str(path), "MLFLOW_TRACKING_USERNAME": "bob", "MLFLOW_TRACKING_PASSWORD": "x"}
    registry_credential(env)
    assert (env["MLFLOW_TRACKING_USERNAME"], env["MLFLOW_TRACKING_PASSWORD"]) == ("alice", "correct-horse-battery")
    env = {"L1FLOW_PREFECT_AUTH_FILE": str(path), "PREFECT_API_AUTH_STRING": "bob:x"}
    prefect_client_credential(env)
    assert env["PREFECT_API_AUTH_STRING"] == "alice:correct-horse-battery"
    assert prefect_server_credential({"L1FLOW_PREFECT_AUTH_FILE": str(path), "PREFECT_SERVER_API_AUTH_STRING": "bob:x"})
    assert prefect_server_credential({"PREFECT_SERVER_API_AUTH_STRING": "bob:x"}) == Credential(
        "bob", "x", "environment variable PREFECT_SERVER_API_AUTH_STRING"
    )
    assert prefect_client_credential({}) is None


def test_only_loopback_addresses_count_as_private() -> None:
    assert all(is_loopback(host) for host in ("127.0.0.1", "127.3.2.1", "localhost", "::1", "[::1]"))
    assert not any(is_loopback(host) for host in ("0.0.0.0", "::", "10.0.0.5", "192.168.1.2", "prefect-host"))
    assert mask_url_password("postgresql+asyncpg://prefect:p@ss@db:5432/prefect") == (
        "postgresql+asyncpg://prefect:***@db:5432/prefect"
    )
    assert mask_url_password("sqlite+aiosqlite:///x.db") == "sqlite+aiosqlite:///x.db"


@pytest.mark.parametrize(
    "command, variable",
    [
        (["prefect-server", "--host", "0.0.0.0"], "L1FLOW_PREFECT_AUTH_FILE"),
        (["registry-server", "--workspace", "WS", "--host", "10.0.0.5"], "L1FLOW_REGISTRY_AUTH_FILE"),
    ],
)
def test_servers_refuse_a_public_address_without_a_credential(
    tmp_path: Path, command: list[str], variable: str
) -> None:
    command = [str(tmp_path / "ws") if part == "WS" else part for part in command]
    env = prefect_env(tmp_path / "home")
    env.pop(variable, None)
    result = _run(l1flow_command(*command), env)
    assert result.returncode == 2, result.stderr
    assert f"--host {command[-1]}: refusing to serve" in result.stderr
    assert f"without authentication; set {variable} to a file holding" in result.stderr
    assert not (tmp_path / "ws").exists()  # nothing was started or written

    # a credential file others can read is refused too, naming the file
    loose = tmp_path / "credential"
    loose.write_text("admin:long-enough-password\n")
    result = _run(l1flow_command(*command), {**env, variable: str(loose)})
    assert result.returncode == 2
    assert f"credential file {loose} can be read or written by other users (mode 644)" in result.stderr


@pytest.mark.parametrize("command", [["run", "configs/default.yaml"], ["synth", "status", "some-run"]])
def test_clients_refuse_a_loose_credential_file_before_contacting_anything(tmp_path: Path, command: list[str]) -> None:
    loose = tmp_path / "credential"
    loose.write_text("l1flow:secret-value\n")
    loose.chmod(0o604)
    env = {**prefect_env(tmp_path / "home"), "L1FLOW_PREFECT_AUTH_FILE": str(loose)}
    result = _run([PYTHON, "-m", "l1flow.cli", *command], env)
    assert result.returncode == 2, result.stderr
    assert f"credential file {loose} can be read or written by other users (mode 604)" in result.stderr
    assert "secret-value" not in result.stdout + result.stderr
    assert not (tmp_path / "home").exists()  # no Prefect home, no server, no run was started


def test_serve_refuses_to_expose_the_runner_webserver(tmp_path: Path) -> None:
    """`l1flow serve`'s runner webserver has no authentication: it stays on loopback."""
    env = prefect_env(tmp_path / "home", api_url=f"http://127.0.0.1:{free_port()}/api")  # nothing listens there
    env.update({"PREFECT_RUNNER_SERVER_ENABLE": "true", "PREFECT_RUNNER_SERVER_HOST": "0.0.0.0"})
    result = _run(
        l1flow_command("serve", str(tmp_path / "config.yaml"), "--conditions-db", str(tmp_path / "c.sqlite"),
                       "--tag", "L1Conditions_v1"),
        env,
    )
    assert result.returncode == 2, result.stderr
    assert "PREFECT_RUNNER_SERVER_HOST=0.0.0.0: the webserver of `l1flow serve`'s runner has no authentication" in (
        result.stderr
    )


# ---------------------------------------------------------------- Prefect API authentication


@pytest.mark.slow
@pytest.mark.parametrize("prefect_server", ["postgresql"], indirect=True)
def test_prefect_api_refuses_a_client_without_the_credential(prefect_server: PrefectServer, tmp_path: Path) -> None:
    assert prefect_server.auth_string is not None
    query = f"{prefect_server.api_url}/flow_runs/filter"
    # health stays open for probes; everything else needs the credential
    assert httpx.get(f"{prefect_server.api_url}/health", timeout=60).status_code == 200
    assert httpx.post(query, json={"limit": 1}, timeout=60).status_code == 401
    wrong = base64.b64encode(b"l1flow:wrong").decode()
    assert httpx.post(query, json={"limit": 1}, headers={"Authorization": f"Basic {wrong}"}, timeout=60).status_code == 401
    right = base64.b64encode(prefect_server.auth_string.encode()).decode()
    assert httpx.post(query, json={"limit": 1}, headers={"Authorization": f"Basic {right}"}, timeout=60).status_code == 200

    anonymous = prefect_server.env()
    anonymous.pop("L1FLOW_PREFECT_AUTH_FILE")
    run_id = str(uuid.uuid4())
    refused = _run(l1flow_command("synth", "status", run_id), anonymous)
    assert refused.returncode == 2, refused.stderr
    assert f"the Prefect server at {prefect_server.api_url} requires authentication (HTTP 401)" in refused.stderr
    worker = _run(l1flow_command("worker", "--pool", "fpga-synthesis-open"), anonymous)
    assert worker.returncode == 2 and "requires authentication (HTTP 401)" in worker.stderr

    bad_file = write_credential(tmp_path / "bad-credential", "l1flow:wrong")
    refused = _run(l1flow_command("synth", "status", run_id), {**anonymous, "L1FLOW_PREFECT_AUTH_FILE": str(bad_file)})
    assert refused.returncode == 2
    assert f"refused the credential of credential file {bad_file} (HTTP 401)" in refused.stderr

    # with the credential file, the request reaches Prefect, which answers that no such run exists
    allowed = _run(l1flow_command("synth", "status", run_id), prefect_server.env())
    assert allowed.returncode == 2, allowed.stderr
    assert f"no flow run {run_id} on the Prefect server at {prefect_server.api_url}" in allowed.stderr
    assert prefect_server.auth_string not in allowed.stdout + allowed.stderr


# ---------------------------------------------------------------- MLflow registry behind basic auth


@pytest.fixture
def registry_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`l1flow registry-server` with basic auth on a free port; yields its URL and credential file."""
    credential = write_credential(tmp_path / "registry-credential", "admin:registry-pass-0123")
    port = free_port()
    env = prefect_env(tmp_path / "home")
    env["L1FLOW_REGISTRY_AUTH_FILE"] = str(credential)
    log_path = tmp_path / "registry-server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            l1flow_command("registry-server", "--workspace", str(tmp_path / "served"), "--port", str(port)),
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"registry server exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            return httpx.get(f"{url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(healthy, timeout=240, what="the registry server", interval=0.5)
        yield url, credential
    finally:
        stop_process(process)


@pytest.mark.slow
def test_registry_server_refuses_anonymous_clients_and_serves_authenticated_ones(
    registry_server: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_registry_runfolders import make_run_folder

    from l1flow.registry.criteria import AcceptanceCriteria
    from l1flow.registry.store import ModelRegistry, RegistryError

    url, credential = registry_server
    search = f"{url}/api/2.0/mlflow/registered-models/search"
    assert httpx.get(search, timeout=60).status_code == 401
    assert httpx.get(search, auth=("admin", "wrong-password-99"), timeout=60).status_code == 401
    assert httpx.get(search, auth=("admin", "registry-pass-0123"), timeout=60).status_code == 200

    for variable in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "L1FLOW_REGISTRY_AUTH_FILE"):
        monkeypatch.setenv(variable, "")  # restored after the test, whatever the registry code exports
        monkeypatch.delenv(variable)
    with pytest.raises(RegistryError, match=f"cannot open the MLflow store at {url}"):
        ModelRegistry(tmp_path / "anonymous", tracking_uri=url)

    monkeypatch.setenv("L1FLOW_REGISTRY_AUTH_FILE", str(credential))
    run_dir = make_run_folder(tmp_path / "run1")
    versions = ModelRegistry(tmp_path / "client", tracking_uri=url).record_run(run_dir, AcceptanceCriteria())
    assert [(v.name, v.version) for v in versions] == [("ae", 1)]
    # another client reads it back, with its lineage, through the server
    details = ModelRegistry(tmp_path / "other-client", tracking_uri=url).show("ae", 1)
    assert details.version == 1
    listed = _run(
        [PYTHON, "-m", "l1flow.cli", "models", "list", "--workspace", str(tmp_path / "cli"), "--tracking-uri", url],
        {**prefect_env(tmp_path / "home"), "L1FLOW_REGISTRY_AUTH_FILE": str(credential)},
    )
    assert listed.returncode == 0, listed.stderr
    assert "ae" in listed.stdout
    assert "registry-pass-0123" not in listed.stdout + listed.stderr
