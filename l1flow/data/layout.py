"""The Level-1 object layout and its hardware integer units.

Every event is 19 objects x (pT, eta, phi) = 57 inputs, as in the public LHC
anomaly-detection challenge and AXOL1TL:

====== ========= ===== ======================== ====================
slot   group     count acceptance               pT word (LSB 0.5 GeV)
====== ========= ===== ======================== ====================
0      MET       1     eta = 0 by definition    12 bits, <= 2047.5 GeV
1-4    e/gamma   4     abs(eta) < 3.0           9 bits, <= 255.5 GeV
5-8    muons     4     abs(eta) < 2.1           9 bits, <= 255.5 GeV
9-18   jets      10    abs(eta) < 4.0           11 bits, <= 1023.5 GeV
====== ========= ===== ======================== ====================

Within a group objects are ordered by decreasing pT; missing objects are all
zeros (pT = eta = phi = 0), after the real ones.

Hardware integer units (what the firmware sees; the widths follow the CMS
Stage-2 trigger's hwPt / hwEta / hwPhi):

- pT: unsigned, LSB ``PT_LSB`` = 0.5 GeV, rounded to nearest (ties to even),
  saturating at the group's maximum word (``2**pt_bits - 1``).
- eta: signed 8 bits, LSB ``ETA_LSB`` = 0.0435 (half a 0.087 calorimeter
  tower), saturating at [-128, 127] (abs(eta) <= 5.5, beyond every acceptance).
- phi: signed 8 bits, LSB ``PHI_LSB`` = 2 pi / 144 rad (the calorimeter's 144
  phi towers), wrapped to [-72, 71]: phi = +pi and -pi are the same word -72.
- A padded object (pT word 0) has eta and phi words 0 too.

The CICADA-like calorimeter grid is 18 (phi) x 14 (eta) regions covering
abs(eta) < 3.0 with uniform widths (6/14 in eta, 20 degrees in phi; CMS's
regions are close to this but not uniform). Each region holds a 10-bit
unsigned ET word, LSB ``REGION_ET_LSB`` = 0.5 GeV, saturating at 1023.
A region's flat index is ``iphi * 14 + ieta`` (0..251).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from l1flow.errors import BadInputError
from l1flow.geometry import REGION_ETA, REGION_PHI


@dataclass(frozen=True)
class ObjectGroup:
    """A group of consecutive object slots of one type."""

    name: str  # object type: "met", "egamma", "muon" or "jet"
    prefix: str  # feature-name prefix ("met", "eg", "mu", "jet")
    start: int  # first object slot
    count: int  # number of slots
    eta_max: float  # acceptance: abs(eta) < eta_max (0 for MET)
    pt_bits: int  # width of the unsigned pT word

    @property
    def stop(self) -> int:
        return self.start + self.count

    @property
    def slots(self) -> slice:
        return slice(self.start, self.stop)

    @property
    def pt_word_max(self) -> int:
        return (1 << self.pt_bits) - 1

    @property
    def pt_max(self) -> float:
        """Largest representable pT in GeV (where the word saturates)."""
        return self.pt_word_max * PT_LSB


OBJECT_GROUPS: tuple[ObjectGroup, ...] = (
    ObjectGroup("met", "met", 0, 1, 0.0, 12),
    ObjectGroup("egamma", "eg", 1, 4, 3.0, 9),
    ObjectGroup("muon", "mu", 5, 4, 2.1, 9),
    ObjectGroup("jet", "jet", 9, 10, 4.0, 11),
)
GROUPS_BY_NAME: dict[str, ObjectGroup] = {g.name: g for g in OBJECT_GROUPS}
OBJECT_TYPES: tuple[str, ...] = tuple(g.name for g in OBJECT_GROUPS)

N_OBJECTS = 19
N_COMPONENTS = 3
N_FEATURES = N_OBJECTS * N_COMPONENTS
COMPONENTS: tuple[str, ...] = ("pt", "eta", "phi")
PT, ETA, PHI = 0, 1, 2


def _feature_names() -> tuple[str, ...]:
    names: list[str] = []
    for g in OBJECT_GROUPS:
        for i in range(g.count):
            stem = g.prefix if g.count == 1 else f"{g.prefix}{i}"
            names.extend(f"{stem}_{c}" for c in COMPONENTS)
    return tuple(names)


#: the 57 feature names in the order of ``objects.reshape(N, 57)``:
#: "met_pt", "met_eta", "met_phi", "eg0_pt", ..., "jet9_phi"
FEATURE_NAMES: tuple[str, ...] = _feature_names()

PT_LSB = 0.5  # GeV
ETA_LSB = 0.087 / 2
PHI_LSB = 2.0 * math.pi / 144
ETA_WORD_MIN, ETA_WORD_MAX = -128, 127
PHI_WORD_MIN, PHI_WORD_MAX = -72, 71
PHI_WORDS = 144

REGION_SHAPE = (REGION_PHI, REGION_ETA)
REGION_ETA_MAX = 3.0
REGION_ET_LSB = 0.5  # GeV
REGION_ET_BITS = 10
REGION_ET_MAX = (1 << REGION_ET_BITS) - 1  # 1023
REGION_ETA_EDGES = np.linspace(-REGION_ETA_MAX, REGION_ETA_MAX, REGION_ETA + 1)

assert len(FEATURE_NAMES) == N_FEATURES
assert sum(g.count for g in OBJECT_GROUPS) == N_OBJECTS


class LayoutError(BadInputError):
    """An array does not have the 19 x 3 object layout or holds bad values."""


def group(name: str) -> ObjectGroup:
    """The object group called ``name`` ("met", "egamma", "muon", "jet")."""
    try:
        return GROUPS_BY_NAME[name]
    except KeyError:
        raise LayoutError(f"unknown object type {name!r}; expected one of {', '.join(OBJECT_TYPES)}") from None


def slot_group_index() -> np.ndarray:
    """For each of the 19 slots, the index of its group in OBJECT_GROUPS."""
    out = np.empty(N_OBJECTS, dtype=np.int64)
    for i, g in enumerate(OBJECT_GROUPS):
        out[g.slots] = i
    return out


def _pt_word_max_per_slot() -> np.ndarray:
    out = np.empty(N_OBJECTS, dtype=np.int64)
    for g in OBJECT_GROUPS:
        out[g.slots] = g.pt_word_max
    return out


PT_WORD_MAX_PER_SLOT = _pt_word_max_per_slot()


def check_objects(objects: np.ndarray, where: str = "objects") -> np.ndarray:
    """Return ``objects`` as float32 (N, 19, 3), or raise naming what is wrong."""
    arr = np.asarray(objects)
    if arr.ndim != 3 or arr.shape[1:] != (N_OBJECTS, N_COMPONENTS):
        raise LayoutError(f"{where}: expected shape (N, {N_OBJECTS}, {N_COMPONENTS}), got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number):
        raise LayoutError(f"{where}: expected numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float32, copy=False)
    bad = ~np.isfinite(arr)
    if bad.any():
        event, slot, comp = (int(v) for v in np.argwhere(bad)[0])
        name = FEATURE_NAMES[slot * N_COMPONENTS + comp]
        raise LayoutError(
            f"{where}: {int(bad.sum())} value(s) are NaN or infinite, first in event {event}, feature {name!r}"
        )
    negative = arr[:, :, PT] < 0
    if negative.any():
        event, slot = (int(v) for v in np.argwhere(negative)[0])
        raise LayoutError(f"{where}: negative pT in event {event}, feature {FEATURE_NAMES[slot * N_COMPONENTS]!r}")
    return arr


def _word_bounds() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per feature (57): scale to words, lowest and highest word (phi is wrapped, not clipped)."""
    scale = np.tile(np.array([1.0 / PT_LSB, 1.0 / ETA_LSB, 1.0 / PHI_LSB], dtype=np.float32), N_OBJECTS)
    low = np.tile(np.array([0, ETA_WORD_MIN, -np.inf], dtype=np.float32), N_OBJECTS)
    high = np.tile(np.array([0, ETA_WORD_MAX, np.inf], dtype=np.float32), N_OBJECTS)
    high[PT::N_COMPONENTS] = PT_WORD_MAX_PER_SLOT
    return scale, low, high


_WORD_SCALE, _WORD_LOW, _WORD_HIGH = _word_bounds()


def to_hardware(objects: np.ndarray) -> np.ndarray:
    """Physical (N, 19, 3) objects -> int64 hardware words (N, 19, 3).

    pT rounds to 0.5 GeV words saturating per group; eta and phi to their LSBs
    (eta saturating, phi wrapped); padded objects become all-zero words.
    """
    arr = check_objects(objects)
    n = arr.shape[0]
    # (N, 57) rows keep numpy's inner loops long (a trailing axis of 3 is slow)
    words = np.multiply(arr.reshape(n, N_FEATURES), _WORD_SCALE, dtype=np.float32)
    np.rint(words, out=words)
    np.minimum(words, _WORD_HIGH, out=words)
    np.maximum(words, _WORD_LOW, out=words)
    phi = words[:, PHI::N_COMPONENTS]
    outside = (phi < PHI_WORD_MIN) | (phi > PHI_WORD_MAX)
    if outside.any():  # only phi at +pi (or beyond) needs wrapping
        phi[outside] -= PHI_WORDS * np.floor((phi[outside] - PHI_WORD_MIN) / PHI_WORDS)
    words *= np.repeat(words[:, PT::N_COMPONENTS] > 0, N_COMPONENTS, axis=1)
    return words.astype(np.int64).reshape(n, N_OBJECTS, N_COMPONENTS)


@dataclass(frozen=True)
class OutsideLayout:
    """Objects of one feature whose physical value lies outside what the hardware units represent.

    ``to_hardware`` cannot carry such a value: an eta beyond acceptance still
    becomes a word (saturating at abs(eta) = 5.5), a phi beyond +-pi wraps, a
    pT beyond the group's rail saturates at its top word. The firmware then
    sees a different value from the one in the file, so these are counted.
    """

    feature: str  # e.g. "eg0_eta"
    limit: str  # what the layout allows, e.g. "abs(eta) < 3.0"
    effect: str  # "saturated" or "wrapped" (what the hardware unit did with it)
    count: int  # objects (events) outside
    extreme: float  # the value furthest outside

    def to_dict(self) -> dict[str, object]:
        return {"feature": self.feature, "limit": self.limit, "effect": self.effect, "count": self.count,
                "extreme": self.extreme}


@dataclass(frozen=True)
class LayoutCheck:
    """The result of :func:`check_layout`: per-feature counts and how many events hold any of them."""

    events: int
    events_outside: int
    features: list[OutsideLayout]

    def to_dict(self) -> dict[str, object]:
        return {"events": self.events, "events_outside": self.events_outside,
                "features": [f.to_dict() for f in self.features]}

    def lines(self) -> list[str]:
        """Readable lines, one per feature (none when every input is inside the layout)."""
        return [
            f"{f.feature}: {f.count} object(s) outside {f.limit} ({f.effect} in hardware units; furthest {f.extreme:g})"
            for f in self.features
        ]


def check_layout(objects: np.ndarray) -> LayoutCheck:
    """Per feature, the present objects beyond acceptance (eta), beyond +-pi (phi) or the pT rail.

    Padded objects (pT = 0) are not counted. MET has eta = 0 by definition;
    a MET with another eta is counted as outside its acceptance.
    """
    arr = check_objects(objects)
    found: list[OutsideLayout] = []
    any_outside = np.zeros(arr.shape[0], dtype=bool)
    present = arr[:, :, PT] > 0
    eta_word_limit = ETA_WORD_MAX * ETA_LSB
    for g in OBJECT_GROUPS:
        eta_limit = "eta = 0 (MET)" if g.eta_max == 0 else f"abs(eta) < {g.eta_max:g}"
        for slot in range(g.start, g.stop):
            pt, eta, phi = arr[:, slot, PT], arr[:, slot, ETA], arr[:, slot, PHI]
            here = present[:, slot]
            eta_out = here & ((eta != 0) if g.eta_max == 0 else (np.abs(eta) >= g.eta_max))
            eta_effect = "saturated" if np.any(np.abs(eta[eta_out]) > eta_word_limit) else "outside acceptance"
            checks = (
                (PT, here & (pt > g.pt_max), f"pT <= {g.pt_max:g} GeV (the {g.pt_bits}-bit rail)", "saturated", pt),
                (ETA, eta_out, eta_limit, eta_effect, eta),
                (PHI, here & (np.abs(phi) > math.pi), "abs(phi) <= pi", "wrapped", phi),
            )
            for comp, mask, limit, effect, values in checks:
                count = int(np.count_nonzero(mask))
                if count:
                    any_outside |= mask
                    worst = values[mask][int(np.argmax(np.abs(values[mask])))]
                    found.append(OutsideLayout(FEATURE_NAMES[slot * N_COMPONENTS + comp], limit, effect, count,
                                               float(worst)))
    return LayoutCheck(int(arr.shape[0]), int(np.count_nonzero(any_outside)), found)


def from_hardware(words: np.ndarray) -> np.ndarray:
    """Hardware words (N, 19, 3) -> physical float32 objects (N, 19, 3)."""
    arr = np.asarray(words)
    if arr.ndim != 3 or arr.shape[1:] != (N_OBJECTS, N_COMPONENTS):
        raise LayoutError(f"hardware words: expected shape (N, {N_OBJECTS}, {N_COMPONENTS}), got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise LayoutError(f"hardware words: expected integers, got dtype {arr.dtype}")
    limits = (
        (PT, np.zeros(N_OBJECTS, dtype=np.int64), PT_WORD_MAX_PER_SLOT),
        (ETA, ETA_WORD_MIN, ETA_WORD_MAX),
        (PHI, PHI_WORD_MIN, PHI_WORD_MAX),
    )
    for comp, lo, hi in limits:
        bad = (arr[:, :, comp] < lo) | (arr[:, :, comp] > hi)
        if bad.any():
            event, slot = (int(v) for v in np.argwhere(bad)[0])
            name = FEATURE_NAMES[slot * N_COMPONENTS + comp]
            raise LayoutError(
                f"hardware words: event {event}, feature {name!r} = {int(arr[event, slot, comp])} "
                f"is outside its word range"
            )
    out = np.empty(arr.shape, dtype=np.float32)
    out[:, :, PT] = arr[:, :, PT] * PT_LSB
    out[:, :, ETA] = arr[:, :, ETA] * ETA_LSB
    out[:, :, PHI] = arr[:, :, PHI] * PHI_LSB
    return out


def region_of(eta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Flat region index (iphi * 14 + ieta) of each (eta, phi); -1 outside abs(eta) < 3."""
    eta = np.asarray(eta, dtype=np.float64)
    phi = np.asarray(phi, dtype=np.float64)
    ieta = np.floor((eta + REGION_ETA_MAX) * (REGION_ETA / (2 * REGION_ETA_MAX))).astype(np.int64)
    iphi = np.floor(np.mod(phi + math.pi, 2 * math.pi) * (REGION_PHI / (2 * math.pi))).astype(np.int64)
    iphi = np.minimum(iphi, REGION_PHI - 1)  # phi = +pi after the mod rounding
    inside = (ieta >= 0) & (ieta < REGION_ETA)
    return np.where(inside, iphi * REGION_ETA + ieta, -1)


def region_et_to_hardware(et: np.ndarray) -> np.ndarray:
    """Region ET in GeV -> 10-bit words (uint16), rounded, saturating at 1023."""
    words = np.multiply(et, 1.0 / REGION_ET_LSB, dtype=np.float64)
    np.clip(words, 0, REGION_ET_MAX, out=words)
    np.rint(words, out=words)
    return words.astype(np.uint16)


def sort_and_pad(pt: np.ndarray, eta: np.ndarray, phi: np.ndarray, keep: int) -> np.ndarray:
    """Candidates (N, K) of one group -> (N, keep, 3) ordered by decreasing pT, zero-padded.

    A candidate with pT <= 0 counts as absent.
    """
    n, k = pt.shape
    pt = np.where(pt > 0, pt, 0.0)
    if k < keep:
        pad = ((0, 0), (0, keep - k))
        pt, eta, phi = (np.pad(a, pad) for a in (pt, eta, phi))
        k = keep
    order = np.argsort(-pt, axis=1, kind="stable")[:, :keep]
    out = np.empty((n, keep, 3), dtype=np.float32)
    out[:, :, PT] = np.take_along_axis(pt, order, axis=1)
    present = out[:, :, PT] > 0
    out[:, :, ETA] = np.where(present, np.take_along_axis(eta, order, axis=1), 0.0)
    out[:, :, PHI] = np.where(present, np.take_along_axis(phi, order, axis=1), 0.0)
    return out
