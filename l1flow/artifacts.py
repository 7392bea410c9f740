"""Content-addressed artifact store shared by the pipeline and the synthesis hosts.

Every object is named by the sha256 of what it holds, so the same bytes are
stored once, a worker on another machine fetches exactly what was submitted,
and an unchanged input finds its earlier result.

Layout under the root (a local folder or any fsspec URL, e.g. ``s3://bucket/l1flow``)::

    objects/ab/<digest>          a file, or a folder packed as a tar archive
    objects/ab/<digest>.done     JSON marker: kind, size, manifest of a folder
    refs/<namespace>/<name>      JSON {"digest": ...}: a name -> object link
    tmp/<uuid>                   uploads in flight

Publishing is atomic as seen by readers: bytes go under ``tmp/``, are moved to
their final key, and only then is the ``.done`` marker written (itself via
``tmp/`` and a move). An object without its marker does not exist, so an upload
killed half way never looks complete. A ref is written only after the object it
names is complete.

The digest of a file is the sha256 of its bytes. The digest of a folder is the
sha256 of its manifest (sorted relative paths, executable bit and file
digests), so it does not depend on timestamps, owners or the tar format.
"""

from __future__ import annotations

import json
import re
import tarfile
import tempfile
import uuid
from pathlib import Path, PurePosixPath
from typing import Literal

import fsspec

from l1flow.errors import BadInputError
from l1flow.fileio import (
    atomic_folder,
    atomic_path,
    folder_digest,
    folder_manifest,
    manifest_digest,
    sha256_bytes,
    sha256_file,
)

_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_REF_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*$")


class ArtifactError(BadInputError):
    """An object is missing, corrupt or unsafe to unpack."""


def _check_digest(digest: str) -> str:
    if not _DIGEST.match(digest):
        raise ArtifactError(f"'{digest}' is not a sha256 digest (64 lowercase hex characters)")
    return digest


def _check_ref_name(name: str) -> str:
    if not _REF_NAME.match(name):
        raise ArtifactError(
            f"'{name}' is not a valid ref name: use letters, digits, '.', '_', '-' in "
            "'/'-separated parts, none starting with '.' (e.g. 'synthesis/<job hash>')"
        )
    return name


class ArtifactStore:
    """Content-addressed store on a local folder or any fsspec URL."""

    def __init__(self, root_url: str | Path, **storage_options: object) -> None:
        self.root_url = str(root_url)
        self.fs, root = fsspec.core.url_to_fs(self.root_url, **storage_options)
        self.root = root.rstrip("/")

    def __repr__(self) -> str:
        return f"ArtifactStore({self.root_url!r})"

    # keys ------------------------------------------------------------------

    def _key(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def _object_key(self, digest: str) -> str:
        return self._key("objects", digest[:2], digest)

    def _marker_key(self, digest: str) -> str:
        return self._object_key(digest) + ".done"

    def _tmp_key(self) -> str:
        return self._key("tmp", uuid.uuid4().hex)

    def _publish_bytes(self, data: bytes, key: str) -> None:
        """Write ``data`` under ``key`` so it appears whole or not at all."""
        tmp = self._tmp_key()
        self.fs.makedirs(self._key("tmp"), exist_ok=True)
        self.fs.pipe_file(tmp, data)
        self._move_into_place(tmp, key)

    def _move_into_place(self, tmp: str, key: str) -> None:
        self.fs.makedirs(key.rsplit("/", 1)[0], exist_ok=True)
        self.fs.mv(tmp, key)

    # objects ---------------------------------------------------------------

    def exists(self, digest: str) -> bool:
        """True only for a completely published object."""
        return bool(self.fs.exists(self._marker_key(_check_digest(digest))))

    def info(self, digest: str) -> dict[str, object]:
        """The ``done`` marker of an object: kind, size and (for a folder) its manifest."""
        if not self.exists(digest):
            raise ArtifactError(f"object {digest} is not in the store {self.root_url}")
        return json.loads(self.fs.cat_file(self._marker_key(digest)))

    def _publish_object(self, local_file: Path, digest: str, marker: dict[str, object]) -> None:
        if self.exists(digest):
            return  # same content already stored: nothing to do
        tmp = self._tmp_key()
        self.fs.makedirs(self._key("tmp"), exist_ok=True)
        self.fs.put_file(str(local_file), tmp)
        self._move_into_place(tmp, self._object_key(digest))
        self._publish_bytes(json.dumps(marker, sort_keys=True).encode(), self._marker_key(digest))

    def put_bytes(self, data: bytes) -> str:
        """Store bytes; return their digest."""
        digest = sha256_bytes(data)
        if self.exists(digest):
            return digest
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "blob"
            path.write_bytes(data)
            self._publish_object(path, digest, {"kind": "file", "size": len(data)})
        return digest

    def put_file(self, path: str | Path) -> str:
        """Store one file; return the sha256 of its bytes."""
        path = Path(path)
        if not path.is_file():
            raise ArtifactError(f"{path} is not a file; put_file needs a file (use put_tree for a folder)")
        digest = sha256_file(path)
        self._publish_object(path, digest, {"kind": "file", "size": path.stat().st_size})
        return digest

    def put_tree(self, root: str | Path) -> str:
        """Store a folder (packed as tar); return the digest of its manifest."""
        root = Path(root)
        entries = folder_manifest(root)
        digest = manifest_digest(entries)
        if self.exists(digest):
            return digest
        with tempfile.TemporaryDirectory() as tmp:
            archive = Path(tmp) / "tree.tar"
            with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
                for entry in entries:
                    info = tarfile.TarInfo(entry.path)
                    info.size = entry.size
                    info.mode = 0o755 if entry.executable else 0o644
                    info.mtime = 0
                    with open(root / entry.path, "rb") as handle:
                        tar.addfile(info, handle)
            marker = {
                "kind": "tree",
                "size": archive.stat().st_size,
                "manifest": [entry.__dict__ for entry in entries],
            }
            self._publish_object(archive, digest, marker)
        return digest

    def get_bytes(self, digest: str) -> bytes:
        """Bytes of a stored file, checked against its digest."""
        marker = self.info(digest)
        if marker["kind"] != "file":
            raise ArtifactError(f"object {digest} is a folder; fetch it with get_tree")
        data = self.fs.cat_file(self._object_key(digest))
        if sha256_bytes(data) != digest:
            raise ArtifactError(f"object {digest} in {self.root_url} is corrupt (content does not match its digest)")
        return data

    def get_file(self, digest: str, dest: str | Path) -> Path:
        """Write a stored file to ``dest`` (atomically); return ``dest``."""
        dest = Path(dest)
        if self.info(digest)["kind"] != "file":
            raise ArtifactError(f"object {digest} is a folder; fetch it with get_tree")
        with atomic_path(dest, suffix=".part") as tmp:
            self.fs.get_file(self._object_key(digest), str(tmp))
            if sha256_file(tmp) != digest:
                raise ArtifactError(f"object {digest} in {self.root_url} is corrupt (content does not match its digest)")
        return dest

    def get_tree(self, digest: str, dest: str | Path) -> Path:
        """Unpack a stored folder into ``dest`` (which must not exist yet); return ``dest``.

        The archive is unpacked next to ``dest`` under a temporary name, every
        member is checked (regular files only, no absolute paths, no ``..``),
        the result is re-hashed against ``digest`` and only then renamed to
        ``dest``: a failure leaves nothing at ``dest``.
        """
        dest = Path(dest)
        if dest.exists():
            raise ArtifactError(f"{dest} already exists; get_tree unpacks into a new folder")
        marker = self.info(digest)
        if marker["kind"] != "tree":
            raise ArtifactError(f"object {digest} is a file; fetch it with get_file")
        with atomic_folder(dest) as staging:
            # streamed member by member: a multi-GB project never sits in memory
            with self.fs.open(self._object_key(digest), "rb") as handle, tarfile.open(
                fileobj=handle, mode="r|"
            ) as tar:
                for member in tar:
                    _check_member(member, digest)
                    tar.extract(member, staging, filter="data")
            if folder_digest(staging) != digest:
                raise ArtifactError(
                    f"object {digest} in {self.root_url} is corrupt (unpacked files do not match its digest)"
                )
        return dest

    # refs ------------------------------------------------------------------

    def set_ref(self, name: str, digest: str) -> None:
        """Point ``name`` at a complete object (e.g. a job hash at its result)."""
        _check_ref_name(name)
        if not self.exists(digest):
            raise ArtifactError(f"cannot point ref '{name}' at {digest}: that object is not (fully) stored")
        self._publish_bytes(json.dumps({"digest": digest}).encode(), self._key("refs", name))

    def get_ref(self, name: str) -> str | None:
        """Digest a ref points at, or None if the ref was never set."""
        key = self._key("refs", _check_ref_name(name))
        if not self.fs.exists(key):
            return None
        digest = json.loads(self.fs.cat_file(key))["digest"]
        return _check_digest(digest)

    def kind(self, digest: str) -> Literal["file", "tree"]:
        """Whether a stored object is a file or a folder."""
        return self.info(digest)["kind"]  # type: ignore[return-value]


def _check_member(member: tarfile.TarInfo, digest: str) -> None:
    """Refuse archive members that could write outside the destination."""
    path = PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts or not member.name:
        raise ArtifactError(f"object {digest} holds an unsafe path '{member.name}'; refusing to unpack it")
    if not (member.isfile() or member.isdir()):
        raise ArtifactError(f"object {digest} holds '{member.name}', which is not a regular file; refusing to unpack it")
