"""Firmware bundle: one reproducible tar.gz per model version, and safe extraction.

A bundle holds everything a synthesis or board team needs for one version:
the HLS project, RTL, test vectors and reports, each under the name it has in
the model's ``artifacts`` block of summary.json (``firmware/...``,
``vectors/...``). The archive is reproducible (sorted members, fixed times and
owners, gzip without a timestamp), so the same files give the same bytes and the
same sha256.

Archives coming back are extracted only after every member is checked: no
absolute names, no ``..``, no links, no device files or FIFOs. Extraction goes
to a temporary folder next to the destination and is renamed into place, so a
rejected archive leaves nothing behind.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from l1flow.errors import BadInputError
from l1flow.fileio import atomic_folder, atomic_path, sha256_file

BUNDLE_FILE = "firmware_bundle.tar.gz"
# Fixed member time (2000-01-01) so bundles are reproducible.
_MEMBER_MTIME = 946684800


class BundleError(BadInputError):
    """A bundle could not be built or an archive is unsafe to extract."""


@dataclass(frozen=True)
class BundleInfo:
    """A written bundle: where it is, its sha256, and what went in."""

    path: Path
    sha256: str
    members: tuple[str, ...]
    total_bytes: int


def _regular_files(root: Path, top: Path) -> list[Path]:
    """Every file under `top` (or `top` itself), symlinks resolved inside `root` only."""
    resolved_root = root.resolve()
    found: list[Path] = []
    candidates = [top] if not top.is_dir() else sorted(p for p in top.rglob("*"))
    for path in candidates:
        if path.is_symlink():
            target = path.resolve()
            if not target.is_relative_to(resolved_root):
                raise BundleError(
                    f"{path} is a symbolic link to {target}, outside the run folder {root}; "
                    "copy the file into the run folder instead of linking to it"
                )
        if path.is_file():
            found.append(path)
    return found


def write_bundle(run_dir: Path, entries: dict[str, str], dest: Path) -> BundleInfo:
    """Pack run-folder paths into one reproducible tar.gz at `dest`.

    `entries` maps a name in the archive (e.g. ``"firmware"``) to a path
    relative to `run_dir` (e.g. ``"firmware/ae"``); each may be a file or a
    folder. A missing path is an error naming the entry.
    """
    run_dir = Path(run_dir)
    if not entries:
        raise BundleError(f"nothing to bundle: the model names no artifacts in {run_dir / 'summary.json'}")
    files: list[tuple[str, Path]] = []
    for name in sorted(entries):
        relative = entries[name]
        source = run_dir / relative
        if PurePosixPath(relative).is_absolute() or ".." in PurePosixPath(relative).parts:
            raise BundleError(f"artifact '{name}' path {relative!r} must be relative and inside {run_dir}")
        if not source.exists():
            raise BundleError(
                f"artifact '{name}' points to {source}, which does not exist; "
                f"fix the 'artifacts' block of {run_dir / 'summary.json'} or rerun the step that writes it"
            )
        for path in _regular_files(run_dir, source):
            inner = path.relative_to(source).as_posix() if source.is_dir() else path.name
            files.append((f"{name}/{inner}", path))
    total = 0
    with atomic_path(dest, suffix=".tar.gz") as temporary:
        with open(temporary, "wb") as raw, gzip.GzipFile(
            filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6
        ) as zipped, tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as archive:
            for arcname, path in files:
                data = path.read_bytes()
                info = tarfile.TarInfo(arcname)
                info.size = len(data)
                info.mtime = _MEMBER_MTIME
                info.mode = 0o755 if os.access(path, os.X_OK) else 0o644
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                archive.addfile(info, io.BytesIO(data))
                total += len(data)
    return BundleInfo(path=dest, sha256=sha256_file(dest), members=tuple(n for n, _ in files), total_bytes=total)


def _check_member(member: tarfile.TarInfo, archive: Path) -> None:
    name = member.name
    pure = PurePosixPath(name)
    where = f"archive {archive} member {name!r}"
    if pure.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise BundleError(f"{where} has an absolute path; refusing to extract")
    if ".." in pure.parts or "\\" in name:
        raise BundleError(f"{where} would escape the destination folder; refusing to extract")
    if member.issym() or member.islnk():
        raise BundleError(f"{where} is a link (to {member.linkname!r}); bundles hold only files and folders")
    if not (member.isfile() or member.isdir()):
        raise BundleError(f"{where} is a device file, FIFO or other special file; refusing to extract")


def safe_extract(archive: Path, dest: Path) -> list[str]:
    """Extract `archive` into the new folder `dest` after checking every member.

    Returns the extracted file names. Raises BundleError (and leaves `dest`
    absent) if any member is unsafe or `dest` already exists.
    """
    archive = Path(archive)
    dest = Path(dest)
    if dest.exists():
        raise BundleError(f"{dest} already exists; choose an empty destination or remove it first")
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            members = tar.getmembers()
            for member in members:
                _check_member(member, archive)
            with atomic_folder(dest) as staging:
                # The "data" filter re-checks what we checked, as a second line of defence.
                tar.extractall(staging, members=members, filter="data")
    except tarfile.TarError as error:
        raise BundleError(f"{archive} is not a readable tar archive: {error}") from error
    return [m.name for m in members if m.isfile()]
