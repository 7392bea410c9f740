"""Crash recovery: temporary folders that say who owns them, and cache entries that carry their hash.

A run killed with ``kill -9`` cannot clean up after itself. So every
temporary folder a run creates in the workspace (the ``.<id>.partial`` run
folder, a cache entry being built, a Verilator build) holds an owner file
naming the process (pid, its start time, the host and the boot): the next run
removes the folders whose owner is provably gone, and leaves the others
alone (a run still working, or one on another host of a shared workspace).

Every finished cache entry holds a manifest of its files' sha256; it is
checked each time the entry is used. An entry that was truncated or swapped
after it was written is removed with a warning naming it, and rebuilt.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import tempfile
from pathlib import Path

from l1flow.fileio import sha256_file

log = logging.getLogger(__name__)

OWNER_FILE = ".l1flow-owner.json"
MANIFEST_FILE = ".l1flow-content.json"


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22), or None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after its closing one
    return stat.rsplit(")", 1)[1].split()[19]


def _owner_record() -> dict[str, object]:
    pid = os.getpid()
    return {"pid": pid, "start": _start_time(pid), "host": socket.gethostname(), "boot": _boot_id()}


def mark_owner(folder: Path) -> None:
    """Record in ``folder`` that this process owns it (until :func:`release` or the process ends)."""
    (Path(folder) / OWNER_FILE).write_text(json.dumps(_owner_record()) + "\n")


def release(folder: Path) -> None:
    """Drop ``folder``'s owner file (it is finished, or renamed to its final name)."""
    (Path(folder) / OWNER_FILE).unlink(missing_ok=True)


def owned_tempdir(prefix: str, parent: Path, suffix: str = "") -> Path:
    """A new temporary folder in ``parent`` marked as owned by this process."""
    parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=parent))
    mark_owner(folder)
    return folder


def owner_is_dead(folder: Path) -> bool:
    """True only when ``folder``'s owner is provably gone: same host, and another boot or no such process."""
    try:
        owner = json.loads((Path(folder) / OWNER_FILE).read_text())
        pid, start, host, boot = int(owner["pid"]), owner["start"], str(owner["host"]), str(owner["boot"])
    except (OSError, ValueError, KeyError, TypeError):
        return False  # no readable owner: not ours to judge
    if host != socket.gethostname():
        return False  # a process on another host of a shared workspace cannot be checked from here
    if boot and boot != _boot_id():
        return True
    return _start_time(pid) != start  # gone, or the pid was reused by a younger process


def remove_dead_temporaries(parent: Path) -> list[Path]:
    """Remove the hidden folders directly in ``parent`` whose owner is provably dead; return them."""
    removed: list[Path] = []
    if not Path(parent).is_dir():
        return removed
    for child in sorted(Path(parent).iterdir()):
        if child.name.startswith(".") and child.is_dir() and owner_is_dead(child):
            log.warning("removing %s: left behind by a run that ended without cleaning up (its process is gone)",
                        child)
            shutil.rmtree(child, ignore_errors=True)
            removed.append(child)
    return removed


def _content(folder: Path) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): sha256_file(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name not in (OWNER_FILE, MANIFEST_FILE)
    }


def seal(folder: Path) -> None:
    """Write the manifest of ``folder``'s files (relative path -> sha256), checked by :func:`entry_problem`."""
    (Path(folder) / MANIFEST_FILE).write_text(json.dumps(_content(Path(folder)), indent=1, sort_keys=True) + "\n")


def entry_problem(folder: Path) -> str | None:
    """Why the cache entry ``folder`` cannot be trusted (no manifest, a file changed or missing), or None."""
    folder = Path(folder)
    try:
        recorded = json.loads((folder / MANIFEST_FILE).read_text())
    except FileNotFoundError:
        return f"it has no {MANIFEST_FILE} (written before entries carried their hash, or not finished)"
    except (OSError, ValueError) as exc:
        return f"its {MANIFEST_FILE} is unreadable ({exc})"
    actual = _content(folder)
    changed = sorted(name for name in recorded if actual.get(name) != recorded[name])
    extra = sorted(set(actual) - set(recorded))
    if changed or extra:
        parts = [f"{name} {'is missing' if name not in actual else 'does not match its recorded sha256'}"
                 for name in changed] + [f"{name} was added" for name in extra]
        return "; ".join(parts)
    return None


def usable_entry(folder: Path, what: str) -> bool:
    """True if the cache entry ``folder`` exists and matches its manifest.

    A damaged entry is removed with a warning naming it, and False returned,
    so the caller rebuilds it.
    """
    folder = Path(folder)
    if not folder.exists():
        return False
    problem = entry_problem(folder)
    if problem is None:
        return True
    log.warning("cached %s %s is damaged (%s); removing it and building it again", what, folder, problem)
    retired = Path(tempfile.mkdtemp(prefix=f".{folder.name}.bad.", dir=folder.parent))
    try:
        os.replace(folder, retired / folder.name)
    except OSError:  # removed or replaced by a concurrent run meanwhile
        pass
    shutil.rmtree(retired, ignore_errors=True)
    return False
