"""Issue 18, item 3: a run killed with `kill -9` leaves nothing behind.

The test kills a real `l1flow run` (tiny config) once its Prefect server is
listening and its run folder exists, then checks that every process it had
started is gone, that no port it listened on still accepts connections, and
that the next run removes the `.partial` folder and temporary builds (their
owner provably dead) while keeping those of a live process.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from l1flow.fileio import OWNER_FILE, mark_owner, owned_tempdir
from l1flow.pipeline.workspace import Workspace
from l1flow.recovery import owner_is_dead
from l1flow.runguard import descendants

REPO = Path(__file__).resolve().parents[1]
TINY = [
    "data.train_background=3000", "data.train_signal=300", "data.validation_background=1000",
    "data.validation_signal=100", "data.test_background=1000", "data.test_signal=100",
    "verify.emulation_events=2000", "models.0.epochs=1", "models.1.n_trees=5", "synthesis.runner=none",
]


def _listening_ports(pids: list[int]) -> set[int]:
    """TCP ports in LISTEN state held by any of ``pids`` (from /proc: socket inodes of their fds)."""
    inodes: set[str] = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_kill_9_of_a_run_leaves_no_process_port_or_partial_folder(tmp_path: Path) -> None:
    workspace = tmp_path / "work"
    args = [sys.executable, "-m", "l1flow", "run", str(REPO / "configs" / "default.yaml"),
            "--workspace", str(workspace)]
    for override in TINY:
        args += ["--set", override]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen: set[int] = set()
    ports: set[int] = set()
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and run.poll() is None:
            tree = descendants(run.pid)
            seen.update(tree)
            ports = _listening_ports(tree)
            partial = list((workspace / "runs").glob(".*.partial")) if (workspace / "runs").is_dir() else []
            if ports and partial:
                break
            time.sleep(0.5)
        assert run.poll() is None, "the run ended before its server was up"
        assert ports and partial, "the run's Prefect server never listened"
        seen.update(descendants(run.pid))
        run.send_signal(signal.SIGKILL)
        run.wait()
        gone_by = time.monotonic() + 30
        while time.monotonic() < gone_by and any(_alive(p) for p in seen):
            time.sleep(0.2)
    finally:
        for pid in seen:  # never leave the machine busy if the test fails
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    survivors = [p for p in seen if _alive(p)]
    assert survivors == [], f"processes outlived the killed run: {survivors}"
    for port in ports:
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still accepts connections"

    # The guard's SIGTERM lets the pipeline fail its run folder (<id>.failed); had it needed SIGKILL, the
    # .partial folder would remain, owned by a dead process, and the next run removes it.
    run_id = partial[0].name[1:].removesuffix(".partial")
    Workspace(workspace).remove_stale()
    left = sorted(p.name for p in (workspace / "runs").iterdir())
    assert left in ([], [f"{run_id}.failed"]), left
    assert not list((workspace / "cache").glob("*/.*")), "temporary builds were left in the cache"


def test_stale_temporaries_are_removed_only_when_their_owner_is_provably_dead(tmp_path: Path) -> None:
    # a run folder whose process ended without publishing it (as after kill -9)
    code = ("import os, sys; from pathlib import Path; from l1flow.pipeline.workspace import Workspace; "
            "Workspace(Path(sys.argv[1])).new_run('tiny', 'ab' * 32); os._exit(0)")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    (stale_run,) = (tmp_path / "runs").glob(".*.partial")
    assert owner_is_dead(stale_run)
    cache = tmp_path / "cache" / "rtl-builds"
    mine = owned_tempdir(".0123abcd.", cache)  # this test's own process: alive
    dead = cache / ".deadbeef.build"
    dead.mkdir()
    # a real process that has ended: its pid no longer has that start time
    child = subprocess.Popen([sys.executable, "-c", "import os, sys; sys.stdout.write(str(os.getpid()))"],
                             stdout=subprocess.PIPE, text=True)
    pid = int(child.communicate()[0])
    mark_owner(dead)
    record = json.loads((dead / OWNER_FILE).read_text())
    (dead / OWNER_FILE).write_text(json.dumps({**record, "pid": pid}))
    (dead / "obj_dir").mkdir()
    (dead / "obj_dir" / "Vtop.o").write_bytes(b"\0" * 64)
    other_host = cache / ".cafe.other-host"
    other_host.mkdir()
    (other_host / OWNER_FILE).write_text(json.dumps({**record, "pid": pid, "host": "synth-node-7"}))
    no_owner = cache / ".unknown"
    no_owner.mkdir()
    finished = cache / "0123abcd"
    finished.mkdir()

    assert Workspace(tmp_path).remove_stale() == [stale_run, dead]
    assert list((tmp_path / "runs").iterdir()) == []
    assert sorted(p.name for p in cache.iterdir()) == sorted([mine.name, ".cafe.other-host", ".unknown", "0123abcd"])
    assert not owner_is_dead(mine) and not owner_is_dead(other_host) and not owner_is_dead(no_owner)
