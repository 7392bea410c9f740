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

from l1flow.fileio import MANIFEST_FILE, OWNER_FILE, boot_id, folder_content, process_start_time

log = logging.getLogger(__name__)



def owner_is_dead(folder: Path) -> bool:
    """True only when ``folder``'s owner is provably gone: same host, and another boot or no such process."""
    try:
        owner = json.loads((Path(folder) / OWNER_FILE).read_text())
        pid, start, host, boot = int(owner["pid"]), owner["start"], str(owner["host"]), str(owner["boot"])
    except (OSError, ValueError, KeyError, TypeError):
        return False  # no readable owner: not ours to judge
    if host != socket.gethostname():
        return False  # a process on another host of a shared workspace cannot be checked from here
    if boot and boot != boot_id():
        return True
    return process_start_time(pid) != start  # gone, or the pid was reused by a younger process


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


def entry_problem(folder: Path) -> str | None:
    """Why the cache entry ``folder`` cannot be trusted (no manifest, a file changed or missing), or None."""
    folder = Path(folder)
    try:
        recorded = json.loads((folder / MANIFEST_FILE).read_text())
    except FileNotFoundError:
        return f"it has no {MANIFEST_FILE} (written before entries carried their hash, or not finished)"
    except (OSError, ValueError) as exc:
        return f"its {MANIFEST_FILE} is unreadable ({exc})"
    actual = folder_content(folder)
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
