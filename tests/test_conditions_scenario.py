"""The scripted scenario of issue 3's "Done when".

A new IOV with a 5% jet-scale shift and 10 more pile-up vertices: change
detection says retrain and names both fields; a sample generated under the new
conditions is flagged by drift detection on jet and MET features (and nothing
else); an IOV with unchanged conditions says keep and its sample does not drift.
"""

from __future__ import annotations

import pytest

from l1flow.conditions.change import ChangeTolerances, decide_retrain
from l1flow.conditions.drift import DriftThresholds, detect_drift
from l1flow.conditions.payload import CalibrationScales, ConditionsPayload
from l1flow.conditions.store import ConditionsStore
from l1flow.data.generator import generate_events
from l1flow.data.layout import FEATURE_NAMES

TAG = "L1Scenario"
EVENTS = 20_000


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ConditionsStore:
    store = ConditionsStore(tmp_path_factory.mktemp("scenario") / "conditions.sqlite")
    nominal = ConditionsPayload()
    store.add(TAG, 1000, nominal, "training era")
    store.add(TAG, 2000, ConditionsPayload(), "re-upload, same conditions")
    shifted = ConditionsPayload(
        calibration=CalibrationScales(jet=nominal.calibration.jet * 1.05), mean_pileup=nominal.mean_pileup + 10
    )
    store.add(TAG, 3000, shifted, "jet scale +5%, pile-up +10")
    return store


@pytest.fixture(scope="module")
def reference(store: ConditionsStore):
    return generate_events(store.get(TAG, 1000), EVENTS, 0, seed=101, with_regions=False)


def test_new_iov_with_jet_scale_and_pileup_change_says_retrain_naming_both(store: ConditionsStore) -> None:
    trained = store.get(TAG, 1000)
    latest = store.latest(TAG)
    assert latest.first_run == 3000
    decision = decide_retrain(trained, latest.payload, ChangeTolerances())
    assert decision.retrain
    assert [c.field for c in decision.exceeding] == ["calibration.jet", "mean_pileup"]
    jet, pileup = decision.exceeding
    assert jet.amount == pytest.approx(0.05) and pileup.amount == pytest.approx(10.0)
    assert "calibration.jet changed by +5.0%" in decision.reason
    assert "mean_pileup changed by +10" in decision.reason


def test_unchanged_iov_says_keep(store: ConditionsStore) -> None:
    decision = decide_retrain(store.get(TAG, 1000), store.get(TAG, 2500), ChangeTolerances())
    assert not decision.retrain and decision.reason == "keep: conditions unchanged"


def test_sample_under_new_conditions_drifts_on_jet_and_met_features(store: ConditionsStore, reference) -> None:
    recent = generate_events(store.latest(TAG).payload, EVENTS, 0, seed=303, with_regions=False)
    report = detect_drift(reference.features(), recent.features(), FEATURE_NAMES, DriftThresholds())
    assert report.drifted
    drifted = set(report.drifted_features)
    assert {"jet0_pt", "jet1_pt", "jet2_pt", "met_pt"} <= drifted
    assert all(name.startswith(("jet", "met")) for name in drifted), drifted
    by_name = {f.name: f for f in report.features}
    assert by_name["jet0_pt"].ks > 0.05 and by_name["met_pt"].ks > 0.05
    # the pile-up column itself moved by about 10 vertices
    assert recent.npv.mean() - reference.npv.mean() == pytest.approx(10, abs=0.5)
    # the same verdict on the hardware integer words the firmware sees
    hardware = detect_drift(reference.hardware_features(), recent.hardware_features(), FEATURE_NAMES)
    assert {"jet0_pt", "met_pt"} <= set(hardware.drifted_features)


def test_sample_under_unchanged_conditions_does_not_drift(store: ConditionsStore, reference) -> None:
    recent = generate_events(store.get(TAG, 2000), EVENTS, 0, seed=202, with_regions=False)
    report = detect_drift(reference.features(), recent.features(), FEATURE_NAMES, DriftThresholds())
    assert not report.drifted, report.summary()
    assert max(f.ks for f in report.features) < 0.03
