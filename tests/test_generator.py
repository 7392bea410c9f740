"""Layout, hardware units, EventSample and the conditions-aware generator."""

from __future__ import annotations

import math

import numpy as np
import pytest

from l1flow.conditions.payload import CalibrationScales, ConditionsPayload, EtaPhiBox, PtThresholds
from l1flow.data.generator import SIGNALS, GeneratorError, generate_events
from l1flow.data.layout import (
    ETA_LSB,
    FEATURE_NAMES,
    N_FEATURES,
    OBJECT_GROUPS,
    PHI_LSB,
    REGION_ET_MAX,
    LayoutError,
    from_hardware,
    group,
    region_et_to_hardware,
    region_of,
    to_hardware,
)
from l1flow.data.sample import EventSample, SampleError

NOMINAL = ConditionsPayload()
N = 6000


@pytest.fixture(scope="module")
def nominal() -> EventSample:
    return generate_events(NOMINAL, N, 1500, seed=11)


def _count(sample: EventSample, kind: str) -> np.ndarray:
    g = group(kind)
    return (sample.objects[:, g.slots, 0] > 0).sum(axis=1)


def _background(sample: EventSample) -> EventSample:
    return sample.select(sample.labels == 0)


# ---- layout ---------------------------------------------------------------


def test_feature_names_follow_the_19x3_layout() -> None:
    assert len(FEATURE_NAMES) == N_FEATURES == 57
    assert FEATURE_NAMES[:6] == ("met_pt", "met_eta", "met_phi", "eg0_pt", "eg0_eta", "eg0_phi")
    assert FEATURE_NAMES[15] == "mu0_pt" and FEATURE_NAMES[27] == "jet0_pt" and FEATURE_NAMES[-1] == "jet9_phi"
    assert [(g.name, g.count, g.eta_max) for g in OBJECT_GROUPS] == [
        ("met", 1, 0.0), ("egamma", 4, 3.0), ("muon", 4, 2.1), ("jet", 10, 4.0)
    ]


def test_hardware_words_round_saturate_and_wrap() -> None:
    objects = np.zeros((4, 19, 3), dtype=np.float32)
    objects[0, 9] = (100.26, 1.0, 0.5)  # jet: 100.26 GeV -> 201 words of 0.5 GeV
    objects[1, 1] = (300.0, -2.9, math.pi)  # e/gamma saturates at 9 bits; phi = pi wraps to -72
    objects[2, 9] = (5000.0, 3.9, -math.pi)  # jet saturates at 11 bits
    objects[3, 0] = (3000.0, 0.0, 1.0)  # MET saturates at 12 bits
    words = to_hardware(objects)
    assert words.dtype == np.int64
    assert tuple(words[0, 9]) == (201, round(1.0 / ETA_LSB), round(0.5 / PHI_LSB))
    assert tuple(words[1, 1]) == (511, round(-2.9 / ETA_LSB), -72)
    assert words[2, 9, 0] == 2047 and words[2, 9, 2] == -72
    assert words[3, 0, 0] == 4095
    assert np.all(words[0, 10:] == 0)  # padding stays all-zero
    back = from_hardware(words)
    assert abs(back[0, 9, 0] - 100.5) < 1e-6 and abs(back[0, 9, 1] - 1.0) <= ETA_LSB / 2


def test_hardware_roundtrip_is_exact_on_words(nominal: EventSample) -> None:
    words = to_hardware(nominal.objects)
    assert np.array_equal(to_hardware(from_hardware(words)), words)
    assert words[:, :, 2].min() >= -72 and words[:, :, 2].max() <= 71


def test_hardware_words_out_of_range_are_refused() -> None:
    words = np.zeros((2, 19, 3), dtype=np.int64)
    words[1, 3, 0] = 512  # a 9-bit e/gamma pT word cannot hold 512
    with pytest.raises(LayoutError, match="event 1, feature 'eg2_pt'"):
        from_hardware(words)


def test_layout_rejects_nan_and_wrong_shapes() -> None:
    bad = np.zeros((3, 19, 3), dtype=np.float32)
    bad[2, 12, 1] = np.nan
    with pytest.raises(LayoutError, match="event 2, feature 'jet3_eta'"):
        to_hardware(bad)
    with pytest.raises(LayoutError, match=r"expected shape \(N, 19, 3\)"):
        to_hardware(np.zeros((3, 57)))


def test_region_grid_indexing_and_saturation() -> None:
    assert region_of(np.array([-2.99]), np.array([-math.pi]))[0] == 0
    assert region_of(np.array([2.99]), np.array([math.pi - 1e-9]))[0] == 17 * 14 + 13
    assert region_of(np.array([3.5]), np.array([0.0]))[0] == -1
    words = region_et_to_hardware(np.array([0.2, 10.0, 511.5, 600.0, -3.0]))
    assert words.tolist() == [0, 20, REGION_ET_MAX, REGION_ET_MAX, 0]


# ---- EventSample ----------------------------------------------------------


def test_sample_select_concat_hash_and_save(nominal: EventSample, tmp_path) -> None:
    first, second = nominal.select(np.arange(100)), nominal.select(np.arange(100, 250))
    joined = EventSample.concat([first, second])
    assert joined.content_hash() == nominal.select(np.arange(250)).content_hash()
    assert first.content_hash() != second.content_hash()
    part = nominal.select(np.arange(2000))
    back = EventSample.load(part.save(tmp_path / "s.npz"))
    assert back.content_hash() == part.content_hash() and back.metadata["seed"] == "11"
    assert not list(tmp_path.glob(".*tmp"))
    assert nominal.features().shape == (len(nominal), 57) and nominal.hardware_features().dtype == np.int64


def test_concat_merges_classes_and_remaps_labels() -> None:
    objects = np.zeros((2, 19, 3), dtype=np.float32)
    a = EventSample(objects, np.array([0, 1]), ("background", "b_tau"))
    b = EventSample(objects, np.array([1, 1]), ("background", "tau_met"))
    joined = EventSample.concat([a, b])
    assert joined.classes == ("background", "b_tau", "tau_met")
    assert joined.labels.tolist() == [0, 1, 2, 2]


def test_sample_refuses_bad_fields() -> None:
    objects = np.zeros((3, 19, 3), dtype=np.float32)
    with pytest.raises(SampleError, match="labels: expected shape"):
        EventSample(objects, np.zeros(2, dtype=int))
    with pytest.raises(SampleError, match="values must be in"):
        EventSample(objects, np.array([0, 0, 2]), ("background", "x"))
    with pytest.raises(SampleError, match="first class must be 'background'"):
        EventSample(objects, np.zeros(3, dtype=int), ("signal",))
    with pytest.raises(SampleError, match="regions: expected shape"):
        EventSample(objects, np.zeros(3, dtype=int), regions=np.zeros((3, 14, 18), dtype=np.uint16))


def test_truncated_sample_file_is_a_clear_error(nominal: EventSample, tmp_path) -> None:
    path = nominal.select(np.arange(50)).save(tmp_path / "s.npz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(SampleError, match=str(path)):
        EventSample.load(path)


# ---- generator --------------------------------------------------------------


def test_generator_is_deterministic_and_labels_every_signal(nominal: EventSample) -> None:
    again = generate_events(NOMINAL, N, 1500, seed=11)
    assert again.content_hash() == nominal.content_hash()
    assert generate_events(NOMINAL, N, 1500, seed=12).content_hash() != nominal.content_hash()
    assert nominal.classes == ("background", *SIGNALS) and len(SIGNALS) >= 4
    assert np.bincount(nominal.labels).tolist() == [N, 1500, 1500, 1500, 1500]
    assert nominal.regions is not None and nominal.regions.shape == (len(nominal), 18, 14)


def test_background_does_not_depend_on_the_signals_requested() -> None:
    alone = generate_events(NOMINAL, 2000, 0, seed=5, with_regions=False)
    mixed = generate_events(NOMINAL, 2000, 300, seed=5, signals=["tau_met"], with_regions=False)
    background = mixed.select(mixed.labels == 0)
    order = lambda s: np.lexsort(s.features().T)  # noqa: E731  (events are shuffled differently)
    assert np.array_equal(alone.features()[order(alone)], background.features()[order(background)])


def test_objects_are_ordered_padded_and_inside_acceptance(nominal: EventSample) -> None:
    for g in OBJECT_GROUPS[1:]:
        block = nominal.objects[:, g.slots]
        pt = block[:, :, 0]
        assert np.all(np.diff(pt, axis=1) <= 0), g.name
        assert np.all(np.abs(block[:, :, 1][pt > 0]) < g.eta_max), g.name
        assert np.all(block[pt == 0] == 0), g.name
    assert np.all(nominal.objects[:, 0, 1] == 0)  # MET has eta 0


def test_thresholds_are_applied_and_raising_one_removes_objects(nominal: EventSample) -> None:
    jets = nominal.objects[:, 9:19, 0]
    assert jets[jets > 0].min() >= NOMINAL.thresholds.jet
    higher = generate_events(ConditionsPayload(thresholds=PtThresholds(jet=40.0)), N, 0, seed=11, with_regions=False)
    assert _count(higher, "jet").mean() < 0.8 * _count(_background(nominal), "jet").mean()
    pt = higher.objects[:, 9:19, 0]
    assert pt[pt > 0].min() >= 40.0


def test_signatures_differ_from_background(nominal: EventSample) -> None:
    bg = _background(nominal)
    four = nominal.select(nominal.class_mask("four_leptons"))
    tau_met = nominal.select(nominal.class_mask("tau_met"))
    b_tau = nominal.select(nominal.class_mask("b_tau"))
    leptons = lambda s: (_count(s, "egamma") + _count(s, "muon")).mean()  # noqa: E731
    assert leptons(four) > 3.0 > 0.6 > leptons(bg)
    assert np.median(tau_met.objects[:, 0, 0]) > 3 * np.median(bg.objects[:, 0, 0])
    assert np.median(b_tau.objects[:, 9, 0]) > 2 * np.median(bg.objects[:, 9, 0])
    # falling spectrum: each 20 GeV above the threshold holds fewer leading jets than the one before
    counts = np.histogram(bg.objects[:, 9, 0], bins=np.arange(20, 141, 20))[0]
    assert np.all(np.diff(counts) < 0)


def test_jet_calibration_scales_jet_pt_and_moves_met() -> None:
    base = generate_events(NOMINAL, N, 0, seed=3, with_regions=False)
    scaled = generate_events(ConditionsPayload(calibration=CalibrationScales(jet=1.1)), N, 0, seed=3, with_regions=False)
    ratio = np.median(scaled.objects[:, 9, 0]) / np.median(base.objects[:, 9, 0])
    assert 1.05 < ratio < 1.15
    # e/gamma and muons are untouched by the jet scale: same truth, same detector stream for them
    assert abs(np.median(scaled.objects[:, 5, 0][scaled.objects[:, 5, 0] > 0])
               - np.median(base.objects[:, 5, 0][base.objects[:, 5, 0] > 0])) < 0.5
    assert scaled.objects[:, 0, 0].mean() > base.objects[:, 0, 0].mean()


def test_met_scale_multiplies_met_and_egamma_scale_moves_egamma() -> None:
    base = generate_events(NOMINAL, N, 0, seed=4, with_regions=False)
    met_scaled = generate_events(ConditionsPayload(calibration=CalibrationScales(met=0.8)), N, 0, seed=4,
                                 with_regions=False)
    assert np.allclose(met_scaled.objects[:, 0, 0], 0.8 * base.objects[:, 0, 0], rtol=1e-5)
    assert np.array_equal(met_scaled.objects[:, 1:], base.objects[:, 1:])
    eg_scaled = generate_events(ConditionsPayload(calibration=CalibrationScales(egamma=1.2)), N, 0, seed=4,
                                with_regions=False)
    eg_base, eg_moved = base.objects[:, 1, 0], eg_scaled.objects[:, 1, 0]
    assert np.median(eg_moved[eg_moved > 0]) > 1.1 * np.median(eg_base[eg_base > 0])
    assert (eg_moved > 0).sum() > (eg_base > 0).sum()  # more candidates pass the 5 GeV threshold


def test_pileup_adds_soft_jets_worsens_met_and_fills_regions() -> None:
    low = generate_events(ConditionsPayload(mean_pileup=20), N, 0, seed=6)
    high = generate_events(ConditionsPayload(mean_pileup=140), N, 0, seed=6)
    assert abs(low.npv.mean() - 20) < 1 and abs(high.npv.mean() - 140) < 2
    assert _count(high, "jet").mean() > _count(low, "jet").mean() + 0.3
    assert high.objects[:, 0, 0].mean() > low.objects[:, 0, 0].mean() + 3.0
    assert high.regions.astype(float).sum(axis=(1, 2)).mean() > 1.5 * low.regions.astype(float).sum(axis=(1, 2)).mean()


def test_noise_raises_region_et_spread() -> None:
    quiet = generate_events(ConditionsPayload(noise_level=0.0, mean_pileup=0), 3000, 0, seed=8)
    noisy = generate_events(ConditionsPayload(noise_level=5.0, mean_pileup=0), 3000, 0, seed=8)
    assert (noisy.regions > 0).mean() > 2 * (quiet.regions > 0).mean()
    assert noisy.objects[:, 0, 0].mean() > quiet.objects[:, 0, 0].mean()


def test_masked_box_and_dead_regions_remove_objects_and_zero_the_grid() -> None:
    box = EtaPhiBox(eta_min=-1.5, eta_max=1.5, phi_min=0.0, phi_max=math.pi)
    dead = tuple(iphi * 14 + ieta for iphi in range(0, 9) for ieta in range(14))  # phi < 0 half of the grid
    masked = generate_events(ConditionsPayload(masked_boxes=(box,), masked_regions=dead), N, 0, seed=9)
    base = generate_events(NOMINAL, N, 0, seed=9)
    for sample, expect_empty in ((masked, True), (base, False)):
        jets = sample.objects[:, 9:19]
        present = jets[:, :, 0] > 0
        inside_box = present & (np.abs(jets[:, :, 1]) < 1.5) & (jets[:, :, 2] >= 0) & (jets[:, :, 2] < math.pi)
        inside_dead = present & (np.abs(jets[:, :, 1]) < 3.0) & (jets[:, :, 2] < 0)
        assert (inside_box.sum() == 0) == expect_empty
        assert (inside_dead.sum() == 0) == expect_empty
    assert np.all(masked.regions.reshape(len(masked), -1)[:, list(dead)] == 0)
    assert base.regions.reshape(len(base), -1)[:, list(dead)].sum() > 0
    # muons are outside the calorimeter: the default box (e/gamma, jets) keeps them
    assert _count(masked, "muon").sum() > 0.9 * _count(base, "muon").sum()


def test_generator_refuses_bad_arguments() -> None:
    with pytest.raises(GeneratorError, match="unknown signal"):
        generate_events(NOMINAL, 10, 10, seed=1, signals=["higgs_to_cats"])
    with pytest.raises(GeneratorError, match="must be >= 0"):
        generate_events(NOMINAL, -1, 0, seed=1)


@pytest.mark.slow
def test_background_autoencoder_separates_every_signal_but_not_trivially() -> None:
    """A small dense autoencoder trained on background: ROC AUC per signal in [0.65, 0.995]."""
    tf = pytest.importorskip("tensorflow")
    train = generate_events(NOMINAL, 40_000, 0, seed=21, with_regions=False)
    test = generate_events(NOMINAL, 10_000, 2_500, seed=22, with_regions=False)

    def prepare(sample: EventSample) -> np.ndarray:
        x = sample.features().astype(np.float64)
        x[:, 0::3] = np.log1p(x[:, 0::3])
        return x

    x_train = prepare(train)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-3
    x_train = (x_train - mean) / std
    x_test = (prepare(test) - mean) / std
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([
        tf.keras.layers.Input((57,)),
        tf.keras.layers.Dense(32, activation="relu"),
        tf.keras.layers.Dense(8, activation="relu"),
        tf.keras.layers.Dense(32, activation="relu"),
        tf.keras.layers.Dense(57),
    ])
    model.compile("adam", "mse")
    model.fit(x_train, x_train, epochs=8, batch_size=512, verbose=0)
    score = ((model.predict(x_test, verbose=0, batch_size=4096) - x_test) ** 2).mean(axis=1)
    background = score[test.labels == 0]
    aucs = {}
    for label, name in enumerate(test.classes[1:], start=1):
        signal = score[test.labels == label]
        # Mann-Whitney: fraction of (signal, background) pairs ranked correctly
        ranks = np.argsort(np.argsort(np.concatenate([background, signal])))
        aucs[name] = (ranks[len(background):].sum() - len(signal) * (len(signal) - 1) / 2) / (len(signal) * len(background))
    assert all(0.65 < auc < 0.995 for auc in aucs.values()), aucs
    assert aucs["four_leptons"] > aucs["two_taus"]
