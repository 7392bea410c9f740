"""Artifact store round trip vs a plain tar archive, side by side in one process.

A firmware project (many small sources plus a few large binary files, like an
HLS project with weights and test vectors) goes into the store and back out
(``put_tree`` + ``get_tree``: hashing, tar, atomic publish, verified unpack), and
the same folder through Python's ``tarfile`` alone (pack + unpack, no hashing,
no checks). Prints the times, the ratio store / tar, and one JSON line.

    .venv/bin/python benchmarks/bench_artifacts.py [--mb 200] [--files 400]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

from l1flow.artifacts import ArtifactStore
from l1flow.fileio import folder_digest


def make_project(root: Path, total_mb: int, n_files: int, seed: int = 0) -> int:
    """Sources (text) and a few large binaries; returns the byte count."""
    rng = np.random.default_rng(seed)
    big = max(1, total_mb * (1 << 20) // 4)
    written = 0
    for i in range(n_files):
        path = root / "firmware" / f"layer{i // 20}" / f"src_{i}.cpp"
        path.parent.mkdir(parents=True, exist_ok=True)
        text = "".join(f"weight_t w{i}_{j} = {int(v)};\n" for j, v in enumerate(rng.integers(-512, 512, 200)))
        path.write_text(text)
        written += len(text)
    for i in range(4):
        path = root / "tb_data" / f"vectors_{i}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = rng.integers(0, 256, big, dtype=np.uint8).tobytes()
        path.write_bytes(data)
        written += len(data)
    return written


def store_round_trip(project: Path, work: Path) -> float:
    store = ArtifactStore(work / "store")
    start = time.perf_counter()
    digest = store.put_tree(project)
    store.get_tree(digest, work / "out-store")
    return time.perf_counter() - start


def tar_round_trip(project: Path, work: Path) -> float:
    start = time.perf_counter()
    archive = work / "plain.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(project, arcname=".")
    with tarfile.open(archive) as tar:
        tar.extractall(work / "out-tar", filter="data")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="size of the large binary files together")
    parser.add_argument("--files", type=int, default=400, help="number of small source files")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-artifacts-") as tmp:
        root = Path(tmp)
        project = root / "project"
        size = make_project(project, args.mb, args.files)
        store_times, tar_times = [], []
        for i in range(args.repeat):
            work = root / f"round{i}"
            work.mkdir()
            tar_times.append(tar_round_trip(project, work))
            store_times.append(store_round_trip(project, work))
            assert folder_digest(work / "out-store") == folder_digest(work / "out-tar")
            shutil.rmtree(work)
    store_s, tar_s = min(store_times), min(tar_times)
    mb = size / (1 << 20)
    print(f"project: {mb:.0f} MB in {args.files + 4} files")
    print(f"artifact store put+get: {store_s:.2f} s ({mb / store_s:.0f} MB/s), hashed, verified, atomic")
    print(f"plain tarfile pack+unpack: {tar_s:.2f} s ({mb / tar_s:.0f} MB/s)")
    print(f"ratio store / tar: {store_s / tar_s:.2f}")
    print(json.dumps({"benchmark": "artifacts_round_trip", "mb": round(mb, 1), "files": args.files + 4,
                      "store_s": round(store_s, 3), "tar_s": round(tar_s, 3),
                      "ratio_store_over_tar": round(store_s / tar_s, 3)}))


if __name__ == "__main__":
    main()
