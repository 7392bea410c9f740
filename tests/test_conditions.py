"""Conditions payloads, the IOV store, change detection and the `l1flow conditions` CLI."""

from __future__ import annotations

import math
import sqlite3

import pytest
import yaml

from l1flow.conditions.change import ChangeTolerances, decide_retrain
from l1flow.conditions.payload import (
    CalibrationScales,
    ConditionsPayload,
    EtaPhiBox,
    PayloadError,
    PtThresholds,
    parse_payload,
)
from l1flow.conditions.store import ConditionsStore, StoreError

NOMINAL = ConditionsPayload()


# ---- payload ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"calibration": {"jet": 3.0}}, r"calibration\.jet: must be within \[0\.5, 1\.5\].*got 3\.0"),
        ({"mean_pileup": -1}, r"mean_pileup: must be within \[0, 200\]"),
        ({"mean_pileup": float("nan")}, r"mean_pileup: must be within \[0, 200\].*got nan"),
        ({"noise_level": float("inf")}, r"noise_level: must be within \[0, 20\]"),
        ({"thresholds": {"muon": 500}}, r"thresholds\.muon: must be within \[0, 200\]"),
        ({"masked_regions": [3, 252]}, r"masked_regions: indices must be within \[0, 251\], got \[252\]"),
        ({"masked_regions": [3, 3]}, r"masked_regions: indices must not repeat"),
        ({"masked_boxes": [{"eta_min": 1, "eta_max": 0, "phi_min": 0, "phi_max": 1}]}, r"masked_boxes\.0: eta_min"),
        ({"masked_boxes": [{"eta_min": 0, "eta_max": 1, "phi_min": 0, "phi_max": 4}]}, r"phi_max: must be within"),
        ({"masked_boxes": [{"eta_min": 0, "eta_max": 1, "phi_min": 0, "phi_max": 1, "types": ["met"]}]},
         r"types must be a non-empty subset"),
        ({"pileup": 50}, r"pileup: unknown field"),
    ],
)
def test_bad_payload_fields_are_refused_naming_field_and_range(data: dict, message: str) -> None:
    with pytest.raises(PayloadError, match=r"^era\.yaml: .*" + message):
        parse_payload(data, "era.yaml")


def test_payload_hash_is_canonical() -> None:
    a = ConditionsPayload(masked_regions=(5, 3))
    b = parse_payload({"masked_regions": [3, 5]})
    assert a.masked_regions == (3, 5) and a.content_hash() == b.content_hash()
    assert a.content_hash() != NOMINAL.content_hash()
    assert parse_payload(a.to_dict()) == a


# ---- store --------------------------------------------------------------------


def _era(jet: float = 1.0, pileup: float = 50.0) -> ConditionsPayload:
    return ConditionsPayload(calibration=CalibrationScales(jet=jet), mean_pileup=pileup)


def test_iovs_cover_run_ranges(tmp_path) -> None:
    with ConditionsStore(tmp_path / "c.sqlite") as store:
        store.add("L1", 100, _era(), "start")
        store.add("L1", 200, _era(jet=1.05))
        store.add("L1", 300, _era(jet=1.05, pileup=60))
        store.add("Other", 1, _era(jet=0.9))
        assert store.tags() == ["L1", "Other"] and store.has_tag("L1") and not store.has_tag("nope")
        assert store.get("L1", 100).calibration.jet == 1.0
        assert store.get("L1", 199).calibration.jet == 1.0
        assert store.get("L1", 200).calibration.jet == 1.05
        iov = store.iov("L1", 250)
        assert (iov.first_run, iov.last_run) == (200, 299)
        latest = store.latest("L1")
        assert (latest.first_run, latest.last_run, latest.payload.mean_pileup) == (300, None, 60.0)
        assert [i.first_run for i in store.list("L1")] == [100, 200, 300]
        assert len(store.list()) == 4
        changes = store.diff("L1", 100, 300)
        assert {c.field for c in changes} == {"calibration.jet", "mean_pileup"}
        assert [(c.field, c.new) for c in store.diff("L1", 100, 1, other_tag="Other")] == [("calibration.jet", 0.9)]
    # identical payloads are stored once
    assert sqlite3.connect(tmp_path / "c.sqlite").execute("SELECT COUNT(*) FROM payloads").fetchone()[0] == 4


def test_store_diff_of_a_run_before_the_first_iov_is_an_error(tmp_path) -> None:
    with ConditionsStore(tmp_path / "c.sqlite") as store:
        store.add("L1", 100, NOMINAL)
        with pytest.raises(StoreError, match="has no conditions for run 5; its first IOV starts at run 100"):
            store.get("L1", 5)
        with pytest.raises(StoreError, match=r"no tag 'L2' \(tags: L1\)"):
            store.latest("L2")


def test_store_refuses_overwriting_an_iov_and_keeps_the_first(tmp_path) -> None:
    with ConditionsStore(tmp_path / "c.sqlite") as store:
        store.add("L1", 100, NOMINAL)
        with pytest.raises(StoreError, match="already has an IOV starting at run 100"):
            store.add("L1", 100, _era(jet=1.1))
        assert store.get("L1", 100) == NOMINAL
        with pytest.raises(StoreError, match="first_run must be a run number"):
            store.add("L1", -1, NOMINAL)


def test_yaml_export_import_roundtrip_and_all_or_nothing(tmp_path) -> None:
    box = EtaPhiBox(eta_min=-1.0, eta_max=0.5, phi_min=-math.pi, phi_max=0.0)
    source = ConditionsStore(tmp_path / "a.sqlite")
    source.add("L1", 1, NOMINAL, "start")
    source.add("L1", 50, ConditionsPayload(masked_boxes=(box,), masked_regions=(7, 8), noise_level=2.5))
    exported = source.export_yaml(tmp_path / "out" / "l1.yaml")
    target = ConditionsStore(tmp_path / "b.sqlite")
    added = target.import_yaml(exported)
    assert [i.first_run for i in added] == [1, 50]
    assert target.get("L1", 60) == source.get("L1", 60) and target.iov("L1", 1).comment == "start"
    assert target.import_yaml(exported) == []  # the same IOVs again: nothing to add

    # one bad IOV in a file: nothing of that file is added
    data = yaml.safe_load(exported.read_text())
    data["tags"]["L2"] = [{"first_run": 1, "payload": {}}, {"first_run": 9, "payload": {"calibration": {"muon": 2}}}]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(StoreError, match=r"bad\.yaml: tags\.L2\[1\]\.payload: calibration\.muon: must be within"):
        target.import_yaml(bad)
    assert not target.has_tag("L2")
    conflicting = {"schema_version": 1, "tags": {"L1": [{"first_run": 1, "payload": {"mean_pileup": 70}}]}}
    bad.write_text(yaml.safe_dump(conflicting))
    with pytest.raises(StoreError, match="already has an IOV starting at run 1"):
        target.import_yaml(bad)
    bad.write_text(yaml.safe_dump({"tags": {"L3": [{"first_run": 1, "payload": {}, "color": "red"}]}}))
    with pytest.raises(StoreError, match=r"unknown key\(s\) \['color'\]"):
        target.import_yaml(bad)


def test_store_from_a_newer_schema_is_refused(tmp_path) -> None:
    path = tmp_path / "c.sqlite"
    ConditionsStore(path).add("L1", 1, NOMINAL)
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match=rf"{path}: conditions store schema version 2 is newer .* upgrade l1flow"):
        ConditionsStore(path)


def test_a_file_that_is_not_a_store_is_refused(tmp_path) -> None:
    path = tmp_path / "c.sqlite"
    path.write_text("not a database at all")
    with pytest.raises(StoreError, match=rf"{path}: not a readable conditions store"):
        ConditionsStore(path)
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(StoreError, match="not a readable conditions store"):
        ConditionsStore(other)


# ---- change detection -----------------------------------------------------------


def test_retrain_names_each_field_beyond_tolerance() -> None:
    current = ConditionsPayload(
        calibration=CalibrationScales(jet=1.05, muon=1.01), mean_pileup=60, thresholds=PtThresholds(jet=25)
    )
    decision = decide_retrain(NOMINAL, current, ChangeTolerances())
    assert decision.retrain
    assert {c.field for c in decision.exceeding} == {"calibration.jet", "mean_pileup", "thresholds.jet"}
    assert "calibration.jet changed by +5.0% (1 -> 1.05, tolerance 2.0%)" in decision.reason
    assert "mean_pileup changed by +10 (50 -> 60, tolerance 5)" in decision.reason
    assert "thresholds.jet changed by +5 GeV" in decision.reason
    assert "muon" not in decision.reason  # +1% is within the 2% tolerance
    assert {c.field for c in decision.changes} == {"calibration.jet", "calibration.muon", "mean_pileup", "thresholds.jet"}


def test_keep_when_unchanged_or_within_tolerance() -> None:
    assert decide_retrain(NOMINAL, ConditionsPayload(), ChangeTolerances()).reason == "keep: conditions unchanged"
    small = ConditionsPayload(calibration=CalibrationScales(jet=1.01), mean_pileup=53)
    decision = decide_retrain(NOMINAL, small, ChangeTolerances())
    assert not decision.retrain and decision.reason.startswith("keep: changes within tolerance")
    # the same change against a tighter tolerance retrains
    assert decide_retrain(NOMINAL, small, ChangeTolerances(calibration_relative=0.005)).retrain


def test_masked_regions_count_as_changes() -> None:
    decision = decide_retrain(NOMINAL, ConditionsPayload(masked_regions=(10, 11)))
    assert decision.retrain and "masked_regions: 2 regions added or removed (tolerance 0)" in decision.reason
    assert not decide_retrain(NOMINAL, ConditionsPayload(masked_regions=(10,)), ChangeTolerances(masked_regions=1)).retrain


# ---- CLI ----------------------------------------------------------------------


def _cli(*argv: str) -> int:
    from l1flow.cli.main import main

    return main(list(argv))


def test_cli_add_list_show_diff_export_import(tmp_path, capsys) -> None:
    store = str(tmp_path / "c.sqlite")
    assert _cli("conditions", "add", "L1", "--first-run", "1", "--store", store, "--comment", "era A") == 0
    assert _cli("conditions", "add", "L1", "--first-run", "100", "--set", "calibration.jet=1.05",
                "--set", "mean_pileup=60", "--store", store) == 0
    payload_file = tmp_path / "p.yaml"
    payload_file.write_text(yaml.safe_dump({"noise_level": 3.0, "masked_regions": [4]}))
    assert _cli("conditions", "add", "L2", "--first-run", "5", "--file", str(payload_file), "--store", store) == 0
    capsys.readouterr()

    assert _cli("conditions", "list", "--store", store) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and "era A" in out[0] and "100 - open" in out[1]

    assert _cli("conditions", "show", "L1", "--run", "150", "--store", store) == 0
    shown = capsys.readouterr().out
    assert "from run 100 open-ended" in shown and yaml.safe_load(shown)["calibration"]["jet"] == 1.05

    assert _cli("conditions", "diff", "L1", "1", "100", "--store", store) == 0
    out = capsys.readouterr().out
    assert "retrain: calibration.jet changed by +5.0%" in out and "mean_pileup changed by +10" in out

    exported = tmp_path / "all.yaml"
    assert _cli("conditions", "export", str(exported), "--store", store) == 0
    other = str(tmp_path / "d.sqlite")
    assert _cli("conditions", "import", str(exported), "--store", other) == 0
    assert ConditionsStore(other).get("L2", 7).masked_regions == (4,)


def test_cli_errors_name_the_field_and_exit_2(tmp_path, capsys) -> None:
    store = str(tmp_path / "c.sqlite")
    assert _cli("conditions", "add", "L1", "--first-run", "1", "--set", "calibration.jet=3", "--store", store) == 2
    err = capsys.readouterr().err
    assert "calibration.jet: must be within [0.5, 1.5]" in err and "got 3" in err
    assert _cli("conditions", "list", "--store", str(tmp_path / "missing.sqlite")) == 2
    assert "no conditions store here" in capsys.readouterr().err
    assert not (tmp_path / "missing.sqlite").exists()


def test_an_iov_inside_an_existing_one_is_refused_and_the_store_is_unchanged(tmp_path, capsys) -> None:
    """Issue 18: inserting run 150 between IOVs at 1 and 200 used to cut 1-199 to 1-149 silently."""
    path = tmp_path / "c.sqlite"
    with ConditionsStore(path) as store:
        store.add("L1", 1, NOMINAL)
        store.add("L1", 200, _era(jet=1.05))
        with pytest.raises(StoreError, match=r"run 150 falls inside the IOV 1-199; adding it would cut that IOV "
                                             r"to 1-149\. IOVs are only appended: add the new conditions at a run "
                                             r"after 200, or under a new tag"):
            store.add("L1", 150, _era(jet=1.1))
        with pytest.raises(StoreError, match=r"run 0 falls before its first IOV \(run 1\)"):
            store.add("L1", 0, _era(jet=1.1))
        assert [(i.first_run, i.last_run) for i in store.list("L1")] == [(1, 199), (200, None)]
        store.add("L1", 300, _era(jet=1.1))  # appending still works
    assert _cli("conditions", "add", "L1", "--first-run", "250", "--set", "calibration.jet=1.2",
                "--store", str(path)) == 2
    err = capsys.readouterr().err
    assert "run 250 falls inside the IOV 200-299" in err and str(path) in err
    with ConditionsStore(path) as store:
        assert [i.first_run for i in store.list("L1")] == [1, 200, 300]
