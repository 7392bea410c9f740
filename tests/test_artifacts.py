"""Content-addressed artifact store: digests, dedup, atomic publish, safe unpacking."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from l1flow.artifacts import ArtifactError, ArtifactStore
from l1flow.errors import BadInputError
from l1flow.fileio import folder_digest as tree_digest


def _project(root: Path) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "src" / "top.v").write_text("module top(input a, output b); assign b = ~a; endmodule\n")
    (root / "build.tcl").write_text("synth_design -top top\n")
    script = root / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    return root


def test_file_digest_is_sha256_and_round_trips(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    payload = b"0 1 2 3\n-4 5 6 7\n"
    source = tmp_path / "words.txt"
    source.write_bytes(payload)
    digest = store.put_file(source)
    assert digest == hashlib.sha256(payload).hexdigest()
    assert store.exists(digest)
    assert store.get_bytes(digest) == payload
    assert store.get_file(digest, tmp_path / "out" / "w.txt").read_bytes() == payload
    assert store.info(digest) == {"kind": "file", "size": len(payload)}


def test_tree_round_trip_keeps_content_and_exec_bit(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "store"))
    project = _project(tmp_path / "project")
    digest = store.put_tree(project)
    assert digest == tree_digest(project)
    out = store.get_tree(digest, tmp_path / "fetched")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "build.tcl",
        "run.sh",
        "src/top.v",
    ]
    assert (out / "src" / "top.v").read_text() == (project / "src" / "top.v").read_text()
    assert (out / "run.sh").stat().st_mode & 0o100
    assert not (out / "build.tcl").stat().st_mode & 0o100
    # no staging folders left next to the destination
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fetched", "project", "store"]


def test_tree_digest_depends_on_content_not_time_or_location(tmp_path: Path) -> None:
    first = _project(tmp_path / "a")
    second = _project(tmp_path / "elsewhere" / "b")
    (second / "build.tcl").touch()
    assert tree_digest(first) == tree_digest(second)
    (second / "src" / "top.v").write_text("module top(input a, output b); assign b = a; endmodule\n")
    assert tree_digest(first) != tree_digest(second)
    (first / "run.sh").chmod(0o644)
    assert tree_digest(first) != tree_digest(_project(tmp_path / "c"))


def test_same_content_is_stored_once(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    first = store.put_tree(_project(tmp_path / "a"))
    second = store.put_tree(_project(tmp_path / "b"))
    assert first == second
    objects = [p for p in (tmp_path / "store" / "objects").rglob("*") if p.is_file()]
    assert len(objects) == 2  # one archive + its done marker
    assert not any((tmp_path / "store" / "tmp").iterdir())


def test_object_without_done_marker_does_not_exist(tmp_path: Path) -> None:
    """A copy killed before its marker was written must never be read as complete."""
    store = ArtifactStore(tmp_path / "store")
    digest = store.put_bytes(b"complete result")
    marker = tmp_path / "store" / "objects" / digest[:2] / f"{digest}.done"
    marker.unlink()
    assert not store.exists(digest)
    with pytest.raises(ArtifactError, match="not in the store"):
        store.get_bytes(digest)
    with pytest.raises(ArtifactError, match="not .*fully.* stored"):
        store.set_ref("synthesis/job", digest)
    # putting it again completes the object
    assert store.put_bytes(b"complete result") == digest
    assert store.exists(digest)


def test_refs_point_at_complete_objects(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    assert store.get_ref("synthesis/abc") is None
    digest = store.put_bytes(b"report")
    store.set_ref("synthesis/abc", digest)
    assert store.get_ref("synthesis/abc") == digest
    other = store.put_bytes(b"report 2")
    store.set_ref("synthesis/abc", other)
    assert store.get_ref("synthesis/abc") == other
    for bad in ("../escape", "/abs", "a//b", ".hidden", "a/../b", ""):
        with pytest.raises(ArtifactError, match="not a valid ref name"):
            store.set_ref(bad, digest)


def test_corrupt_object_is_detected(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    project = _project(tmp_path / "project")
    digest = store.put_tree(project)
    archive = tmp_path / "store" / "objects" / digest[:2] / digest
    # rewrite the archive with one byte of one file flipped
    data = io.BytesIO()
    with tarfile.open(archive) as src, tarfile.open(fileobj=data, mode="w") as dst:
        for member in src.getmembers():
            content = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == "src/top.v":
                content = content.replace(b"~a", b"!a")
            dst.addfile(member, io.BytesIO(content))
    archive.write_bytes(data.getvalue())
    with pytest.raises(ArtifactError, match="corrupt"):
        store.get_tree(digest, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


@pytest.mark.parametrize(
    "member_name, kind",
    [("../evil.txt", tarfile.REGTYPE), ("/etc/evil", tarfile.REGTYPE), ("link", tarfile.SYMTYPE)],
)
def test_unsafe_archive_is_refused(tmp_path: Path, member_name: str, kind: bytes) -> None:
    store = ArtifactStore(tmp_path / "store")
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        info = tarfile.TarInfo(member_name)
        info.type = kind
        if kind == tarfile.SYMTYPE:
            info.linkname = "/etc/passwd"
            tar.addfile(info)
        else:
            info.size = 4
            tar.addfile(info, io.BytesIO(b"evil"))
    digest = "e" * 64
    obj = tmp_path / "store" / "objects" / "ee" / digest
    obj.parent.mkdir(parents=True)
    obj.write_bytes(data.getvalue())
    (obj.parent / f"{digest}.done").write_text(json.dumps({"kind": "tree", "size": 1, "manifest": []}))
    with pytest.raises(ArtifactError, match="refusing to unpack"):
        store.get_tree(digest, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "evil.txt").exists()


def test_inputs_that_cannot_be_stored_are_refused(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "store")
    with pytest.raises(BadInputError, match="is not a folder"):
        store.put_tree(tmp_path / "missing")
    with pytest.raises(ArtifactError, match="is not a file"):
        store.put_file(tmp_path)
    project = _project(tmp_path / "project")
    (project / "link.v").symlink_to(project / "src" / "top.v")
    with pytest.raises(BadInputError, match="link.v is not a regular file"):
        store.put_tree(project)
    with pytest.raises(ArtifactError, match="not a sha256 digest"):
        store.exists("abc")
    digest = store.put_bytes(b"x")
    (tmp_path / "taken").mkdir()
    with pytest.raises(ArtifactError, match="already exists"):
        store.get_tree(digest, tmp_path / "taken")
    with pytest.raises(ArtifactError, match="is a file"):
        store.get_tree(digest, tmp_path / "new")


def test_fsspec_memory_url(tmp_path: Path) -> None:
    """Any fsspec URL works: the in-memory filesystem stands in for s3:// or similar."""
    store = ArtifactStore("memory://l1flow-test-store")
    project = _project(tmp_path / "project")
    digest = store.put_tree(project)
    assert store.exists(digest)
    store.set_ref("synthesis/job-1", digest)
    out = store.get_tree(store.get_ref("synthesis/job-1") or "", tmp_path / "out")
    assert tree_digest(out) == digest


def _publish_many(root: str, project: str, rounds: int) -> list[str]:
    store = ArtifactStore(root)
    digests = []
    for i in range(rounds):
        digests.append(store.put_tree(project))
        result = store.put_bytes(f"result of round {i}".encode())
        store.set_ref("synthesis/same-job", result)
    return digests


def test_concurrent_publishers_do_not_clobber_each_other(tmp_path: Path) -> None:
    """Two runs publishing the same project and racing on one ref: every read sees a complete object."""
    from concurrent.futures import ProcessPoolExecutor

    project = _project(tmp_path / "project")
    root = str(tmp_path / "store")
    with ProcessPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(_publish_many, [root, root], [str(project)] * 2, [20, 20]))
    expected = tree_digest(project)
    assert all(digest == expected for run in results for digest in run)
    store = ArtifactStore(root)
    ref = store.get_ref("synthesis/same-job")
    assert ref is not None and store.get_bytes(ref).startswith(b"result of round ")
    assert tree_digest(store.get_tree(expected, tmp_path / "out")) == expected
    assert not any((tmp_path / "store" / "tmp").iterdir())  # no leftovers of the race
