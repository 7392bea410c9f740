"""Where a pipeline keeps its state: stores, caches and run folders.

The embedded default keeps everything in one folder: the SQLite conditions
store, the MLflow store, a content-addressed cache of everything a later step
consumes (datasets, trained models, firmware builds), and one folder per run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from l1flow.fileio import atomic_folder, mark_owner, release
from l1flow.recovery import remove_dead_temporaries, usable_entry


@dataclass(frozen=True)
class Workspace:
    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).resolve())

    @property
    def conditions_store(self) -> Path:
        return self.root / "conditions.sqlite"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    def cached(self, kind: str, key: str, build: Callable[[Path], None]) -> Path:
        """The folder for artifact `kind/key`, built once by `build(tmp_folder)`.

        The build writes into a temporary folder that is renamed into place
        only when it succeeded, so a crash never leaves a half-built artifact
        that a later run would take for finished; two runs building the same
        key at once both succeed and one result is kept.
        """
        final = self.cache / kind / key
        if usable_entry(final, kind.rstrip("s")):
            return final
        with atomic_folder(final, replace=False, sealed=True) as staging:
            build(staging)
        return final

    def remove_stale(self) -> list[Path]:
        """Remove run folders and cache builds left by runs that were killed (their process is gone)."""
        removed = remove_dead_temporaries(self.runs)
        if self.cache.is_dir():
            for kind in sorted(p for p in self.cache.iterdir() if p.is_dir()):
                removed += remove_dead_temporaries(kind)
        return removed

    def new_run(self, config_name: str, config_hash: str) -> RunFolder:
        self.remove_stale()
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        return RunFolder(self.runs, f"{stamp}-{config_name}-{config_hash[:8]}")


class RunFolder:
    """One run's folder, written under a temporary name and published on success.

    Until `publish()` the folder is `.<id>.partial`; a failed run is renamed
    `<id>.failed` for inspection, so neither is ever taken for a finished run.
    A `.partial` folder names its process, so after a `kill -9` the next run
    can prove it dead and remove it (:meth:`Workspace.remove_stale`).
    """

    def __init__(self, runs_dir: Path, run_id: str) -> None:
        self.run_id = run_id
        self.runs_dir = runs_dir
        runs_dir.mkdir(parents=True, exist_ok=True)
        self.path = runs_dir / f".{run_id}.partial"
        self.path.mkdir()
        mark_owner(self.path)

    def publish(self) -> Path:
        final = self.runs_dir / self.run_id
        release(self.path)
        os.rename(self.path, final)
        self.path = final
        return final

    def fail(self) -> Path:
        failed = self.runs_dir / f"{self.run_id}.failed"
        release(self.path)
        os.rename(self.path, failed)
        self.path = failed
        return failed
