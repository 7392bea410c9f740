"""Issue 18, item 5: inputs outside the physical layout are counted per feature, and `compare` says so.

HDF5 events with eta = 50, phi = 100 and pT = 1e6 used to be scored with
"overflows: none", because the hardware units saturate (eta, pT) or wrap (phi)
them before the firmware's first layer ever sees them.
"""

from __future__ import annotations

from pathlib import Path

import h5py

from l1flow.compare import Comparison
from l1flow.conditions.payload import ConditionsPayload
from l1flow.data.generator import generate_events
from l1flow.data.hdf5 import read_hdf5, write_hdf5
from l1flow.data.layout import check_layout, to_hardware
from l1flow.data.reader import read_events


def _challenge_file(tmp_path: Path) -> Path:
    sample = generate_events(ConditionsPayload(), n_background=300, n_signal=0, seed=5, signals=[])
    path = write_hdf5(sample, tmp_path / "events.h5")
    with h5py.File(path, "r+") as f:
        particles = f["Particles"][()]
        particles[0, 1, :3] = [40.0, 50.0, 0.3]  # e/gamma 0 at eta = 50
        particles[1, 9, :3] = [80.0, 1.0, 100.0]  # jet 0 at phi = 100 rad
        particles[2, 5, :3] = [1e6, 0.5, 0.1]  # muon 0 at 1e6 GeV
        particles[2, 9, :3] = [90.0, 3.9, 0.0]  # a jet at eta 3.9 is inside |eta| < 4: not counted
        particles[0, 1, 3], particles[1, 9, 3], particles[2, 5, 3], particles[2, 9, 3] = 2, 4, 3, 4
        del f["Particles"]
        f.create_dataset("Particles", data=particles)
    return path


def test_outside_layout_is_counted_per_feature(tmp_path: Path) -> None:
    sample = read_events(_challenge_file(tmp_path))
    check = check_layout(sample.objects)
    by_feature = {f.feature: f for f in check.features}
    assert set(by_feature) == {"eg0_eta", "jet0_phi", "mu0_pt"}
    assert (check.events, check.events_outside) == (300, 3)
    eta, phi, pt = by_feature["eg0_eta"], by_feature["jet0_phi"], by_feature["mu0_pt"]
    assert (eta.count, eta.limit, eta.effect, eta.extreme) == (1, "abs(eta) < 3", "saturated", 50.0)
    assert (phi.count, phi.limit, phi.effect, phi.extreme) == (1, "abs(phi) <= pi", "wrapped", 100.0)
    assert (pt.count, pt.limit, pt.effect, pt.extreme) == (1, "pT <= 255.5 GeV (the 9-bit rail)", "saturated", 1e6)
    # what the firmware receives instead: the saturated and wrapped words
    words = to_hardware(sample.objects[:3])
    assert words[0, 1, 1] == 127 and words[2, 5, 0] == 511 and -72 <= words[1, 9, 2] <= 71
    # a generated sample is inside the layout
    generated = write_hdf5(generate_events(ConditionsPayload(), 300, 0, seed=6, signals=[]), tmp_path / "ok.h5")
    assert check_layout(read_hdf5(generated).objects).events_outside == 0


def test_compare_text_reports_saturated_inputs_not_overflows_none(tmp_path: Path) -> None:
    sample = read_events(_challenge_file(tmp_path))
    result = {
        "software_vs_emulation": {"events": 300, "events_differing": 300, "fraction_differing": 1.0,
                                  "max_abs_diff": 0.5, "abs_diff_quantiles": {"0.999": 0.4}},
        "working_point_khz": 1.0, "threshold": 2.0, "decision_agreement": 0.99,
        "emulation_vs_csim": {"source": "hls4ml C-sim", "events": 100, "mismatched_events": 0},
        "outside_layout": check_layout(sample.objects).to_dict(),
        "overflow": [{"layer": "input", "stage": "quantize", "values": 300 * 57, "saturated_high": 0,
                      "saturated_low": 0, "wrapped": 0, "overflowed": 0}],
    }
    text = Comparison("ae", "events.h5", result, tmp_path / "ae_residuals.png").to_text()
    assert "300 of 300 events differ (100%)" in text and "1 of events" not in text
    assert "inputs outside the physical layout: 3 of 300 events" in text
    assert "eg0_eta: 1 object(s) outside abs(eta) < 3 (saturated; furthest 50)" in text
    assert "jet0_phi: 1 object(s) outside abs(phi) <= pi (wrapped; furthest 100)" in text
    assert "mu0_pt: 1 object(s) outside pT <= 255.5 GeV (the 9-bit rail) (saturated; furthest 1e+06)" in text
    assert "overflows: none in any layer, but the inputs above saturated or wrapped" in text
    assert "overflows: none in any layer\n" not in text + "\n"
