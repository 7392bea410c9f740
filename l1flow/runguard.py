"""`l1flow run` under a guard, so that a run killed with ``kill -9`` leaves no process behind.

A process killed with SIGKILL runs no code, so it cannot stop the Prefect
server it started or the simulators it is waiting for. Three processes
share the work instead:

- the ``l1flow run`` process the user started (and may kill) validates the
  config, starts the guard, and waits for it; it holds the write end of a
  pipe that only closes when it ends, however it ends;
- the guard (this module, in a session of its own) is a child subreaper
  (``PR_SET_CHILD_SUBREAPER``): every process the pipeline starts, even one
  that leaves the pipeline's session or process group (synthesis jobs do),
  stays its descendant. It starts the pipeline and, when the pipeline ends or
  the pipe closes (the ``l1flow run`` process died), ends every descendant:
  SIGTERM, a grace period, then SIGKILL;
- the pipeline itself (``l1flow run`` again, with :data:`GUARDED_ENV` set).

Ctrl-C and SIGTERM on the ``l1flow run`` process are passed on to the
pipeline, which then fails its run folder cleanly.
"""

from __future__ import annotations

import ctypes
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

#: set in the pipeline process the guard starts (so it does not start another guard)
GUARDED_ENV = "L1FLOW_RUN_GUARDED"
PR_SET_CHILD_SUBREAPER = 36
GRACE_SECONDS = 5.0


def run_guarded(argv: list[str]) -> int:
    """Run ``l1flow <argv>`` under a guard; return its exit code (128 + signal if it was killed)."""
    read_end, write_end = os.pipe()
    guard = subprocess.Popen(
        [sys.executable, "-m", "l1flow.runguard", str(read_end), *argv],
        pass_fds=[read_end],
        start_new_session=True,  # the terminal's Ctrl-C reaches this process only, which forwards it
        stdin=subprocess.DEVNULL,
    )
    os.close(read_end)

    def forward(signum: int, _frame: FrameType | None) -> None:
        guard.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    try:
        return _exit_code(guard.wait())
    finally:
        os.close(write_end)


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # ended meanwhile
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (from /proc), parents before children."""
    children = _children_map()
    found: list[int] = []
    pending = list(children.get(pid, []))
    while pending:
        child = pending.pop(0)
        found.append(child)
        pending += children.get(child, [])
    return found


def _reap() -> None:
    """Collect every ended child (orphans are re-parented to the guard, a subreaper)."""
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def end_descendants(grace: float = GRACE_SECONDS) -> None:
    """SIGTERM every descendant, wait up to ``grace`` seconds, then SIGKILL what is left, until none remain."""
    me = os.getpid()
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        for pid in descendants(me):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            _reap()
            if not descendants(me):
                return
            time.sleep(0.05)


def _guard(read_end: int, argv: list[str]) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print(f"l1flow: cannot supervise the run (prctl: {os.strerror(ctypes.get_errno())})", file=sys.stderr)
        return 1
    pipeline = subprocess.Popen(
        [sys.executable, "-m", "l1flow", *argv], env={**os.environ, GUARDED_ENV: "1"}, stdin=subprocess.DEVNULL
    )

    def forward(signum: int, _frame: FrameType | None) -> None:
        if pipeline.poll() is None:
            pipeline.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    watch = selectors.DefaultSelector()
    watch.register(read_end, selectors.EVENT_READ)
    returncode: int | None = None
    while returncode is None:
        if watch.select(timeout=0.2) and not os.read(read_end, 1):
            # the `l1flow run` process is gone (killed): nothing may outlive it
            end_descendants()
            return 128 + signal.SIGKILL
        returncode = pipeline.poll()
    end_descendants()  # a server or simulator the pipeline failed to stop
    return _exit_code(returncode)


if __name__ == "__main__":
    sys.exit(_guard(int(sys.argv[1]), sys.argv[2:]))
