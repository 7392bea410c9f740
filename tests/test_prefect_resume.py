"""Resuming a crashed flow run without redoing finished steps; two runs at once computing a step once.

Each flow run is a real process against the real test server; a crash is
``os._exit`` in the middle of a step (the process dies, nothing is cleaned up).
Step executions are counted in files, so "not redone" is a count, not a guess.
"""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

# its asserts are rewritten even when this import comes before pytest loads it as a plugin
pytest.register_assert_rewrite("prefect_fixtures")
from prefect_fixtures import PYTHON, REPO_ROOT, PrefectServer  # noqa: E402

# one Prefect server for the whole session, whichever modules use it
pytest_plugins = ["prefect_fixtures"]
pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent(
    '''
    import os, sys, time
    from pathlib import Path
    from prefect import flow, task
    from flows.resumable import resumable_task_options

    STATE = Path(sys.argv[1])
    COUNTS = Path(sys.argv[2])
    OPTIONS = resumable_task_options(STATE)

    def count(name):
        with open(COUNTS / name, "a") as handle:
            handle.write("x")

    @task(**OPTIONS)
    def train(config_hash: str, events: int) -> list[float]:
        count("train")
        time.sleep(float(os.environ.get("TRAIN_SECONDS", "0")))
        return [0.5 * events, 1.25]

    @task(**OPTIONS)
    def convert(weights: list[float]) -> str:
        count("convert")
        if os.environ.get("CRASH_IN_CONVERT"):
            os._exit(137)  # the process dies mid-step, as under SIGKILL
        return f"firmware-{weights[0]:g}"

    @flow(name="resumable_steps")
    def resumable_steps(config_hash: str, events: int) -> str:
        return convert(train(config_hash, events))

    print(resumable_steps(sys.argv[3], int(sys.argv[4])))
    '''
)


def _run(server: PrefectServer, tmp_path: Path, config_hash: str, events: int, **env: str) -> subprocess.Popen[str]:
    script = tmp_path / "resumable_steps.py"
    script.write_text(SCRIPT)
    (tmp_path / "counts").mkdir(exist_ok=True)
    return subprocess.Popen(
        [PYTHON, str(script), str(tmp_path / "state"), str(tmp_path / "counts"), config_hash, str(events)],
        env=server.env(PYTHONPATH=str(REPO_ROOT), PREFECT_LOCAL_STORAGE_PATH=str(tmp_path / "results"), **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )


def _count(tmp_path: Path, step: str) -> int:
    path = tmp_path / "counts" / step
    return len(path.read_text()) if path.exists() else 0


def test_crashed_run_resumes_without_redoing_finished_steps(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    crashed = _run(prefect_server, tmp_path, "cfg-a", 1000, CRASH_IN_CONVERT="1")
    _, err = crashed.communicate(timeout=120)
    assert crashed.returncode == 137, err
    assert (_count(tmp_path, "train"), _count(tmp_path, "convert")) == (1, 1)

    resumed = _run(prefect_server, tmp_path, "cfg-a", 1000)
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert out.strip().splitlines()[-1] == "firmware-500"
    assert _count(tmp_path, "train") == 1  # training was not redone
    assert _count(tmp_path, "convert") == 2

    # other inputs are other work
    changed = _run(prefect_server, tmp_path, "cfg-b", 1000)
    changed.communicate(timeout=120)
    assert changed.returncode == 0
    assert _count(tmp_path, "train") == 2


def test_two_runs_at_once_compute_a_step_once(prefect_server: PrefectServer, tmp_path: Path) -> None:
    runs = [_run(prefect_server, tmp_path, "cfg-c", 2000, TRAIN_SECONDS="3") for _ in range(2)]
    outputs = [run.communicate(timeout=180) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err for _, err in outputs]
    assert [out.strip().splitlines()[-1] for out, _ in outputs] == ["firmware-1000", "firmware-1000"]
    assert _count(tmp_path, "train") == 1
    assert _count(tmp_path, "convert") == 1
