"""Firmware bundles: reproducible archives and extraction that refuses unsafe members."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from l1flow.registry.bundle import BundleError, safe_extract, sha256_file, write_bundle


def _project(root: Path) -> dict[str, str]:
    (root / "firmware" / "ae" / "rtl").mkdir(parents=True)
    (root / "firmware" / "ae" / "rtl" / "top.v").write_text("module top; endmodule\n")
    (root / "firmware" / "ae" / "build.tcl").write_text("set_top top\n")
    (root / "firmware" / "ae" / "weights.bin").write_bytes(bytes(range(256)) * 40)
    (root / "vectors" / "ae").mkdir(parents=True)
    (root / "vectors" / "ae" / "inputs.txt").write_text("1 -2 3\n")
    (root / "reports").mkdir()
    (root / "reports" / "synth.rpt").write_text("LUT 123\n")
    return {"firmware": "firmware/ae", "vectors": "vectors/ae", "reports": "reports/synth.rpt"}


def test_bundle_is_reproducible_and_round_trips(tmp_path: Path) -> None:
    run = tmp_path / "run"
    entries = _project(run)
    first = write_bundle(run, entries, tmp_path / "a" / "bundle.tar.gz")
    second = write_bundle(run, entries, tmp_path / "b" / "bundle.tar.gz")
    assert first.sha256 == second.sha256 == sha256_file(second.path)
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.members == (
        "firmware/build.tcl",
        "firmware/rtl/top.v",
        "firmware/weights.bin",
        "reports/synth.rpt",
        "vectors/inputs.txt",
    )
    assert first.total_bytes == 10240 + len("module top; endmodule\n") + len("set_top top\n") + 7 + 8
    out = tmp_path / "out"
    files = safe_extract(first.path, out)
    assert sorted(files) == sorted(first.members)
    assert (out / "firmware" / "weights.bin").read_bytes() == (run / "firmware/ae/weights.bin").read_bytes()
    assert (out / "reports" / "synth.rpt").read_text() == "LUT 123\n"
    # A changed byte changes the bundle hash.
    (run / "firmware" / "ae" / "weights.bin").write_bytes(bytes(range(256)) * 39 + bytes(255) + b"\x01")
    assert write_bundle(run, entries, tmp_path / "c" / "bundle.tar.gz").sha256 != first.sha256


def test_bundle_refuses_missing_artifact_and_outside_symlink(tmp_path: Path) -> None:
    run = tmp_path / "run"
    entries = _project(run)
    with pytest.raises(BundleError, match="artifact 'rtl' points to .*does not exist"):
        write_bundle(run, {**entries, "rtl": "firmware/missing"}, tmp_path / "x.tar.gz")
    secret = tmp_path / "secret.txt"
    secret.write_text("not part of the run")
    (run / "firmware" / "ae" / "leak.txt").symlink_to(secret)
    with pytest.raises(BundleError, match="outside the run folder"):
        write_bundle(run, entries, tmp_path / "y.tar.gz")
    assert not (tmp_path / "y.tar.gz").exists()
    assert not list(tmp_path.glob(".bundle-*"))


def _malicious(path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        good = tarfile.TarInfo("firmware/ok.v")
        good.size = 3
        tar.addfile(good, io.BytesIO(b"ok\n"))
        member.size = len(data) if member.isfile() else 0
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (_member("/etc/cron.d/evil"), "absolute path"),
        (_member("../../outside.txt"), "escape the destination"),
        (_member("firmware/../../outside.txt"), "escape the destination"),
        (_member("firmware/link", tarfile.SYMTYPE, "/etc/passwd"), "is a link"),
        (_member("firmware/up", tarfile.SYMTYPE, "../../../x"), "is a link"),
        (_member("firmware/hard", tarfile.LNKTYPE, "/etc/shadow"), "is a link"),
        (_member("firmware/tty", tarfile.CHRTYPE), "device file"),
        (_member("firmware/disk", tarfile.BLKTYPE), "device file"),
        (_member("firmware/pipe", tarfile.FIFOTYPE), "device file"),
    ],
)
def test_malicious_archive_is_rejected_and_leaves_nothing(
    tmp_path: Path, member: tarfile.TarInfo, message: str
) -> None:
    archive = _malicious(tmp_path / "evil.tar.gz", member, b"pwned\n")
    dest = tmp_path / "deep" / "dest"
    with pytest.raises(BundleError, match=message):
        safe_extract(archive, dest)
    assert not dest.exists()
    assert not (tmp_path / "outside.txt").exists()
    assert not (tmp_path / "deep").exists() or not any((tmp_path / "deep").iterdir())


def test_extract_refuses_existing_destination_and_garbage(tmp_path: Path) -> None:
    run = tmp_path / "run"
    bundle = write_bundle(run, _project(run), tmp_path / "b.tar.gz")
    (tmp_path / "taken").mkdir()
    with pytest.raises(BundleError, match="already exists"):
        safe_extract(bundle.path, tmp_path / "taken")
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(BundleError, match="not a readable tar archive"):
        safe_extract(garbage, tmp_path / "g")
