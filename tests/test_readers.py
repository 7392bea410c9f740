"""HDF5 (challenge layout) and ROOT (uproot + mapping) readers, and their bad-input errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import awkward as ak
import h5py
import numpy as np
import pytest
import uproot
import yaml

from l1flow.conditions.drift import DriftThresholds, detect_drift
from l1flow.conditions.payload import ConditionsPayload
from l1flow.data.generator import generate_events
from l1flow.data.hdf5 import HDF5FormatError, read_hdf5, write_hdf5
from l1flow.data.layout import OBJECT_GROUPS, group
from l1flow.data.reader import UnknownFileTypeError, file_kind, read_events
from l1flow.data.root import RootMapping, RootReadError, read_root, shipped_mapping
from l1flow.data.sample import EventSample

HZZ = "uproot-HZZ.root"


@pytest.fixture(scope="module")
def small() -> EventSample:
    return generate_events(ConditionsPayload(), 400, 50, seed=4)


@pytest.fixture(scope="module")
def hzz_mapping() -> RootMapping:
    return RootMapping.from_yaml(shipped_mapping("uproot_hzz"))


# ---- HDF5 -----------------------------------------------------------------------


def test_hdf5_roundtrip_in_the_challenge_layout(small: EventSample, tmp_path) -> None:
    path = write_hdf5(small, tmp_path / "events.h5")
    with h5py.File(path) as f:
        particles = f["Particles"][()]
    assert particles.shape == (len(small), 19, 4)
    types = particles[:, :, 3]
    assert np.all(types[:, 0] == 1)  # MET
    present = small.objects[:, :, 0] > 0
    for g, type_id in zip(OBJECT_GROUPS[1:], (2, 3, 4)):
        assert np.array_equal(types[:, g.slots] == type_id, present[:, g.slots])
    back = read_events(path)
    assert back.content_hash() == small.content_hash() and back.classes == small.classes
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_public_file_without_labels_is_labelled_by_class_name(small: EventSample, tmp_path) -> None:
    path = tmp_path / "Ato4l.h5"
    particles = np.zeros((len(small), 19, 4), dtype=np.float32)
    particles[:, :, :3] = small.objects
    particles[:, :, 3] = np.where(small.objects[:, :, 0] > 0, [1] + [2] * 4 + [3] * 4 + [4] * 10, 0)
    with h5py.File(path, "w") as f:
        f.create_dataset("Particles", data=particles)
    signal = read_hdf5(path, class_name="Ato4l")
    assert signal.classes == ("background", "Ato4l") and np.all(signal.labels == 1)
    assert not signal.npv_known
    assert np.array_equal(signal.objects, small.objects)


def _h5(path: Path, **datasets: np.ndarray) -> Path:
    with h5py.File(path, "w") as f:
        for name, data in datasets.items():
            f.create_dataset(name, data=data)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: _h5(p, Other=np.zeros((3, 19, 4))), r"no dataset 'Particles' \(found: Other\)"),
        (lambda p: _h5(p, Particles=np.zeros((3, 19, 3))), r"'Particles' has shape \(3, 19, 3\), expected \(N, 19, 4\)"),
        (lambda p: _h5(p, Particles=np.zeros((0, 19, 4))), "holds no events"),
        (lambda p: p.write_bytes(b""), "the file is empty"),
    ],
)
def test_bad_hdf5_files_name_the_file_and_dataset(tmp_path, make, message) -> None:
    path = tmp_path / "bad.h5"
    make(path)
    with pytest.raises(HDF5FormatError, match=message) as info:
        read_hdf5(path)
    assert str(path) in str(info.value)


def test_hdf5_nan_and_wrong_object_type_are_refused(small: EventSample, tmp_path) -> None:
    path = write_hdf5(small, tmp_path / "e.h5")
    with h5py.File(path, "r+") as f:
        data = f["Particles"][()]
        data[7, 10, 0] = np.nan
        f["Particles"][...] = data
    with pytest.raises(HDF5FormatError, match=r"e\.h5: .*NaN or infinite.*event 7, feature 'jet1_pt'"):
        read_hdf5(path)
    with h5py.File(path, "r+") as f:
        data[7, 10, 0] = 10.0
        data[3, 2, 3] = 4  # a jet type id in an e/gamma slot
        f["Particles"][...] = data
    with pytest.raises(HDF5FormatError, match=r"Particles\[3, 2\] has object type 4, but slot 2 holds type 2"):
        read_hdf5(path)


def test_truncated_hdf5_is_a_clear_error(small: EventSample, tmp_path) -> None:
    path = write_hdf5(small, tmp_path / "e.h5")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(HDF5FormatError, match=r"e\.h5: unreadable or truncated HDF5 file"):
        read_events(path)


def test_a_failed_write_leaves_no_file(small: EventSample, tmp_path) -> None:
    target = tmp_path / "e.h5"
    write_hdf5(small, target)
    before = target.read_bytes()
    broken = EventSample(small.objects, small.labels, small.classes, small.npv, None, {"x": "y"})
    broken.npv = None  # type: ignore[assignment]  # fails inside the writer, after the temporary file exists
    with pytest.raises(TypeError):
        write_hdf5(broken, target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.h5"]


def test_unknown_file_types_are_refused(tmp_path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("pt,eta,phi\n")
    with pytest.raises(UnknownFileTypeError, match=r"events\.csv: not an HDF5, ROOT or l1flow \.npz event file"):
        read_events(path)
    empty = tmp_path / "empty.h5"
    empty.write_bytes(b"")
    with pytest.raises(UnknownFileTypeError, match="the file is empty"):
        file_kind(empty)


# ---- ROOT -------------------------------------------------------------------------


def test_real_hzz_file_end_to_end(shared_data: Path, hzz_mapping: RootMapping) -> None:
    path = shared_data / HZZ
    sample = read_events(path, "uproot_hzz")
    assert len(sample) == 2421 and sample.classes == ("background",)
    tree = uproot.open(path)["events"]
    raw = tree.arrays(["Muon_Px", "Muon_Py", "Muon_Pz", "Jet_Px", "Jet_Py", "Jet_Pz", "MET_px", "MET_py",
                       "NPrimaryVertices"], library="np")
    # an independent event-by-event computation of muons and jets
    for event in (0, 1, 17, 2420):
        for kind, prefix, min_pt in (("muon", "Muon", 10.0), ("jet", "Jet", 30.0)):
            px, py, pz = (raw[f"{prefix}_{c}"][event] for c in ("Px", "Py", "Pz"))
            pt = np.hypot(px, py)
            eta = np.arcsinh(pz / pt)
            keep = (pt >= min_pt) & (np.abs(eta) < group(kind).eta_max)
            expected = np.sort(pt[keep])[::-1][: group(kind).count]
            got = sample.objects[event, group(kind).slots, 0]
            assert np.allclose(got[: len(expected)], expected, rtol=1e-5), (event, kind)
            assert np.all(got[len(expected):] == 0)
        met = np.hypot(raw["MET_px"][event], raw["MET_py"][event])
        assert sample.objects[event, 0, 0] == pytest.approx(met, rel=1e-5)
    assert np.array_equal(sample.npv, raw["NPrimaryVertices"])
    assert sample.npv_known and sample.npv.mean() == pytest.approx(8.56, abs=0.01) and sample.npv.max() == 33
    # the 57-input layout: ordered, padded, inside acceptance; hardware words fit
    features = sample.features()
    assert features.shape == (2421, 57)
    for g in OBJECT_GROUPS[1:]:
        pt = sample.objects[:, g.slots, 0]
        assert np.all(np.diff(pt, axis=1) <= 0)
        assert np.all(np.abs(sample.objects[:, g.slots, 1][pt > 0]) < g.eta_max)
    assert sample.objects[:, 0, 0].mean() == pytest.approx(31.8, abs=0.1)
    assert (sample.objects[:, 9:19, 0] > 0).sum(axis=1).mean() == pytest.approx(1.15, abs=0.01)
    assert sample.hardware_features().max() <= 4095


def test_pileup_column_of_the_real_file_feeds_drift_checks(shared_data: Path, hzz_mapping: RootMapping) -> None:
    sample = read_root(shared_data / HZZ, hzz_mapping)
    low, high = sample.select(sample.npv <= 7), sample.select(sample.npv >= 11)
    columns = ["npv", "met_pt"]
    thresholds = DriftThresholds(ks=0.1)  # ~1,200 events per half: KS noise reaches 0.06

    def table(s: EventSample) -> np.ndarray:
        return np.column_stack([s.npv, s.objects[:, 0, 0]])
    report = detect_drift(table(low), table(high), columns, thresholds)
    assert report.drifted and "npv" in report.drifted_features
    halves = detect_drift(table(sample.select(np.arange(0, 2421, 2))), table(sample.select(np.arange(1, 2421, 2))), columns,
                          thresholds)
    assert "npv" not in halves.drifted_features


def test_polar_mapping_and_class_name(tmp_path) -> None:
    path = tmp_path / "polar.root"
    with uproot.recreate(path) as f:
        f["t"] = {
            "nJet": np.array([3, 0], dtype=np.int32),
            "Jet_pt": ak.Array([[50.0, 120.0, 10.0], []]),
            "Jet_eta": ak.Array([[0.1, -4.5, 1.0], []]),
            "Jet_phi": ak.Array([[0.5, 1.0, 2.0], []]),
            "met_pt": np.array([25.0, 3.0]),
            "met_phi": np.array([1.0, -1.0]),
        }
    mapping = RootMapping.from_dict({
        "tree": "t",
        "objects": {"jet": [{"count": "nJet", "polar": {"pt": "Jet_pt", "eta": "Jet_eta", "phi": "Jet_phi"}}]},
        "met": {"polar": {"pt": "met_pt", "phi": "met_phi"}},
        "min_pt": {"jet": 20},
        "class_name": "my_signal",
    })
    sample = read_root(path, mapping)
    assert sample.classes == ("background", "my_signal") and sample.labels.tolist() == [1, 1]
    jets = sample.objects[:, 9:19]
    assert jets[0, 0].tolist() == pytest.approx([50.0, 0.1, 0.5])  # 120 GeV at eta -4.5 is outside acceptance
    assert np.all(jets[0, 1:] == 0) and np.all(jets[1] == 0)
    assert sample.objects[:, 0, 0].tolist() == [25.0, 3.0] and not sample.npv_known


def _write_tree(path: Path, **branches) -> Path:
    with uproot.recreate(path) as f:
        f["events"] = branches
    return path


def _muon_mapping(**extra) -> RootMapping:
    data = {"tree": "events", "objects": {"muon": [{"count": "nMu", "cartesian": {"px": "Mu_px", "py": "Mu_py", "pz": "Mu_pz"}}]}}
    data.update(extra)
    return RootMapping.from_dict(data)


def test_root_bad_input_names_file_and_branch(tmp_path, hzz_mapping: RootMapping) -> None:
    path = _write_tree(tmp_path / "nan.root", nMu=np.array([2, 1], dtype=np.int32),
                       Mu_px=ak.Array([[10.0, np.nan], [5.0]]), Mu_py=ak.Array([[1.0, 2.0], [3.0]]),
                       Mu_pz=ak.Array([[0.0, 1.0], [2.0]]))
    with pytest.raises(RootReadError, match=r"nan\.root: branch 'Mu_px' holds NaN or infinite values"):
        read_root(path, _muon_mapping())
    with pytest.raises(RootReadError, match=r"nan\.root: tree 'events' has no branch\(es\) NPV"):
        read_root(path, _muon_mapping(pileup="NPV"))
    with pytest.raises(RootReadError, match=r"no tree 'Events' \(trees: events\)"):
        read_root(path, _muon_mapping(tree="Events"))
    with pytest.raises(RootReadError, match="needs a branch mapping"):
        read_events(path)


def test_root_empty_truncated_and_not_root(tmp_path, shared_data: Path, hzz_mapping: RootMapping) -> None:
    empty_tree = _write_tree(tmp_path / "empty.root", x=np.zeros(0))
    with pytest.raises(RootReadError, match=r"empty\.root: tree 'events' holds no events"):
        read_root(empty_tree, RootMapping.from_dict({"tree": "events", "objects": {}, "pileup": "x"}))
    truncated = tmp_path / "cut.root"
    data = (shared_data / HZZ).read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(RootReadError, match=r"cut\.root: "):
        read_root(truncated, hzz_mapping)
    fake = tmp_path / "fake.root"
    fake.write_bytes(b"root" + b"\0" * 10)
    with pytest.raises(RootReadError, match=r"fake\.root: not a readable ROOT file"):
        read_events(fake, hzz_mapping)
    zero = tmp_path / "zero.root"
    zero.write_bytes(b"")
    with pytest.raises(RootReadError, match="the file is empty"):
        read_root(zero, hzz_mapping)


def test_count_branch_must_match_the_collection(tmp_path) -> None:
    path = tmp_path / "c.root"
    with uproot.recreate(path) as f:
        f["events"] = {"nMu": np.array([1, 2], dtype=np.int32),
                       "Mu_px": ak.Array([[1.0], [2.0]]), "Mu_py": ak.Array([[1.0], [2.0]]), "Mu_pz": ak.Array([[1.0], [2.0]])}
    with pytest.raises(RootReadError, match=r"count branch 'nMu' disagrees with the length of 'Mu_px' \(event 1\)"):
        read_root(path, _muon_mapping())


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"tree": "t", "objects": {"muons": []}}, r"objects\.muons: unknown key"),
        ({"tree": "t", "objects": {}, "colour": 1}, r"colour: unknown key"),
        ({"objects": {}}, r"tree: Field required"),
        ({"tree": "t", "objects": {"jet": [{"count": "n", "cartesian": {"px": "a", "py": "b", "pz": "c"},
                                            "polar": {"pt": "a", "eta": "b", "phi": "c"}}]}},
         r"objects\.jet\.0: give exactly one of 'cartesian'"),
        ({"tree": "t", "objects": {"jet": [{"count": "n", "cartesian": {"px": "a", "py": "b"}}]}},
         r"objects\.jet\.0\.cartesian\.pz: Field required"),
    ],
)
def test_mapping_errors_name_the_key(tmp_path, data: dict, message: str) -> None:
    path = tmp_path / "map.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(RootReadError, match=rf"map\.yaml: .*{message}"):
        RootMapping.from_yaml(path)


def test_shipped_mapping_lookup() -> None:
    assert shipped_mapping("uproot_hzz").is_file()
    with pytest.raises(RootReadError, match="no shipped mapping 'cms_nanoaod'; shipped: uproot_hzz"):
        shipped_mapping("cms_nanoaod")


def test_root_file_copied_elsewhere_reads_the_same(shared_data: Path, tmp_path) -> None:
    copy = tmp_path / "renamed.data"
    shutil.copy(shared_data / HZZ, copy)
    assert file_kind(copy) == "root"
    assert read_events(copy, "uproot_hzz").content_hash() == read_events(shared_data / HZZ, "uproot_hzz").content_hash()


def test_particles_stored_as_a_group_names_the_file(tmp_path) -> None:
    path = tmp_path / "group.h5"
    with h5py.File(path, "w") as f:
        f.create_group("Particles").create_dataset("pt", data=np.zeros((3, 19)))
    with pytest.raises(HDF5FormatError, match=r"group\.h5: 'Particles' is an HDF5 group, not a dataset") as info:
        read_hdf5(path)
    assert info.value.exit_code == 2


def test_jagged_or_float_count_and_pileup_branches_are_refused(tmp_path) -> None:
    """A count or pile-up column must be one integer per event: a jagged or float branch names itself."""
    good = {"nMu": np.array([2, 1], dtype=np.int32), "Mu_px": ak.Array([[10.0, 3.0], [5.0]]),
            "Mu_py": ak.Array([[1.0, 2.0], [3.0]]), "Mu_pz": ak.Array([[0.0, 1.0], [2.0]])}
    path = _write_tree(tmp_path / "b.root", **good, npv_float=np.array([12.0, 30.5]),
                       npv_jagged=ak.Array([[1, 2], [3]]), npv_int=np.array([12, 30], dtype=np.int32))
    assert read_root(path, _muon_mapping(pileup="npv_int")).npv.tolist() == [12, 30]
    with pytest.raises(RootReadError, match=r"b\.root: pile-up branch 'npv_float' holds float64 per event; "
                                            r"it must hold one integer count per event"):
        read_root(path, _muon_mapping(pileup="npv_float"))
    with pytest.raises(RootReadError, match=r"pile-up branch 'npv_jagged' holds var \* int64 per event"):
        read_root(path, _muon_mapping(pileup="npv_jagged"))
    # a jagged branch named as a collection's count
    mapping = RootMapping.from_dict({"tree": "events", "objects": {"muon": [
        {"count": "npv_jagged", "cartesian": {"px": "Mu_px", "py": "Mu_py", "pz": "Mu_pz"}}]}})
    with pytest.raises(RootReadError, match=r"count branch 'npv_jagged' holds var \* int64 per event") as info:
        read_root(path, mapping)
    assert info.value.exit_code == 2
