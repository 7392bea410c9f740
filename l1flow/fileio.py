"""Content hashes and atomic writes: the one place l1flow does either.

Every file a later step reads is written whole or not at all: into a temporary
sibling first, then renamed over the target (``os.replace`` is atomic within one
file system), so a crash or a concurrent reader never sees half a file.

A folder's digest is the sha256 of its manifest (relative path, executable bit
and sha256 of every regular file): the one folder-hash scheme, shared by the
artifact store, the dataset cache keys and anything else that hashes a folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from l1flow.errors import BadInputError

_CHUNK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    """sha256 hex digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """sha256 hex digest of a file's bytes, read in 1 MiB chunks."""
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            sha.update(chunk)
    return sha.hexdigest()


def json_default(value: Any) -> Any:
    """JSON form of what ``json`` cannot write itself: numpy scalars and arrays as numbers, anything else as text."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def stable_json(value: Any) -> str:
    """Canonical JSON text (sorted keys, no spaces) for hashing a value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=json_default)


def sha256_json(value: Any) -> str:
    """sha256 of ``value``'s canonical JSON text."""
    return sha256_bytes(stable_json(value).encode())


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary sibling path of ``path`` for a tool to write; rename it over ``path`` on success.

    For writers that take a file name, not a handle (h5py, matplotlib, a
    compiler's ``-o``). ``suffix`` keeps the extension a writer may insist on.
    On any exception the temporary file is removed and ``path`` is untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp makes the file private; the result should read like any other file
        os.chmod(tmp, stat.S_IMODE(os.stat(tmp).st_mode) | 0o644)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "w", **open_kwargs: Any) -> Iterator[Any]:
    """Open a temporary sibling of ``path`` for writing; rename it over ``path`` on success.

    On any exception the temporary file is removed and ``path`` is untouched.
    """
    with atomic_path(path) as tmp, open(tmp, mode, **open_kwargs) as handle:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically; return the path."""
    with atomic_file(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return Path(path)


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; return the path."""
    with atomic_file(path, "wb") as handle:
        handle.write(data)
    return Path(path)


def write_json_atomic(path: str | Path, value: Any, indent: int | None = 2) -> Path:
    """Write ``value`` as JSON to ``path`` atomically; return the path."""
    return write_text_atomic(path, json.dumps(value, indent=indent, sort_keys=True, default=json_default) + "\n")


# Every temporary folder names its owner (pid, process start time, host, boot id), so a
# later run can remove the ones left by a process that was killed (l1flow.recovery).
OWNER_FILE = ".l1flow-owner.json"
# A sealed folder (a cache entry) lists its files' sha256, checked on every use (l1flow.recovery).
MANIFEST_FILE = ".l1flow-content.json"


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def process_start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22), or None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after its closing one
    return stat.rsplit(")", 1)[1].split()[19]


def _owner_record() -> dict[str, object]:
    pid = os.getpid()
    return {"pid": pid, "start": process_start_time(pid), "host": socket.gethostname(), "boot": boot_id()}


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


def folder_content(folder: Path) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): sha256_file(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name not in (OWNER_FILE, MANIFEST_FILE)
    }


def seal(folder: Path) -> None:
    """Write the manifest of ``folder``'s files (relative path -> sha256), checked by :func:`entry_problem`."""
    (Path(folder) / MANIFEST_FILE).write_text(json.dumps(folder_content(Path(folder)), indent=1, sort_keys=True) + "\n")


@contextlib.contextmanager
def atomic_folder(path: str | Path, replace: bool = True, sealed: bool = False) -> Iterator[Path]:
    """Yield an empty staging folder beside ``path``; rename it to ``path`` on success.

    The staging folder names its owner (:data:`OWNER_FILE`) while it is built,
    so one left by a killed process can be removed later. An existing ``path``
    is replaced only once the new content is complete. With ``replace=False``
    (a content-addressed cache entry) an existing ``path`` is kept and the
    staging folder dropped: two processes building the same entry both succeed
    and one result stays. ``sealed`` writes the manifest of the files' sha256
    (:data:`MANIFEST_FILE`) before the rename. On any exception the staging
    folder is removed and ``path`` is untouched.
    """
    target = Path(path)
    staging = owned_tempdir(f".{target.name}.", target.parent, suffix=".partial")
    try:
        yield staging
        release(staging)
        if sealed:
            seal(staging)
        if not replace:
            try:
                os.rename(staging, target)
            except OSError:
                if not target.exists():
                    raise
                shutil.rmtree(staging, ignore_errors=True)
        elif target.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
            os.replace(target, retired / target.name)
            os.replace(staging, target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


@dataclass(frozen=True)
class ManifestEntry:
    """One file of a folder: relative POSIX path, executable bit and content digest."""

    path: str
    executable: bool
    digest: str
    size: int


def folder_manifest(root: str | Path) -> list[ManifestEntry]:
    """Manifest of every regular file under ``root``, sorted by path.

    Symbolic links and special files are refused: they would make the content
    depend on the machine that hashes it. The owner file of a folder being
    built (:func:`atomic_folder`) is not content and is left out.
    """
    root = Path(root)
    if not root.is_dir():
        raise BadInputError(f"{root} is not a folder; a folder digest needs a folder")
    entries: list[ManifestEntry] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in dirnames:
            if (Path(dirpath) / name).is_symlink():
                raise BadInputError(f"{Path(dirpath) / name} is a symbolic link; copy the target in instead")
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if name == OWNER_FILE and path.parent == root:
                continue
            mode = path.lstat().st_mode
            if not stat.S_ISREG(mode):
                raise BadInputError(f"{path} is not a regular file (link or special file); it cannot be hashed")
            entries.append(
                ManifestEntry(
                    path=path.relative_to(root).as_posix(),
                    executable=bool(mode & stat.S_IXUSR),
                    digest=sha256_file(path),
                    size=path.lstat().st_size,
                )
            )
    entries.sort(key=lambda entry: entry.path)
    return entries


def manifest_digest(entries: list[ManifestEntry]) -> str:
    """Digest of a folder: sha256 of its canonical manifest text."""
    sha = hashlib.sha256()
    for entry in entries:
        sha.update(f"{entry.path}\0{int(entry.executable)}\0{entry.digest}\n".encode())
    return sha.hexdigest()


def folder_digest(root: str | Path) -> str:
    """The digest of a folder's files (see ``folder_manifest``)."""
    return manifest_digest(folder_manifest(root))
