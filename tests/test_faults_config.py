"""Issue 18, config errors: every bad field comes back at once (exit 2), naming the field and what to do,
before Prefect or TensorFlow is imported, and nothing is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from l1flow.cli.main import main
from l1flow.config import ConfigError, check_runnable, load_config
from l1flow.errors import BadInputError

REPO = Path(__file__).resolve().parents[1]


def _write(tmp_path: Path, **changes: object) -> Path:
    raw = {
        "name": "faults",
        "workspace": str(tmp_path / "work"),
        "models": [{"kind": "dense_ae", "name": "ae", "encoder": [{"units": 4}], "latent": {"units": 2}}],
    }
    for key, value in changes.items():
        node = raw
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})  # type: ignore[assignment]
        node[last] = value
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _run(path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = main(["run", str(path), *extra])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("name", ["..", ".", ".hidden", "a/b", "a\\b", "-x"])
def test_model_names_that_are_not_one_folder_are_refused(tmp_path: Path, name: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(_write(tmp_path, models=[{"kind": "dense_ae", "name": name}]), capsys)
    assert code == 2
    assert "models.0.dense_ae.name" in err and repr(name) in err and "cannot name a folder" in err
    assert "Traceback" not in err and "--debug" not in err
    assert not (tmp_path / "work").exists()


def test_pipeline_name_dotdot_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"name: '\.\.' cannot name a folder"):
        load_config(_write(tmp_path, name=".."))


def test_unknown_part_names_the_field_close_parts_and_the_override(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(_write(tmp_path, **{"firmware.part": "not-a-part"}), capsys)
    assert code == 2
    assert "firmware.part: 'not-a-part' is not a known FPGA part" in err
    assert "l1flow parts" in err and "firmware.part_unlisted: true" in err
    with pytest.raises(ConfigError, match="did you mean xcvu9p-flgb2104-2L-e"):
        load_config(_write(tmp_path, **{"firmware.part": "xcvu9p-flgb2104-2l-e"}))
    # the explicit override for a device missing from the table
    config = load_config(_write(tmp_path, firmware={"part": "xcvu19p-fsva3824-2-e", "part_unlisted": True}))
    assert config.firmware.part == "xcvu19p-fsva3824-2-e"
    assert not (tmp_path / "work").exists()


def test_parts_command_lists_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["parts"]) == 0
    out = capsys.readouterr().out
    for part in ("xcvu9p-flgb2104-2L-e", "xc7vx690tffg1927-2", "xcku115-flvb2104-2-i", "xcu250-figd2104-2L-e",
                 "xcvu13p-flga2577-2-e", "xcvc1902-vsva2197-2MP-e-S"):
        assert part in out


@pytest.mark.parametrize(("rate_khz", "crossing_mhz", "ok"), [(28_610.0, 28.61, False), (5e4, 28.61, False),
                                                               (28_609.0, 28.61, True), (1.0, 0.0005, False)])
def test_working_point_must_be_below_the_crossing_rate(tmp_path: Path, rate_khz: float, crossing_mhz: float,
                                                       ok: bool) -> None:
    path = _write(tmp_path, trigger={"working_point_khz": rate_khz, "crossing_rate_mhz": crossing_mhz})
    if ok:
        assert load_config(path).trigger.working_point_khz == rate_khz
        return
    with pytest.raises(ConfigError, match=r"trigger.working_point_khz: .* kHz is not below the crossing rate"):
        load_config(path)


def test_workspace_that_is_a_file_or_not_writable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder\n")
    code, err = _run(_write(tmp_path, workspace=str(a_file)), capsys)
    assert code == 2 and f"workspace: {a_file} is a file, not a folder" in err
    code, err = _run(_write(tmp_path), capsys, "--workspace", str(a_file / "sub"))
    assert code == 2 and f"--workspace: {a_file / 'sub'} cannot be created: {a_file} is a file" in err
    # /proc refuses new files even to root (a chmod would not stop root)
    code, err = _run(_write(tmp_path, workspace="/proc/l1flow-workspace"), capsys)
    assert code == 2 and "workspace: /proc/l1flow-workspace would be created in /proc, which is not writable" in err
    assert a_file.read_text() == "not a folder\n"
    assert "Traceback" not in err


def test_missing_input_paths_are_all_named_at_once(tmp_path: Path) -> None:
    path = _write(tmp_path, data={"source": str(tmp_path / "nope.h5"), "mapping": "no_such_mapping"},
                  conditions={"store": str(tmp_path / "typo" / "conditions.sqlite")})
    with pytest.raises(BadInputError) as caught:
        check_runnable(load_config(path), path)
    text = str(caught.value)
    assert f"data.source: {tmp_path / 'nope.h5'} is not a file" in text
    assert "data.mapping: no_such_mapping is neither a YAML file nor a shipped mapping (uproot_hzz)" in text
    assert f"conditions.store: the folder {tmp_path / 'typo'} does not exist" in text
    assert caught.value.exit_code == 2
    assert not (tmp_path / "work").exists() and not (tmp_path / "typo").exists()
    # a shipped mapping's name is accepted
    check_runnable(load_config(_write(tmp_path, data={"mapping": "uproot_hzz"})), path)


def test_config_error_comes_before_prefect_and_tensorflow_are_imported(tmp_path: Path) -> None:
    bad = _write(tmp_path, **{"firmware.part": "not-a-part"})
    probe = (
        "import json, sys\n"
        "from l1flow.cli.main import main\n"
        f"code = main(['run', {str(bad)!r}])\n"
        "print(json.dumps({'code': code, 'loaded': sorted(m for m in ('prefect', 'tensorflow', 'keras', 'mlflow')"
        " if m in sys.modules)}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", probe], check=False, capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=120)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"code": 2, "loaded": []}
    assert "firmware.part" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "work").exists()
