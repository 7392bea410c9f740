"""Atomic writes leave the old content or the new, never half; hashes are stable."""

from __future__ import annotations

from pathlib import Path

import pytest

from l1flow.errors import BadInputError, L1flowError, VerificationFailed
from l1flow.fileio import atomic_file, atomic_folder, sha256_bytes, sha256_file, sha256_json, write_json_atomic


def test_atomic_file_keeps_old_content_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_file(target) as handle:
            handle.write("half of the new")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]


def test_atomic_folder_replaces_whole_or_not_at_all(tmp_path: Path) -> None:
    target = tmp_path / "vectors"
    with atomic_folder(target) as staging:
        (staging / "a.txt").write_text("1")
    assert (target / "a.txt").read_text() == "1"
    with pytest.raises(KeyError):
        with atomic_folder(target) as staging:
            (staging / "b.txt").write_text("2")
            raise KeyError("crash")
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vectors"]
    with atomic_folder(target) as staging:
        (staging / "c.txt").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == ["c.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vectors"]


def test_hashes(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"abc")
    assert sha256_file(path) == sha256_bytes(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert sha256_json({"b": 1, "a": [1, 2]}) == sha256_json({"a": [1, 2], "b": 1})
    write_json_atomic(tmp_path / "o.json", {"a": 1})
    assert (tmp_path / "o.json").read_text() == '{\n  "a": 1\n}\n'


def test_exit_codes() -> None:
    assert BadInputError("x").exit_code == 2
    assert VerificationFailed("x").exit_code == 1
    assert L1flowError("x").exit_code == 1
    assert isinstance(BadInputError("x"), ValueError)


def test_atomic_folder_staging_names_its_owner_and_sealed_entries_list_their_hashes(tmp_path: Path) -> None:
    import json

    from l1flow.fileio import MANIFEST_FILE, OWNER_FILE, folder_digest
    from l1flow.recovery import entry_problem, owner_is_dead

    target = tmp_path / "entry"
    with atomic_folder(target, replace=False, sealed=True) as staging:
        (staging / "sim").write_bytes(b"\x7fELF")
        assert json.loads((staging / OWNER_FILE).read_text())["pid"] > 0
        assert not owner_is_dead(staging)  # this process is alive: never removed under it
        digest_while_building = folder_digest(staging)
    assert not (target / OWNER_FILE).exists()
    assert json.loads((target / MANIFEST_FILE).read_text()) == {"sim": sha256_bytes(b"\x7fELF")}
    assert entry_problem(target) is None
    (target / "sim").write_bytes(b"\x7fEL")  # truncated after it was written
    assert "sim does not match its recorded sha256" in (entry_problem(target) or "")
    (target / "sim").write_bytes(b"\x7fELF")
    (target / MANIFEST_FILE).unlink()
    assert folder_digest(target) == digest_while_building  # the owner file is not content
