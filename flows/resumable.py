"""Task options that make a pipeline flow resumable and safe to run twice at once.

Give every step task of a flow ``**resumable_task_options(state_dir)``:

- ``persist_result=True``: a finished step's return value is written to the
  result storage (Prefect's local storage, PREFECT_LOCAL_STORAGE_PATH, by
  default; pass the slug of a saved storage block, e.g.
  ``"remote-file-system/l1flow-results"``, when runs move between hosts) and
  survives the process that computed it;
- cache key = hash of the task's inputs and source (``INPUTS + TASK_SOURCE``,
  without the run id), stored under ``<state_dir>/cache-keys``: a new run, or
  a retry of a crashed one, with the same inputs reads the stored result
  instead of computing the step again;
- ``SERIALIZABLE`` isolation with locks under ``<state_dir>/locks``: two
  runs reaching the same step with the same inputs at once compute it once;
  the second waits for the lock and reads the first one's result. The locks
  are kernel ``flock`` locks (:class:`ProcessLockManager`), released by the
  kernel when the holding process dies: Prefect's own file locks stay behind
  after a crash and would block the resumed run for ever.

Inputs must name content, not places: pass a config's content hash or a
digest from the artifact store, not a path whose file may change, or an
edited file would be taken for the old one.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import time
from pathlib import Path
from typing import Any

from prefect.cache_policies import INPUTS, TASK_SOURCE, CachePolicy
from prefect.locking.protocol import LockManager

_POLL_S = 0.1


class ProcessLockManager(LockManager):
    """Record locks held with ``flock`` on files under one folder (one host).

    A lock lives as long as the open file descriptor of the process holding
    it, so a killed process never leaves a stale lock.
    """

    def __init__(self, lock_files_directory: Path) -> None:
        self.lock_files_directory = Path(lock_files_directory).expanduser().resolve()
        self._held: dict[str, tuple[str, int]] = {}

    def _path(self, key: str) -> Path:
        self.lock_files_directory.mkdir(parents=True, exist_ok=True)
        return self.lock_files_directory / f"{key}.lock"

    def _try_lock(self, key: str) -> int | None:
        fd = os.open(self._path(key), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    def acquire_lock(
        self, key: str, holder: str, acquire_timeout: float | None = None, hold_timeout: float | None = None
    ) -> bool:
        # hold_timeout is not needed: the kernel frees the lock of a dead holder
        if self.is_lock_holder(key, holder):
            return True
        deadline = None if acquire_timeout is None else time.monotonic() + acquire_timeout
        while True:
            fd = self._try_lock(key)
            if fd is not None:
                self._held[key] = (holder, fd)
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_S)

    async def aacquire_lock(
        self, key: str, holder: str, acquire_timeout: float | None = None, hold_timeout: float | None = None
    ) -> bool:
        deadline = None if acquire_timeout is None else time.monotonic() + acquire_timeout
        while True:
            if self.acquire_lock(key, holder, acquire_timeout=0):
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            await asyncio.sleep(_POLL_S)

    def release_lock(self, key: str, holder: str) -> None:
        held = self._held.get(key)
        if held is None or held[0] != holder:
            raise ValueError(f"cannot release lock for {key}: it is not held by {holder}")
        fcntl.flock(held[1], fcntl.LOCK_UN)
        os.close(held[1])
        del self._held[key]

    def is_locked(self, key: str) -> bool:
        if key in self._held:
            return True
        fd = self._try_lock(key)
        if fd is None:
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        return False

    def is_lock_holder(self, key: str, holder: str) -> bool:
        held = self._held.get(key)
        return held is not None and held[0] == holder

    def wait_for_lock(self, key: str, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.is_locked(key):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_S)
        return True

    async def await_for_lock(self, key: str, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.is_locked(key):
            if deadline is not None and time.monotonic() >= deadline:
                return False
            await asyncio.sleep(_POLL_S)
        return True


def resumable_cache_policy(state_dir: str | Path) -> CachePolicy:
    """Cache by inputs and task source, keys and locks kept under ``state_dir``."""
    root = Path(state_dir).resolve()
    return (INPUTS + TASK_SOURCE).configure(
        key_storage=str(root / "cache-keys"),
        lock_manager=ProcessLockManager(root / "locks"),
        isolation_level="SERIALIZABLE",
    )


def resumable_task_options(state_dir: str | Path, result_storage: str | None = None) -> dict[str, Any]:
    """Keyword arguments for ``@task(...)`` of a resumable pipeline step.

    ``result_storage``: slug of a saved Prefect storage block; None keeps
    Prefect's local result storage.
    """
    options: dict[str, Any] = {"cache_policy": resumable_cache_policy(state_dir), "persist_result": True}
    if result_storage is not None:
        options["result_storage"] = result_storage
    return options
