"""The watch decision (no server): new IOV, already announced, beyond / within tolerance, drift."""

from __future__ import annotations

from pathlib import Path

import pytest

from l1flow.conditions.payload import CalibrationScales, ConditionsPayload
from l1flow.conditions.store import ConditionsStore
from l1flow.service.watch import AnnouncedIov, TrainedConditions, decide

TAG = "L1Calib_v1"
NOMINAL = ConditionsPayload()
SHIFTED = ConditionsPayload(calibration=CalibrationScales(jet=1.05), mean_pileup=60.0)


def _store(tmp_path: Path, *iovs: tuple[int, ConditionsPayload]) -> Path:
    db = tmp_path / "conditions.sqlite"
    with ConditionsStore(db) as store:
        for first_run, payload in iovs:
            store.add(TAG, first_run=first_run, payload=payload)
    return db


def test_first_iov_is_announced_once(tmp_path: Path) -> None:
    db = _store(tmp_path, (390000, NOMINAL))
    outcome = decide(db, TAG, "configs/default.yaml", trained=None, announced=None)
    assert outcome.change is not None
    payload = outcome.change.to_payload()
    assert payload["iov"] == {"first_run": 390000, "last_run": None}
    assert payload["tag"] == TAG
    assert payload["config_path"] == "configs/default.yaml"
    assert payload["conditions_db"] == str(db.resolve())
    assert "no model trained" in payload["reason"]
    again = decide(db, TAG, "configs/default.yaml", trained=None, announced=outcome.change.announced())
    assert again.change is None
    assert "already announced" in again.explanation


def test_change_beyond_tolerance_names_the_fields(tmp_path: Path) -> None:
    db = _store(tmp_path, (390000, NOMINAL), (391000, SHIFTED))
    announced = AnnouncedIov(TAG, 390000, NOMINAL.to_dict())
    trained = TrainedConditions(NOMINAL, "production ae (L1Calib_v1 from run 390000)")
    outcome = decide(db, TAG, "c.yaml", trained=trained, announced=announced)
    assert outcome.change is not None
    assert outcome.change.first_run == 391000
    assert [c.split(" ")[0] for c in outcome.change.changes] == ["calibration.jet", "mean_pileup"]
    assert "calibration.jet changed by +5.0%" in outcome.change.reason
    assert "mean_pileup changed by +10" in outcome.change.reason
    assert "against production ae" in outcome.change.reason


def test_change_within_tolerance_keeps_the_model(tmp_path: Path) -> None:
    db = _store(tmp_path, (390000, NOMINAL), (391000, ConditionsPayload(mean_pileup=52.0)))
    outcome = decide(db, TAG, "c.yaml", trained=TrainedConditions(NOMINAL, "production"), announced=None)
    assert outcome.change is None
    assert "within tolerances" in outcome.explanation
    assert "mean_pileup changed by +2" in outcome.explanation


def test_missing_tag_store_or_sample_is_explained(tmp_path: Path) -> None:
    db = _store(tmp_path, (1, NOMINAL))
    assert decide(db, "Other_v2", "c.yaml", None, None).explanation.startswith("tag 'Other_v2' has no IOV yet")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        decide(tmp_path / "missing.sqlite", TAG, "c.yaml", None, None)
    assert not (tmp_path / "missing.sqlite").exists()  # looking never creates an empty store
    with pytest.raises(ValueError, match="both reference_sample and recent_sample"):
        decide(db, TAG, "c.yaml", None, None, reference_sample=tmp_path / "ref.h5")


def test_drift_alone_is_a_reason_to_retrain(tmp_path: Path) -> None:
    from l1flow.data.generator import generate_events

    db = _store(tmp_path, (390000, NOMINAL))
    reference = generate_events(NOMINAL, n_background=4000, n_signal=0, seed=1, with_regions=False)
    recent_same = generate_events(NOMINAL, n_background=4000, n_signal=0, seed=2, with_regions=False)
    recent_shifted = generate_events(SHIFTED, n_background=4000, n_signal=0, seed=3, with_regions=False)
    ref_path = reference.save(tmp_path / "reference.h5")
    same_path = recent_same.save(tmp_path / "recent_same.h5")
    shifted_path = recent_shifted.save(tmp_path / "recent_shifted.h5")
    trained = TrainedConditions(NOMINAL, "production")

    quiet = decide(db, TAG, "c.yaml", trained, None, reference_sample=ref_path, recent_sample=same_path)
    assert quiet.change is None

    drifted = decide(db, TAG, "c.yaml", trained, None, reference_sample=ref_path, recent_sample=shifted_path)
    assert drifted.change is not None
    assert drifted.change.reason.startswith("input drift:")
    assert drifted.change.drifted_features  # which features moved is in the event
    assert drifted.change.changes == []  # the stored conditions themselves did not change


@pytest.mark.slow  # records a version in a real MLflow store
def test_production_conditions_come_from_the_registry_lineage(tmp_path: Path) -> None:
    from test_registry_runfolders import make_run_folder

    from l1flow.registry.criteria import AcceptanceCriteria
    from l1flow.registry.store import ModelRegistry
    from l1flow.service.watch import production_conditions

    db = _store(tmp_path, (390000, NOMINAL), (391000, SHIFTED))
    workspace = tmp_path / "ws"
    assert production_conditions(db, workspace, "ae") is None  # nothing registered yet
    ModelRegistry(workspace).record_run(make_run_folder(tmp_path / "run1", tag=TAG, first_run=390000),
                                        AcceptanceCriteria())
    trained = production_conditions(db, workspace, "ae")
    assert trained is not None
    assert trained.payload == NOMINAL  # the IOV production was trained on, not the latest one
    assert trained.source == f"production ae ({TAG} from run 390000)"
    outcome = decide(db, TAG, "c.yaml", trained=trained, announced=None)
    assert outcome.change is not None and outcome.change.first_run == 391000
