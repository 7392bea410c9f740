"""Resuming: a run that crashed after training reuses the dataset and the trained models.

The pipeline addresses every artifact a later step consumes by the hash of
what produced it (l1flow.pipeline.workspace.Workspace.cached); running again
after a crash finds them and does not redo the work. A build that was killed
half-way leaves only a temporary folder, never one that looks finished.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from l1flow.config import load_config
from l1flow.pipeline import data_steps
from l1flow.pipeline.workspace import Workspace
from l1flow.recovery import MANIFEST_FILE, entry_problem

REPO = Path(__file__).resolve().parents[1]
SMALL = [
    "data.train_background=3000",
    "data.train_signal=300",
    "data.validation_background=1000",
    "data.validation_signal=100",
    "data.test_background=1000",
    "data.test_signal=100",
    "verify.emulation_events=2000",
    "models.0.epochs=1",
    "models.1.n_trees=5",
]


def _config(tmp_path: Path):
    return load_config(REPO / "configs" / "default.yaml", [*SMALL, f"workspace={tmp_path / 'work'}"])


def test_second_run_reuses_dataset_and_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config(tmp_path)
    ws = Workspace(config.workspace)
    conditions = data_steps.resolve_conditions(config, ws)
    dataset = data_steps.prepare_dataset(config, conditions, ws)
    first = data_steps.train_models(config, dataset, ws)

    def must_not_train(*args: object, **kwargs: object) -> None:
        raise AssertionError("a finished step was run again")

    monkeypatch.setattr(data_steps, "train_model", must_not_train)
    monkeypatch.setattr(data_steps, "generate_events", must_not_train)
    again = data_steps.prepare_dataset(config, data_steps.resolve_conditions(config, ws), ws)
    assert again.key == dataset.key
    second = data_steps.train_models(config, again, ws)
    assert {n: m.weights_hash() for n, m in second.items()} == {n: m.weights_hash() for n, m in first.items()}

    # A changed seed is a different model: it would train (and here must fail to).
    changed = load_config(REPO / "configs" / "default.yaml", [*SMALL, f"workspace={tmp_path / 'work'}", "seed=8"])
    with pytest.raises(AssertionError, match="run again"):
        data_steps.prepare_dataset(changed, conditions, ws)


def test_build_killed_midway_leaves_nothing_that_looks_finished(tmp_path: Path) -> None:
    """SIGKILL during a cached build: the key stays absent, the next call builds it."""
    script = tmp_path / "slow_build.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        from pathlib import Path
        from l1flow.pipeline.workspace import Workspace

        def build(folder: Path) -> None:
            (folder / "half.txt").write_text("half")
            print("building", flush=True)
            time.sleep(60)
            (folder / "done.txt").write_text("done")

        Workspace(Path(sys.argv[1])).cached("things", "key1", build)
    """))
    ws_root = tmp_path / "work"
    proc = subprocess.Popen([sys.executable, str(script), str(ws_root)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "building"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)

    ws = Workspace(ws_root)
    assert not (ws.cache / "things" / "key1").exists()
    # the killed build's temporary folder names its (dead) process: the next run removes it
    (leftover,) = (ws.cache / "things").glob(".key1.*")
    assert ws.remove_stale() == [leftover] and not leftover.exists()
    builds: list[Path] = []

    def build(folder: Path) -> None:
        builds.append(folder)
        (folder / "done.txt").write_text("done")

    built = ws.cached("things", "key1", build)
    assert sorted(p.name for p in built.iterdir()) == [MANIFEST_FILE, "done.txt"]
    assert ws.cached("things", "key1", build) == built and len(builds) == 1  # reused


def test_damaged_cache_entry_is_rebuilt_with_a_warning_naming_it(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    ws = Workspace(tmp_path / "work")
    builds: list[Path] = []

    def build(folder: Path) -> None:
        builds.append(folder)
        (folder / "weights.npz").write_bytes(bytes(range(256)) * 4)

    entry = ws.cached("models", "k" * 64, build)
    (entry / "weights.npz").write_bytes(bytes(range(256)) * 2)  # truncated after it was written
    with caplog.at_level("WARNING", logger="l1flow.recovery"):
        again = ws.cached("models", "k" * 64, build)
    assert again == entry and len(builds) == 2
    assert (again / "weights.npz").read_bytes() == bytes(range(256)) * 4
    assert f"cached model {entry} is damaged (weights.npz does not match its recorded sha256)" in caplog.text
    (entry / "extra.bin").write_bytes(b"swapped in")
    assert entry_problem(entry) == "extra.bin was added"
    (entry / MANIFEST_FILE).unlink()
    assert "has no .l1flow-content.json" in (entry_problem(entry) or "")


def test_two_runs_building_the_same_artifact_at_once_both_succeed(tmp_path: Path) -> None:
    """Two retrains of the same model at once: neither clobbers the other, one result is kept."""
    script = tmp_path / "racing_build.py"
    script.write_text(textwrap.dedent(f"""
        import os, sys, time
        sys.path.insert(0, {str(REPO)!r})
        from pathlib import Path
        from l1flow.pipeline.workspace import Workspace

        def build(folder: Path) -> None:
            (folder / "writer.txt").write_text(str(os.getpid()))
            time.sleep(2)  # both builds are in flight together

        built = Workspace(Path(sys.argv[1])).cached("models", "same-key", build)
        print(built, (built / "writer.txt").read_text())
    """))
    ws_root = tmp_path / "work"
    procs = [
        subprocess.Popen([sys.executable, str(script), str(ws_root)], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    folders = {out[0] for out in outputs}
    assert folders == {str(ws_root.resolve() / "cache" / "models" / "same-key")}
    # both see the one kept result, written whole by one of them
    assert len({out[1] for out in outputs}) == 1
    assert [p.name for p in (ws_root / "cache" / "models").iterdir()] == ["same-key"]
