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

from l1flow.fileio import atomic_folder


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
        if not final.exists():
            with atomic_folder(final, replace=False) as staging:
                build(staging)
        return final

    def new_run(self, config_name: str, config_hash: str) -> RunFolder:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        return RunFolder(self.runs, f"{stamp}-{config_name}-{config_hash[:8]}")


class RunFolder:
    """One run's folder, written under a temporary name and published on success.

    Until `publish()` the folder is `.<id>.partial`; a failed run is renamed
    `<id>.failed` for inspection, so neither is ever taken for a finished run.
    """

    def __init__(self, runs_dir: Path, run_id: str) -> None:
        self.run_id = run_id
        self.runs_dir = runs_dir
        runs_dir.mkdir(parents=True, exist_ok=True)
        self.path = runs_dir / f".{run_id}.partial"
        self.path.mkdir()

    def publish(self) -> Path:
        final = self.runs_dir / self.run_id
        os.rename(self.path, final)
        self.path = final
        return final

    def fail(self) -> Path:
        failed = self.runs_dir / f"{self.run_id}.failed"
        os.rename(self.path, failed)
        self.path = failed
        return failed
