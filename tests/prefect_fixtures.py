"""A real Prefect server and real process workers for the orchestration tests.

One server per test session (it takes about 14 s to start): ``prefect server
start`` on a free 127.0.0.1 port, with a temporary PREFECT_HOME and SQLite
database, telemetry off and the scheduler / trigger loops shortened so the
tests do not wait a minute for a scheduled run. The production setup is a
second one, started only by the tests that ask for it (``prefect_server``
parametrized with ``"postgresql"``): ``l1flow prefect-server`` on a throwaway
PostgreSQL cluster (Debian's package, ``initdb`` / ``pg_ctl`` in a temporary
folder on a free loopback port), with API authentication on and every client
holding the credential in a file. Workers are ``l1flow worker``
subprocesses, each in its own session so a test can SIGKILL one with its flow
runs and tools.

A test module uses the fixtures by naming this module a plugin,
``pytest_plugins = ["prefect_fixtures"]``: then every module shares the one
session server (a fixture imported into several modules would start one each).

It also holds ``tiny_retrain``, a small stand-in for the pipeline flow with the
parameters the retrain trigger fills.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect import flow

from l1flow.synthesis.job import SynthesisJob

REPO_ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prefect_env(home: Path, api_url: str | None = None) -> dict[str, str]:
    """Environment for a server, worker or client process of the test session."""
    env = dict(os.environ)
    # the heartbeat period of synthesis runs is left to `l1flow worker` (the lost-worker test relies on it)
    env.pop("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", None)
    env.update(
        {
            "PREFECT_HOME": str(home),
            "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
            "DO_NOT_TRACK": "1",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "INFO",
            # scheduled runs are created within seconds of `serve`, not a minute later
            "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
            # workers and runners poll every 2 s instead of 10-15 s
            "PREFECT_WORKER_QUERY_SECONDS": "2",
            "PREFECT_RUNNER_POLL_FREQUENCY": "2",
        }
    )
    if api_url is not None:
        env["PREFECT_API_URL"] = api_url
    return env


@dataclass
class PrefectServer:
    api_url: str
    home: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    database: str = "sqlite"
    # the `user:password` file of a server with API authentication; clients get it in L1FLOW_PREFECT_AUTH_FILE
    auth_file: Path | None = None

    @property
    def auth_string(self) -> str | None:
        return self.auth_file.read_text().strip() if self.auth_file else None

    def env(self, **extra: str) -> dict[str, str]:
        env = prefect_env(self.home, self.api_url)
        if self.auth_file is not None:
            env["L1FLOW_PREFECT_AUTH_FILE"] = str(self.auth_file)
        env.update(extra)
        return env


def _wait_healthy(api_url: str, process: subprocess.Popen[bytes], log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prefect server exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"prefect server not healthy after {timeout} s:\n{log_path.read_text()[-3000:]}")


def stop_process(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 20) -> None:
    """Stop a process started in its own session, with everything it started."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def prefect_server_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """The session's server process (use `prefect_server` in tests: it also points the client at it)."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    log_path = home / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [PYTHON, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=prefect_env(home),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=home,
            start_new_session=True,
        )
    try:
        _wait_healthy(api_url, process, log_path, timeout=90)
        yield PrefectServer(api_url=api_url, home=home, process=process, log_path=log_path)
    finally:
        stop_process(process)


def postgres_bin_dir() -> Path:
    """The newest installed PostgreSQL's programs (Debian keeps them out of PATH)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if not found:
        pytest.fail("PostgreSQL is not installed: `apt-get install -y postgresql` (the Makefile's APT_PACKAGES)")
    return found[-1].parent


@dataclass
class PostgresCluster:
    url: str
    folder: Path
    port: int
    password: str


@contextmanager
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL cluster on a free 127.0.0.1 port with database and user ``prefect``.

    ``initdb`` refuses to run as root, so as root (CI) the cluster belongs to
    ``nobody``; the folder and the server are removed on exit whatever happened.
    """
    bin_dir = postgres_bin_dir()
    folder = Path(tempfile.mkdtemp(prefix="l1flow-pg-"))
    as_owner: list[str] = []
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(folder, nobody.pw_uid, nobody.pw_gid)
        as_owner = ["runuser", "-u", "nobody", "--"]
    password = secrets.token_hex(16)
    password_file = folder / "password"
    password_file.write_text(password + "\n")
    password_file.chmod(0o600)
    if as_owner:
        os.chown(password_file, nobody.pw_uid, nobody.pw_gid)
    data, port = folder / "data", free_port()

    def run(*command: str, env: dict[str, str] | None = None) -> None:
        subprocess.run(command, check=True, capture_output=True, cwd=folder, timeout=120, env=env)

    started = False
    try:
        run(*as_owner, str(bin_dir / "initdb"), "-D", str(data), "-U", "prefect", f"--pwfile={password_file}",
            "--auth=scram-sha-256", "-E", "UTF8", "--no-sync")
        # TCP on loopback only, no unix socket (no /var/run/postgresql needed), no fsync (a test database)
        options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories='' -c fsync=off"
        run(*as_owner, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(folder / "postgres.log"),
            "-o", options, "-w", "-t", "60", "start")
        started = True
        run(str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "prefect", "prefect",
            env={**os.environ, "PGPASSWORD": password})
        yield PostgresCluster(
            url=f"postgresql+asyncpg://prefect:{password}@127.0.0.1:{port}/prefect", folder=folder, port=port,
            password=password,
        )
    except subprocess.CalledProcessError as exc:
        log = folder / "postgres.log"
        raise RuntimeError(
            f"{exc.cmd} failed ({exc.returncode}): {exc.stderr.decode(errors='replace')}"
            + (log.read_text(errors="replace")[-2000:] if log.exists() else "")
        ) from exc
    finally:
        if started:
            subprocess.run([*as_owner, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "30",
                            "stop"], check=False, capture_output=True, cwd=folder, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


def write_credential(path: Path, credential: str) -> Path:
    """A credential file as the docs ask for: one line user:password, readable by its owner only."""
    path.write_text(credential + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture(scope="session")
def postgres_prefect_server_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """The production setup: `l1flow prefect-server` with API authentication on a PostgreSQL cluster."""
    home = tmp_path_factory.mktemp("prefect-home-postgres")
    auth_file = write_credential(home / "prefect-credential", f"l1flow:{secrets.token_hex(12)}")
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    log_path = home / "server.log"
    with postgres_cluster() as database:
        env = prefect_env(home)
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = database.url
        env["L1FLOW_PREFECT_AUTH_FILE"] = str(auth_file)
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                l1flow_command("prefect-server", "--host", "127.0.0.1", "--port", str(port)),
                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=home, start_new_session=True,
            )
        try:
            # migrations on a new PostgreSQL database take longer than SQLite's
            _wait_healthy(api_url, process, log_path, timeout=180)
            started_line = log_path.read_text().splitlines()[0]
            # the server really is on this cluster, with authentication, and printed no secret
            masked_url = f"postgresql+asyncpg://prefect:***@127.0.0.1:{database.port}/prefect"
            assert f"basic authentication (credential file {auth_file}), database {masked_url}" in started_line
            api_password = auth_file.read_text().strip().split(":", 1)[1]
            assert api_password not in log_path.read_text() and database.password not in started_line
            yield PrefectServer(api_url=api_url, home=home, process=process, log_path=log_path,
                                database="postgresql", auth_file=auth_file)
        finally:
            stop_process(process)


@pytest.fixture
def prefect_server(request: pytest.FixtureRequest) -> Iterator[PrefectServer]:
    """The session's server, with this test's own Prefect client calls going to it.

    Only for the test's duration: other tests of the session keep Prefect's
    ephemeral API (a session-wide setting would send them here too). A test
    parametrized with ``indirect=True`` picks the database: ``"sqlite"``
    (default) or ``"postgresql"`` (the authenticated production setup).
    """
    from prefect.settings import (
        PREFECT_API_AUTH_STRING,
        PREFECT_API_URL,
        temporary_settings,
    )

    database = getattr(request, "param", "sqlite")
    fixture = {"sqlite": "prefect_server_process", "postgresql": "postgres_prefect_server_process"}[database]
    server: PrefectServer = request.getfixturevalue(fixture)
    with temporary_settings({PREFECT_API_URL: server.api_url, PREFECT_API_AUTH_STRING: server.auth_string}):
        yield server


@dataclass
class Worker:
    pool: str
    process: subprocess.Popen[bytes]
    log_path: Path
    children: list[int] = field(default_factory=list)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def descendants(self) -> list[int]:
        """Every live process started by the worker, including flow runs in their own session."""
        parents: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
        found: list[int] = []
        frontier = [self.process.pid]
        while frontier:
            pid = frontier.pop()
            kids = [child for child, parent in parents.items() if parent == pid]
            found.extend(kids)
            frontier.extend(kids)
        return found

    def kill_hard(self) -> None:
        """SIGKILL the worker and every process under it, as a lost machine would."""
        victims = self.descendants()
        for pid in [self.process.pid, *victims]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=10)

    def stop(self) -> None:
        for pid in self.descendants():
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        # Prefect's worker takes over 20 s to wind down after SIGTERM; no test depends on that.
        stop_process(self.process, timeout=5)


def l1flow_command(*args: str) -> list[str]:
    """The `l1flow` service commands, run from this checkout's interpreter."""
    return [PYTHON, "-m", "l1flow", *args]


@pytest.fixture
def worker_factory(prefect_server: PrefectServer, tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Start `l1flow worker --pool NAME` subprocesses; all are stopped after the test."""
    workers: list[Worker] = []

    def start(pool: str, extra_env: dict[str, str] | None = None, name: str = "w") -> Worker:
        log_path = tmp_path / f"worker-{pool}-{name}-{len(workers)}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                l1flow_command("worker", "--pool", pool, "--name", f"{pool}-{name}-{len(workers)}"),
                env=prefect_server.env(**(extra_env or {})),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=tmp_path,
                start_new_session=True,
            )
        worker = Worker(pool=pool, process=process, log_path=log_path)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 1.0) -> object:
    """Poll ``predicate`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def counting_yosys(bin_dir: Path, count_file: Path, delay_s: float = 0.0) -> dict[str, str]:
    """A `yosys` first on PATH that records each call, then runs the real one."""
    from l1flow.toolchain import yosys_command

    real = yosys_command()[0]
    bin_dir.mkdir(parents=True, exist_ok=True)
    wrapper = bin_dir / "yosys"
    wrapper.write_text(f'#!/bin/sh\necho call >> "{count_file}"\nsleep {delay_s}\nexec "{real}" "$@"\n')
    wrapper.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def yosys_calls(count_file: Path) -> int:
    return len(count_file.read_text().splitlines()) if count_file.exists() else 0


def tiny_rtl_job(folder: Path, width: int) -> Path:
    """An adder-accumulator of ``width`` bits and its job file; returns the job file."""
    project = folder / "project"
    (project / "rtl").mkdir(parents=True)
    (project / "rtl" / "acc.v").write_text(
        f"""module acc(input clk, input [{width - 1}:0] a, input [{width - 1}:0] b, output reg [{width}:0] y);
  always @(posedge clk) y <= a + b;
endmodule
"""
    )
    job = SynthesisJob(
        project_dir=project,
        project_kind="rtl",
        tool="yosys",
        steps=("synth",),
        part="xcvu9p-flgb2104-2L-e",
        clock_period_ns=5.0,
        top="acc",
        rtl_files=(Path("rtl/acc.v"),),
        latency_cycles=1,
        memory_gb=1,
        timeout_s=300,
    )
    job_file = folder / "job.json"
    data = job.to_dict()
    data["project_dir"] = "project"  # relative to the job file
    job_file.write_text(json.dumps(data))
    return job_file


@flow(name="tiny_retrain")
def tiny_retrain(
    config_path: str,
    overrides: list[str] | None = None,
    workspace: str | None = None,
    trigger: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Stand-in for ``l1flow_pipeline`` (same parameters): record them, and submit the
    config's synthesis job to the pool as the pipeline's synthesis step would.

    The config is JSON: ``{"synthesis_job": <job file>, "store": <artifact store URL>}`` (both optional).
    """
    from l1flow.artifacts import ArtifactStore
    from l1flow.flows.synthesis_client import submit
    config = json.loads(Path(config_path).read_text())
    record: dict[str, Any] = {"config_path": config_path, "overrides": overrides, "trigger": trigger}
    if config.get("synthesis_job"):
        job_file = Path(config["synthesis_job"])
        job = SynthesisJob.load(job_file)
        job = job.model_copy(update={"project_dir": (job_file.parent / job.project_dir).resolve()})
        submission = submit(job, ArtifactStore(config["store"]))
        record["synthesis_flow_run_id"] = submission.flow_run_id
        record["synthesis_job_hash"] = submission.job_hash
    tag = (trigger or {}).get("tag", "none")
    first_run = ((trigger or {}).get("iov") or {}).get("first_run", 0)
    Path(config_path).with_name(f"retrained-{tag}-{first_run}.json").write_text(json.dumps(record))
    return record
