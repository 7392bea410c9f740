"""A fast, conditions-aware generator of Level-1 trigger events.

Events are made in two independent random streams per process and chunk:

1. *truth*: the hard process (background W-, Z-, QCD-like topologies or one of
   the signals in :data:`SIGNALS`) as true objects plus the invisible
   transverse momentum (neutrinos);
2. *detector*: what the conditions do to it, in this order:
   pile-up (Poisson number of vertices around ``mean_pileup``; soft pile-up
   jets and extra ET fluctuations), resolution and noise smearing,
   calibration (pT x scale per object type), acceptance (abs(eta) per type),
   masked eta-phi boxes and dead grid regions (objects inside are lost),
   pT thresholds; MET is the invisible momentum plus everything mismeasured
   or lost, plus a soft term that grows with pile-up and noise, x the MET
   scale; the 18 x 14 region ET grid receives the calorimeter objects, the
   diffuse pile-up and noise, and reads 0 in dead regions.

Because the truth stream does not depend on the conditions, the same seed
under two conditions gives the same hard events seen by two detectors. Each
process has its own streams, so asking for more signals does not change the
background. Everything is vectorised numpy over chunks of events.

Kinematics are deliberately simple: two-body decays with a Jacobian peak
(pT* = m/2 sin theta*), a transverse boost and a rapidity, falling power-law
spectra for QCD and pile-up jets. Taus decay leptonically (35%, a softer e or
mu plus neutrinos) or hadronically (a narrower jet, sometimes with a pi0 e/gamma
candidate).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from l1flow.conditions.payload import ConditionsPayload
from l1flow.data.layout import (
    ETA,
    N_COMPONENTS,
    N_OBJECTS,
    PHI,
    PT,
    REGION_ETA_MAX,
    REGION_SHAPE,
    group,
    region_et_to_hardware,
    region_of,
    sort_and_pad,
)
from l1flow.data.sample import BACKGROUND, EventSample
from l1flow.errors import BadInputError
from l1flow.geometry import N_REGIONS

#: signal names, in the order their labels are assigned (label = 1 + position
#: among the requested signals)
SIGNALS: tuple[str, ...] = ("four_leptons", "b_tau", "two_taus", "tau_met")

#: fractions of the background mixture
BACKGROUND_MIXTURE: dict[str, float] = {"qcd": 0.75, "w": 0.17, "z": 0.08}

CHUNK = 1 << 14  # events generated together (arrays stay in cache-friendly sizes)

# truth slots per object type before the detector (the layout keeps the leading 4/4/10)
_TRUTH_SLOTS = {"egamma": 6, "muon": 6, "jet": 10}
_PILEUP_SLOTS = 16
# pile-up: soft jets per vertex (pT > 8 GeV, power-law index 3), diffuse ET per region
_PILEUP_JETS_PER_VERTEX = 0.1
_PILEUP_JET_PT0 = 8.0
_PILEUP_JET_INDEX = 3.0
_PILEUP_REGION_ET_PER_VERTEX = 0.03  # GeV mean per region per vertex
_NOISE_POOL = 1 << 16
# coverage used for MET: calorimeter to abs(eta) 5, muon system to 2.4
_CALO_COVERAGE = 5.0
_MUON_COVERAGE = 2.4

M_W, M_Z = 80.4, 91.2


class GeneratorError(BadInputError):
    """Bad arguments to the event generator."""


@dataclass
class _Truth:
    """True objects of n events, filled slot by slot."""

    n: int
    pt: dict[str, np.ndarray] = field(init=False)
    eta: dict[str, np.ndarray] = field(init=False)
    phi: dict[str, np.ndarray] = field(init=False)
    count: dict[str, np.ndarray] = field(init=False)
    invisible: np.ndarray = field(init=False)  # (n, 2) px, py of neutrinos

    def __post_init__(self) -> None:
        self.pt = {t: np.zeros((self.n, k)) for t, k in _TRUTH_SLOTS.items()}
        self.eta = {t: np.zeros((self.n, k)) for t, k in _TRUTH_SLOTS.items()}
        self.phi = {t: np.zeros((self.n, k)) for t, k in _TRUTH_SLOTS.items()}
        self.count = {t: np.zeros(self.n, dtype=np.int64) for t in _TRUTH_SLOTS}
        self.invisible = np.zeros((self.n, 2))

    def place(self, kind: str, idx: np.ndarray, pt: np.ndarray, eta: np.ndarray, phi: np.ndarray) -> None:
        """Put one object into the next free slot of each event in ``idx`` (unique indices)."""
        slot = self.count[kind][idx]
        ok = slot < _TRUTH_SLOTS[kind]
        idx, slot = idx[ok], slot[ok]
        self.pt[kind][idx, slot] = pt[ok]
        self.eta[kind][idx, slot] = eta[ok]
        self.phi[kind][idx, slot] = phi[ok]
        self.count[kind][idx] += 1

    def add_invisible(self, idx: np.ndarray, pt: np.ndarray, phi: np.ndarray) -> None:
        self.invisible[idx, 0] += pt * np.cos(phi)
        self.invisible[idx, 1] += pt * np.sin(phi)


def _wrap(phi: np.ndarray) -> np.ndarray:
    return np.mod(phi + math.pi, 2 * math.pi) - math.pi


def _pareto(rng: np.random.Generator, pt0: float, index: float, size: int | tuple[int, ...]) -> np.ndarray:
    """Falling power-law spectrum dN/dpT ~ pT^-(index+1) above pt0."""
    return pt0 * rng.random(size) ** (-1.0 / index)


@dataclass
class _Pair:
    """Two decay products: transverse momenta, directions and pseudorapidities."""

    pt1: np.ndarray
    eta1: np.ndarray
    phi1: np.ndarray
    pt2: np.ndarray
    eta2: np.ndarray
    phi2: np.ndarray


def _decay(
    rng: np.random.Generator, pstar: float, px: np.ndarray, py: np.ndarray, rapidity: np.ndarray
) -> _Pair:
    """Isotropic two-body decay of a parent with transverse momentum (px, py).

    Each daughter gets pT* = pstar sin(theta*) back to back in the parent frame
    (the Jacobian peak) plus half the parent's transverse momentum, and
    eta = rapidity +- atanh(cos theta*) (massless daughters).
    """
    n = px.shape[0]
    cos = rng.uniform(-0.999, 0.999, n)
    ptstar = pstar * np.sqrt(1.0 - cos * cos)
    az = rng.uniform(-math.pi, math.pi, n)
    ax, ay = ptstar * np.cos(az), ptstar * np.sin(az)
    x1, y1 = ax + px / 2, ay + py / 2
    x2, y2 = -ax + px / 2, -ay + py / 2
    etastar = np.arctanh(cos)
    return _Pair(
        np.hypot(x1, y1), rapidity + etastar, np.arctan2(y1, x1),
        np.hypot(x2, y2), rapidity - etastar, np.arctan2(y2, x2),
    )


def _resonance(rng: np.random.Generator, mass: float, n: int, qt_mean: float, y_sigma: float = 1.0) -> _Pair:
    """A resonance of ``mass`` with exponential transverse boost decaying to two massless daughters."""
    qt = rng.exponential(qt_mean, n)
    qphi = rng.uniform(-math.pi, math.pi, n)
    return _decay(rng, mass / 2, qt * np.cos(qphi), qt * np.sin(qphi), rng.normal(0.0, y_sigma, n))


def _lepton(rng: np.random.Generator, truth: _Truth, idx: np.ndarray, pt: np.ndarray, eta: np.ndarray,
            phi: np.ndarray, muon_fraction: float = 0.5) -> None:
    is_mu = rng.random(idx.size) < muon_fraction
    truth.place("muon", idx[is_mu], pt[is_mu], eta[is_mu], phi[is_mu])
    truth.place("egamma", idx[~is_mu], pt[~is_mu], eta[~is_mu], phi[~is_mu])


def _tau(rng: np.random.Generator, truth: _Truth, idx: np.ndarray, pt: np.ndarray, eta: np.ndarray,
         phi: np.ndarray) -> None:
    """A tau lepton: 35% leptonic (e or mu), 65% hadronic (a jet, 40% with a pi0 e/gamma)."""
    n = idx.size
    leptonic = rng.random(n) < 0.35
    visible = np.where(leptonic, rng.uniform(0.15, 0.75, n), rng.uniform(0.4, 1.0, n))
    vis_pt = pt * visible
    _lepton(rng, truth, idx[leptonic], vis_pt[leptonic], eta[leptonic], phi[leptonic])
    had = ~leptonic
    truth.place("jet", idx[had], vis_pt[had], eta[had], phi[had])
    pi0 = had & (rng.random(n) < 0.4)
    truth.place("egamma", idx[pi0], vis_pt[pi0] * rng.uniform(0.3, 0.7, int(pi0.sum())), eta[pi0], phi[pi0])
    truth.add_invisible(idx, pt * (1.0 - visible), phi)


def _b_jet(rng: np.random.Generator, truth: _Truth, idx: np.ndarray, pt: np.ndarray, eta: np.ndarray,
           phi: np.ndarray) -> None:
    """A b jet; 20% semileptonic, with a soft non-isolated muon and a neutrino."""
    truth.place("jet", idx, pt, eta, phi)
    semi = rng.random(idx.size) < 0.2
    frac = rng.uniform(0.05, 0.25, int(semi.sum()))
    truth.place("muon", idx[semi], pt[semi] * frac, eta[semi], phi[semi])
    truth.add_invisible(idx[semi], pt[semi] * frac * 0.5, phi[semi])


def _recoil_jets(rng: np.random.Generator, truth: _Truth, idx: np.ndarray, qt_x: np.ndarray,
                 qt_y: np.ndarray, extra_mean: float) -> None:
    """Initial-state radiation balancing a boson's transverse momentum, plus extra soft jets."""
    n = idx.size
    truth.place("jet", idx, np.hypot(qt_x, qt_y), rng.normal(0.0, 1.8, n), np.arctan2(-qt_y, -qt_x))
    extra = rng.poisson(extra_mean, n)
    for k in range(int(extra.max(initial=0))):
        sel = extra > k
        m = int(sel.sum())
        truth.place("jet", idx[sel], _pareto(rng, 15.0, 3.5, m), rng.normal(0.0, 1.8, m),
                    rng.uniform(-math.pi, math.pi, m))


def _boson_qt(pair: _Pair) -> tuple[np.ndarray, np.ndarray]:
    x = pair.pt1 * np.cos(pair.phi1) + pair.pt2 * np.cos(pair.phi2)
    y = pair.pt1 * np.sin(pair.phi1) + pair.pt2 * np.sin(pair.phi2)
    return x, y


# ---- background processes -------------------------------------------------


def _qcd(rng: np.random.Generator, truth: _Truth, idx: np.ndarray) -> None:
    """Multijet: a back-to-back dijet on a falling spectrum, extra jets, fakes and heavy flavour."""
    n = idx.size
    pthat = _pareto(rng, 22.0, 4.0, n)
    phi1 = rng.uniform(-math.pi, math.pi, n)
    y = rng.normal(0.0, 1.2, n)
    dy = rng.normal(0.0, 1.0, n)
    pt1 = pthat * rng.uniform(0.85, 1.15, n)
    pt2 = pthat * rng.uniform(0.65, 1.0, n)
    phi2 = _wrap(phi1 + math.pi + rng.normal(0.0, 0.25, n))
    truth.place("jet", idx, pt1, y + dy, phi1)
    truth.place("jet", idx, pt2, y - dy, phi2)
    extra = rng.poisson(0.9, n)
    for k in range(int(extra.max(initial=0))):
        sel = extra > k
        m = int(sel.sum())
        pt = np.minimum(_pareto(rng, 15.0, 3.5, m), pthat[sel])
        truth.place("jet", idx[sel], pt, rng.normal(0.0, 1.8, m), rng.uniform(-math.pi, math.pi, m))
    # a jet faking an e/gamma candidate, and heavy-flavour muons inside a jet
    fake = rng.random(n) < 0.15
    truth.place("egamma", idx[fake], pt1[fake] * rng.uniform(0.2, 0.7, int(fake.sum())), (y + dy)[fake], phi1[fake])
    heavy = rng.random(n) < 0.06
    frac = rng.uniform(0.05, 0.3, int(heavy.sum()))
    truth.place("muon", idx[heavy], pt2[heavy] * frac, (y - dy)[heavy], phi2[heavy])
    truth.add_invisible(idx[heavy], pt2[heavy] * frac * 0.5, phi2[heavy])


def _w(rng: np.random.Generator, truth: _Truth, idx: np.ndarray) -> None:
    """W -> l nu (l = e, mu, or tau 1 in 5) with initial-state jets."""
    pair = _resonance(rng, M_W, idx.size, qt_mean=12.0)
    is_tau = rng.random(idx.size) < 0.2
    _lepton(rng, truth, idx[~is_tau], pair.pt1[~is_tau], pair.eta1[~is_tau], pair.phi1[~is_tau])
    _tau(rng, truth, idx[is_tau], pair.pt1[is_tau], pair.eta1[is_tau], pair.phi1[is_tau])
    truth.add_invisible(idx, pair.pt2, pair.phi2)
    qx, qy = _boson_qt(pair)
    _recoil_jets(rng, truth, idx, qx, qy, extra_mean=0.6)


def _z(rng: np.random.Generator, truth: _Truth, idx: np.ndarray) -> None:
    """Z -> l l (same flavour) with initial-state jets."""
    pair = _resonance(rng, M_Z, idx.size, qt_mean=12.0)
    is_mu = rng.random(idx.size) < 0.5
    for pt, eta, phi in ((pair.pt1, pair.eta1, pair.phi1), (pair.pt2, pair.eta2, pair.phi2)):
        truth.place("muon", idx[is_mu], pt[is_mu], eta[is_mu], phi[is_mu])
        truth.place("egamma", idx[~is_mu], pt[~is_mu], eta[~is_mu], phi[~is_mu])
    qx, qy = _boson_qt(pair)
    _recoil_jets(rng, truth, idx, qx, qy, extra_mean=0.6)


# ---- signals ---------------------------------------------------------------


def _four_leptons(rng: np.random.Generator, truth: _Truth, idx: np.ndarray) -> None:
    """A scalar of 250 GeV -> Z Z -> 4 leptons (each Z to ee or mumu)."""
    n = idx.size
    mass = 250.0
    pz = math.sqrt((mass / 2) ** 2 - M_Z**2)
    zz = _resonance(rng, 2 * pz, n, qt_mean=15.0)
    for zpt, zeta, zphi in ((zz.pt1, zz.eta1, zz.phi1), (zz.pt2, zz.eta2, zz.phi2)):
        pair = _decay(rng, M_Z / 2, zpt * np.cos(zphi), zpt * np.sin(zphi), zeta)
        is_mu = rng.random(n) < 0.5
        for pt, eta, phi in ((pair.pt1, pair.eta1, pair.phi1), (pair.pt2, pair.eta2, pair.phi2)):
            truth.place("muon", idx[is_mu], pt[is_mu], eta[is_mu], phi[is_mu])
            truth.place("egamma", idx[~is_mu], pt[~is_mu], eta[~is_mu], phi[~is_mu])
    qx, qy = _boson_qt(zz)
    _recoil_jets(rng, truth, idx, qx, qy, extra_mean=0.5)


def _b_tau(rng: np.random.Generator, truth: _Truth, idx: np.ndarray) -> None:
    """A leptoquark-like resonance of 300 GeV -> b tau."""
    pair = _resonance(rng, 300.0, idx.size, qt_mean=15.0)
    _b_jet(rng, truth, idx, pair.pt1, pair.eta1, pair.phi1)
    _tau(rng, truth, idx, pair.pt2, pair.eta2, pair.phi2)
    qx, qy = _boson_qt(pair)
    _recoil_jets(rng, truth, idx, qx, qy, extra_mean=0.5)


def _two_taus(rng: np.random.Generator, truth: _Truth, idx: np.ndarray) -> None:
    """A scalar of 125 GeV -> tau tau."""
    pair = _resonance(rng, 125.0, idx.size, qt_mean=20.0)
    _tau(rng, truth, idx, pair.pt1, pair.eta1, pair.phi1)
    _tau(rng, truth, idx, pair.pt2, pair.eta2, pair.phi2)
    qx, qy = _boson_qt(pair)
    _recoil_jets(rng, truth, idx, qx, qy, extra_mean=0.5)


def _tau_met(rng: np.random.Generator, truth: _Truth, idx: np.ndarray) -> None:
    """A W'-like resonance of 500 GeV -> tau nu: a tau and large MET."""
    pair = _resonance(rng, 500.0, idx.size, qt_mean=12.0)
    _tau(rng, truth, idx, pair.pt1, pair.eta1, pair.phi1)
    truth.add_invisible(idx, pair.pt2, pair.phi2)
    qx, qy = _boson_qt(pair)
    _recoil_jets(rng, truth, idx, qx, qy, extra_mean=0.5)


_Process = Callable[[np.random.Generator, _Truth, np.ndarray], None]
_BACKGROUND_PROCESSES: dict[str, _Process] = {"qcd": _qcd, "w": _w, "z": _z}
_SIGNAL_PROCESSES: dict[str, _Process] = {
    "four_leptons": _four_leptons,
    "b_tau": _b_tau,
    "two_taus": _two_taus,
    "tau_met": _tau_met,
}


# ---- detector --------------------------------------------------------------


@dataclass
class _Detected:
    objects: np.ndarray  # (n, 19, 3) float32
    npv: np.ndarray  # (n,) int32
    regions: np.ndarray | None  # (n, 18, 14) uint16


def _resolution(kind: str, pt: np.ndarray) -> np.ndarray:
    """Relative pT resolution per object type (stochastic and constant terms)."""
    safe = np.maximum(pt, 1.0)
    if kind == "jet":
        return np.sqrt(1.0 / safe + 0.05**2)
    if kind == "egamma":
        return np.sqrt(0.04 / safe + 0.02**2)
    return np.full_like(pt, 0.08)


def _masked(kind: str, eta: np.ndarray, phi: np.ndarray, cond: ConditionsPayload) -> np.ndarray:
    """Objects of ``kind`` lost in masked boxes or (calorimeter objects) dead regions."""
    lost = np.zeros(eta.shape, dtype=bool)
    for box in cond.masked_boxes:
        if kind in box.types:
            lost |= (eta >= box.eta_min) & (eta < box.eta_max) & (phi >= box.phi_min) & (phi < box.phi_max)
    if kind != "muon" and cond.masked_regions:
        dead = np.zeros(N_REGIONS + 1, dtype=bool)  # index -1 (outside the grid) -> last, never dead
        dead[list(cond.masked_regions)] = True
        lost |= dead[region_of(eta, phi)]
    return lost


def _detect(rng: np.random.Generator, truth: _Truth, cond: ConditionsPayload, with_regions: bool) -> _Detected:
    n = truth.n
    npv = rng.poisson(cond.mean_pileup, n)
    # pile-up jets join the true jets (they are real energy, balanced elsewhere in the event)
    n_pu = np.minimum(rng.poisson(npv * _PILEUP_JETS_PER_VERTEX), _PILEUP_SLOTS)
    pu_rows = np.repeat(np.arange(n), n_pu)
    pu_cols = np.arange(pu_rows.size) - np.repeat(np.cumsum(n_pu) - n_pu, n_pu)
    pu_pt = _pareto(rng, _PILEUP_JET_PT0, _PILEUP_JET_INDEX, pu_rows.size)
    pu_eta = rng.uniform(-4.7, 4.7, pu_rows.size)
    pu_phi = rng.uniform(-math.pi, math.pi, pu_rows.size)

    scales = cond.calibration
    noise = cond.noise_level
    mismeasured = np.zeros((n, 2))
    objects = np.zeros((n, N_OBJECTS, N_COMPONENTS), dtype=np.float32)
    deposits: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for kind in ("egamma", "muon", "jet"):
        # only the objects that exist are smeared and tested (most slots are empty)
        present = truth.pt[kind] > 0
        rows, cols = np.nonzero(present)
        true_pt, eta, phi = truth.pt[kind][present], truth.eta[kind][present], _wrap(truth.phi[kind][present])
        width = _TRUTH_SLOTS[kind]
        if kind == "jet":
            rows, cols = np.concatenate([rows, pu_rows]), np.concatenate([cols, width + pu_cols])
            true_pt = np.concatenate([true_pt, pu_pt])
            eta, phi = np.concatenate([eta, pu_eta]), np.concatenate([phi, pu_phi])
            width += _PILEUP_SLOTS
        size = true_pt.size
        pt = true_pt * (1.0 + _resolution(kind, true_pt) * rng.standard_normal(size))
        if kind == "jet":
            # pile-up and noise fluctuations inside the jet cone (about four regions)
            pt += np.sqrt(0.25 * npv[rows] + 4.0 * noise**2) * rng.standard_normal(size)
        elif kind == "egamma":
            pt += noise * rng.standard_normal(size)
        pt = np.maximum(pt * getattr(scales, kind), 0.0)
        coverage = _MUON_COVERAGE if kind == "muon" else _CALO_COVERAGE
        measured = (np.abs(eta) < coverage) & ~_masked(kind, eta, phi, cond)
        pt = np.where(measured, pt, 0.0)
        lost = true_pt - pt  # mismeasured or unmeasured momentum shows up as MET
        mismeasured[:, 0] += np.bincount(rows, weights=lost * np.cos(phi), minlength=n)
        mismeasured[:, 1] += np.bincount(rows, weights=lost * np.sin(phi), minlength=n)
        if kind != "muon":
            deposits.append((rows, pt, eta, phi))
        g = group(kind)
        keep = measured & (np.abs(eta) < g.eta_max) & (pt >= getattr(cond.thresholds, kind))
        grid = np.zeros((3, n, width))
        at = (rows[keep], cols[keep])
        grid[0][at], grid[1][at], grid[2][at] = pt[keep], eta[keep], phi[keep]
        objects[:, g.slots] = sort_and_pad(grid[0], grid[1], grid[2], g.count)

    # soft (unclustered) term: grows with pile-up and noise
    soft_sigma = np.sqrt(9.0 + 0.5 * npv + 10.0 * noise**2)
    met_vec = truth.invisible + mismeasured + soft_sigma[:, None] * rng.standard_normal((n, 2))
    met = np.hypot(met_vec[:, 0], met_vec[:, 1]) * scales.met
    met_group = group("met")
    objects[:, met_group.start, PT] = met
    objects[:, met_group.start, ETA] = 0.0
    objects[:, met_group.start, PHI] = np.where(met > 0, np.arctan2(met_vec[:, 1], met_vec[:, 0]), 0.0)

    regions = _regions(rng, n, npv, deposits, cond) if with_regions else None
    return _Detected(objects, npv.astype(np.int32), regions)


def _regions(rng: np.random.Generator, n: int, npv: np.ndarray,
             deposits: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
             cond: ConditionsPayload) -> np.ndarray:
    """18 x 14 region ET words: calorimeter objects, diffuse pile-up, noise; dead regions read 0."""
    # Diffuse pile-up and noise: each event reads a random window of a shared pool of
    # standard normals (independent within an event; drawing n x 252 fresh normals
    # would cost more than the rest of the generator).
    pool = rng.standard_normal(_NOISE_POOL + N_REGIONS, dtype=np.float32)
    windows = np.lib.stride_tricks.sliding_window_view(pool, N_REGIONS)
    et = windows[rng.integers(0, _NOISE_POOL, n)]
    mean = (_PILEUP_REGION_ET_PER_VERTEX * npv).astype(np.float32)
    sigma = np.sqrt(cond.noise_level**2 + 0.5 * mean).astype(np.float32)
    et *= sigma[:, None]
    et += mean[:, None]
    for rows, pt, eta, phi in deposits:
        inside = (pt > 0) & (np.abs(eta) < REGION_ETA_MAX)
        flat = rows[inside] * N_REGIONS + region_of(eta[inside], phi[inside])
        np.add.at(et.reshape(-1), flat, pt[inside].astype(np.float32))
    if cond.masked_regions:
        et[:, list(cond.masked_regions)] = 0.0
    return region_et_to_hardware(et).reshape(n, *REGION_SHAPE)


# ---- public entry point ----------------------------------------------------


def _process_id(name: str) -> int:
    return zlib.crc32(name.encode())


def _processes(n_background: int, n_signal: int, signals: Sequence[str]) -> list[tuple[str, _Process, int, int]]:
    """(name, process, number of events, label) in generation order."""
    names = list(BACKGROUND_MIXTURE)
    counts = [int(round(n_background * BACKGROUND_MIXTURE[k])) for k in names]
    counts[0] += n_background - sum(counts)
    plan = [(k, _BACKGROUND_PROCESSES[k], c, 0) for k, c in zip(names, counts)]
    plan += [(s, _SIGNAL_PROCESSES[s], n_signal, i + 1) for i, s in enumerate(signals)]
    return plan


def generate_events(
    conditions: ConditionsPayload,
    n_background: int,
    n_signal: int,
    seed: int,
    signals: Sequence[str] | None = None,
    *,
    with_regions: bool = True,
) -> EventSample:
    """Generate ``n_background`` background events and ``n_signal`` events of EACH signal.

    ``signals`` picks and orders the signals (default: all of :data:`SIGNALS`);
    the sample's classes are ``("background", *signals)``. Events are shuffled
    (deterministically). ``with_regions=False`` skips the 18 x 14 grid (4x less
    memory for very large samples). Deterministic for (conditions, sizes, seed,
    signals).
    """
    if n_background < 0 or n_signal < 0:
        raise GeneratorError(f"event counts must be >= 0, got n_background={n_background}, n_signal={n_signal}")
    if not isinstance(conditions, ConditionsPayload):
        raise GeneratorError(f"conditions must be a ConditionsPayload, got {type(conditions).__name__}")
    chosen = tuple(SIGNALS if signals is None else signals)
    unknown = [s for s in chosen if s not in _SIGNAL_PROCESSES]
    if unknown:
        raise GeneratorError(f"unknown signal(s) {unknown}; choose from {list(SIGNALS)}")
    if len(set(chosen)) != len(chosen):
        raise GeneratorError(f"signals repeat: {list(chosen)}")
    if seed < 0:
        raise GeneratorError(f"seed must be >= 0, got {seed}")

    plan = _processes(n_background, n_signal, chosen)
    total = sum(n for _, _, n, _ in plan)
    # events are written straight to their shuffled position: destination[i] is where
    # the i-th generated event goes
    shuffle_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_process_id("shuffle"),)))
    destination = np.empty(total, dtype=np.int64)
    destination[shuffle_rng.permutation(total)] = np.arange(total)
    objects = np.empty((total, N_OBJECTS, N_COMPONENTS), dtype=np.float32)
    labels = np.empty(total, dtype=np.int64)
    npv = np.empty(total, dtype=np.int32)
    regions = np.empty((total, *REGION_SHAPE), dtype=np.uint16) if with_regions else None
    offset = 0
    for name, process, n, label in plan:
        for chunk, start in enumerate(range(0, n, CHUNK)):
            size = min(CHUNK, n - start)
            key = _process_id(name)
            truth_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(key, chunk, 0)))
            detector_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(key, chunk, 1)))
            truth = _Truth(size)
            process(truth_rng, truth, np.arange(size))
            detected = _detect(detector_rng, truth, conditions, with_regions)
            where = destination[offset : offset + size]
            objects[where] = detected.objects
            labels[where] = label
            npv[where] = detected.npv
            if regions is not None:
                regions[where] = detected.regions
            offset += size
    return EventSample(
        objects=objects,
        labels=labels,
        classes=(BACKGROUND, *chosen),
        npv=npv,
        regions=regions,
        metadata={
            "generator": "l1flow.data.generator/1",
            "seed": str(seed),
            "conditions_hash": conditions.content_hash(),
            "n_background": str(n_background),
            "n_signal_per_class": str(n_signal),
        },
    )
