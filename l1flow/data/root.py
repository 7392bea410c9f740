"""ROOT files through uproot, with a declarative branch mapping.

A mapping (YAML) says where the objects are::

    tree: events
    objects:                      # egamma, muon, jet: one or more collections each
      egamma:
        - count: NElectron        # branch with the number of objects per event
          cartesian: {px: Electron_Px, py: Electron_Py, pz: Electron_Pz}
        - count: NPhoton
          cartesian: {px: Photon_Px, py: Photon_Py, pz: Photon_Pz}
      jet:
        - count: NJet
          polar: {pt: Jet_pt, eta: Jet_eta, phi: Jet_phi}
    met: {cartesian: {px: MET_px, py: MET_py}}   # or {polar: {pt: MET_pt, phi: MET_phi}}
    pileup: NPrimaryVertices      # optional: number of primary vertices
    min_pt: {muon: 10, jet: 30}   # optional, GeV; default 0
    class_name: background        # label of every event

Collections of one type are merged, kept inside the type's acceptance and
above ``min_pt``, ordered by pT and cut or zero-padded to the layout
(4 e/gamma, 4 muons, 10 jets). Unknown keys in the mapping are refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from l1flow.data.layout import (
    ETA,
    N_COMPONENTS,
    N_OBJECTS,
    PHI,
    PT,
    group,
    sort_and_pad,
)
from l1flow.data.sample import BACKGROUND, EventSample
from l1flow.errors import BadInputError

MAPPINGS_DIR = Path(__file__).parent / "mappings"


class RootReadError(BadInputError):
    """A ROOT file or its mapping cannot be read; names the file and the branch or key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Cartesian(_Strict):
    px: str
    py: str
    pz: str


class Polar(_Strict):
    pt: str
    eta: str
    phi: str


class Collection(_Strict):
    """One object collection: a count branch and its component branches (Cartesian or pT/eta/phi)."""

    count: str
    cartesian: Cartesian | None = None
    polar: Polar | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Collection:
        if (self.cartesian is None) == (self.polar is None):
            raise ValueError("give exactly one of 'cartesian' (px, py, pz) or 'polar' (pt, eta, phi)")
        return self

    def branches(self) -> list[str]:
        form = self.cartesian or self.polar
        assert form is not None
        return [self.count, *form.model_dump().values()]


class MetCartesian(_Strict):
    px: str
    py: str


class MetPolar(_Strict):
    pt: str
    phi: str


class MetMapping(_Strict):
    cartesian: MetCartesian | None = None
    polar: MetPolar | None = None

    @model_validator(mode="after")
    def _one_form(self) -> MetMapping:
        if (self.cartesian is None) == (self.polar is None):
            raise ValueError("give exactly one of 'cartesian' (px, py) or 'polar' (pt, phi)")
        return self


class ObjectCollections(_Strict):
    egamma: list[Collection] = Field(default_factory=list)
    muon: list[Collection] = Field(default_factory=list)
    jet: list[Collection] = Field(default_factory=list)


class MinPt(_Strict):
    egamma: float = Field(0.0, ge=0)
    muon: float = Field(0.0, ge=0)
    jet: float = Field(0.0, ge=0)


class RootMapping(_Strict):
    """Where a ROOT tree keeps the objects of the 19 x 3 layout."""

    tree: str
    objects: ObjectCollections
    met: MetMapping | None = None
    pileup: str | None = None
    min_pt: MinPt = Field(default_factory=MinPt)
    class_name: str = BACKGROUND

    def branches(self) -> list[str]:
        names: list[str] = []
        for kind in ("egamma", "muon", "jet"):
            for c in getattr(self.objects, kind):
                names += c.branches()
        if self.met is not None:
            names += list((self.met.cartesian or self.met.polar).model_dump().values())  # type: ignore[union-attr]
        if self.pileup:
            names.append(self.pileup)
        return list(dict.fromkeys(names))

    @classmethod
    def from_yaml(cls, path: str | Path) -> RootMapping:
        """Load a mapping file; errors name the file and each bad key."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text())
        except FileNotFoundError:
            raise RootReadError(f"{path}: no such mapping file") from None
        except yaml.YAMLError as exc:
            raise RootReadError(f"{path}: not valid YAML ({exc})") from exc
        return cls.from_dict(data, str(path))

    @classmethod
    def from_dict(cls, data: Any, source: str = "mapping") -> RootMapping:
        if not isinstance(data, dict):
            raise RootReadError(f"{source}: a mapping must be a YAML mapping with 'tree' and 'objects'")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"])
                msg = "unknown key" if err["type"] == "extra_forbidden" else str(err["msg"]).removeprefix("Value error, ")
                problems.append(f"{loc}: {msg}" if loc else msg)
            raise RootReadError(f"{source}: " + "; ".join(problems)) from exc


def shipped_mapping(name: str) -> Path:
    """Path of a mapping shipped with l1flow (e.g. "uproot_hzz")."""
    path = MAPPINGS_DIR / f"{name.removesuffix('.yaml')}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in MAPPINGS_DIR.glob("*.yaml")))
        raise RootReadError(f"no shipped mapping {name!r}; shipped: {known}")
    return path


def _one_count_per_event(path: Path, arrays: ak.Array, branch: str, role: str) -> np.ndarray:
    """The branch as one non-negative integer per event, or a RootReadError naming it and its type."""
    values = arrays[branch]
    kind = str(ak.type(values).content)
    if values.ndim != 1 or not np.issubdtype(ak.to_numpy(values).dtype, np.integer):
        raise RootReadError(
            f"{path}: {role} branch {branch!r} holds {kind} per event; it must hold one integer count per event "
            f"(e.g. an int32 branch such as nJet or PV_npvs); fix the mapping"
        )
    counts = ak.to_numpy(values).astype(np.int64)
    if np.any(counts < 0):
        raise RootReadError(f"{path}: {role} branch {branch!r} has negative counts (event {int(np.argmax(counts < 0))})")
    return counts


def _padded(jagged: ak.Array, width: int) -> np.ndarray:
    return ak.to_numpy(ak.fill_none(ak.pad_none(jagged, width, clip=True), 0.0)).astype(np.float64)


def read_root(path: str | Path, mapping: RootMapping) -> EventSample:
    """Read the events of ``mapping.tree`` (a TTree or an RNTuple) in ``path`` into the 19 x 3 layout."""
    import uproot

    path = Path(path)
    if not path.is_file():
        raise RootReadError(f"{path}: no such ROOT file")
    if path.stat().st_size == 0:
        raise RootReadError(f"{path}: the file is empty")
    try:
        file = uproot.open(path)
    except Exception as exc:  # uproot raises several types for non-ROOT or damaged files
        raise RootReadError(f"{path}: not a readable ROOT file ({type(exc).__name__}: {exc})") from exc
    with file:
        if mapping.tree not in file:
            trees = [k.split(";")[0] for k, c in file.classnames().items() if c.startswith("TTree") or "RNTuple" in c]
            raise RootReadError(
                f"{path}: no tree {mapping.tree!r} (trees: {', '.join(trees) or 'none'}); fix 'tree' in the mapping"
            )
        tree = file[mapping.tree]
        missing = [b for b in mapping.branches() if b not in tree.keys()]
        if missing:
            raise RootReadError(
                f"{path}: tree {mapping.tree!r} has no branch(es) {', '.join(missing)}; fix the mapping"
            )
        if tree.num_entries == 0:
            raise RootReadError(f"{path}: tree {mapping.tree!r} holds no events")
        try:
            arrays = tree.arrays(mapping.branches(), library="ak")
        except Exception as exc:
            raise RootReadError(
                f"{path}: could not read branches of {mapping.tree!r} ({exc}); the file may be truncated"
            ) from exc

    for name in mapping.branches():
        values = ak.flatten(arrays[name], axis=None)
        if values.ndim and not np.all(np.isfinite(ak.to_numpy(values).astype(np.float64))):
            raise RootReadError(f"{path}: branch {name!r} holds NaN or infinite values")

    n = len(arrays)
    objects = np.zeros((n, N_OBJECTS, N_COMPONENTS), dtype=np.float32)
    for kind in ("egamma", "muon", "jet"):
        g = group(kind)
        pts, etas, phis = [], [], []
        for c in getattr(mapping.objects, kind):
            counts = _one_count_per_event(path, arrays, c.count, "count")
            form = c.cartesian or c.polar
            assert form is not None
            comps = list(form.model_dump().values())
            lengths = ak.to_numpy(ak.num(arrays[comps[0]], axis=1))
            if counts.shape != lengths.shape or np.any(counts != lengths):
                event = int(np.flatnonzero(counts != lengths)[0]) if counts.shape == lengths.shape else 0
                raise RootReadError(
                    f"{path}: count branch {c.count!r} disagrees with the length of {comps[0]!r} (event {event})"
                )
            width = max(int(counts.max(initial=0)), 1)
            a, b, d = (_padded(arrays[x], width) for x in comps)
            if c.cartesian is not None:
                pt = np.hypot(a, b)
                eta = np.where(pt > 0, np.arcsinh(np.divide(d, pt, out=np.zeros_like(d), where=pt > 0)), 0.0)
                phi = np.arctan2(b, a)
            else:
                pt, eta, phi = a, b, d
            present = np.arange(width)[None, :] < counts[:, None]
            pts.append(np.where(present, pt, 0.0))
            etas.append(eta)
            phis.append(phi)
        if not pts:
            continue
        pt = np.concatenate(pts, axis=1)
        eta = np.concatenate(etas, axis=1)
        phi = np.concatenate(phis, axis=1)
        keep = (np.abs(eta) < g.eta_max) & (pt >= getattr(mapping.min_pt, kind)) & (pt > 0)
        objects[:, g.slots] = sort_and_pad(np.where(keep, pt, 0.0), eta, phi, g.count)

    if mapping.met is not None:
        if mapping.met.cartesian is not None:
            met_x = ak.to_numpy(arrays[mapping.met.cartesian.px]).astype(np.float64)
            met_y = ak.to_numpy(arrays[mapping.met.cartesian.py]).astype(np.float64)
            met, met_phi = np.hypot(met_x, met_y), np.arctan2(met_y, met_x)
        else:
            assert mapping.met.polar is not None
            met = ak.to_numpy(arrays[mapping.met.polar.pt]).astype(np.float64)
            met_phi = ak.to_numpy(arrays[mapping.met.polar.phi]).astype(np.float64)
            if np.any(met < 0):
                raise RootReadError(f"{path}: branch {mapping.met.polar.pt!r} has negative MET")
        objects[:, 0, PT] = met
        objects[:, 0, ETA] = 0.0
        objects[:, 0, PHI] = np.where(met > 0, met_phi, 0.0)

    npv = None
    if mapping.pileup:
        npv = _one_count_per_event(path, arrays, mapping.pileup, "pile-up")
    classes = (BACKGROUND,) if mapping.class_name == BACKGROUND else (BACKGROUND, mapping.class_name)
    labels = np.full(n, len(classes) - 1, dtype=np.int64)
    return EventSample(objects, labels, classes, npv, None, {"source": str(path), "tree": mapping.tree})
