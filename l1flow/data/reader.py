"""One entry point for event files: ``read_events`` picks the reader by content.

- HDF5 (challenge layout, see :mod:`l1flow.data.hdf5`),
- ROOT through a branch mapping (see :mod:`l1flow.data.root`),
- l1flow's own ``.npz`` event samples (:meth:`EventSample.save`).

The type is recognised by the file's first bytes, not its name, so a
mis-named file still reads (or fails with a message saying what it is).
"""

from __future__ import annotations

from pathlib import Path

from l1flow.data.hdf5 import read_hdf5
from l1flow.data.root import RootMapping, RootReadError, read_root, shipped_mapping
from l1flow.data.sample import EventSample
from l1flow.errors import BadInputError

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_ROOT_MAGIC = b"root"
_ZIP_MAGIC = b"PK\x03\x04"


class UnknownFileTypeError(BadInputError):
    """A file is none of the event formats l1flow reads."""


def file_kind(path: str | Path) -> str:
    """"hdf5", "root" or "npz", from the file's first bytes."""
    path = Path(path)
    if not path.is_file():
        raise UnknownFileTypeError(f"{path}: no such file")
    with open(path, "rb") as handle:
        head = handle.read(8)
    if not head:
        raise UnknownFileTypeError(f"{path}: the file is empty")
    if head.startswith(_HDF5_MAGIC):
        return "hdf5"
    if head.startswith(_ROOT_MAGIC):
        return "root"
    if head.startswith(_ZIP_MAGIC):
        return "npz"
    raise UnknownFileTypeError(
        f"{path}: not an HDF5, ROOT or l1flow .npz event file (first bytes {head!r}); "
        "convert it to the challenge HDF5 layout or give a ROOT file with a mapping"
    )


def resolve_mapping(mapping: RootMapping | str | Path) -> RootMapping:
    """A RootMapping from itself, a YAML path, or the name of a shipped mapping ("uproot_hzz")."""
    if isinstance(mapping, RootMapping):
        return mapping
    candidate = Path(mapping)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        return RootMapping.from_yaml(candidate)
    return RootMapping.from_yaml(shipped_mapping(str(mapping)))


def read_events(path: str | Path, mapping: RootMapping | str | Path | None = None) -> EventSample:
    """Read an event file of any supported type into an EventSample.

    ``mapping`` is needed for ROOT files only: a RootMapping, a YAML file or a
    shipped mapping's name.
    """
    kind = file_kind(path)
    if kind == "hdf5":
        return read_hdf5(path)
    if kind == "npz":
        return EventSample.load(path)
    if mapping is None:
        raise RootReadError(
            f"{path}: a ROOT file needs a branch mapping (a YAML file, or a shipped one such as 'uproot_hzz')"
        )
    return read_root(path, resolve_mapping(mapping))
