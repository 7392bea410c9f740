"""HDF5 in the public LHC anomaly-detection challenge layout.

The challenge files hold one dataset ``Particles`` of shape (N, 19, 4): for
each object slot pT, eta, phi and an object-type id (0 = no object, 1 = MET,
2 = e/gamma, 3 = muon, 4 = jet), in the slot order of :mod:`l1flow.data.layout`.
l1flow writes that dataset and, beside it, what the challenge files lack:
``labels`` (N,) with the class names in the attribute ``classes`` (JSON), ``npv``
(N,) and, when present, ``regions`` (N, 18, 14). A public file read without
``labels`` gets every event labelled ``class_name``.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from l1flow.data.layout import N_OBJECTS, OBJECT_GROUPS, LayoutError
from l1flow.data.sample import BACKGROUND, EventSample, SampleError
from l1flow.errors import BadInputError
from l1flow.fileio import atomic_path

PARTICLES = "Particles"
#: object-type id of each group in the challenge's fourth column
TYPE_IDS: dict[str, int] = {"met": 1, "egamma": 2, "muon": 3, "jet": 4}


class HDF5FormatError(BadInputError):
    """An HDF5 event file is missing, truncated or not in the expected layout."""


def _slot_type_ids() -> np.ndarray:
    ids = np.empty(N_OBJECTS, dtype=np.int64)
    for g in OBJECT_GROUPS:
        ids[g.slots] = TYPE_IDS[g.name]
    return ids


SLOT_TYPE_IDS = _slot_type_ids()


def write_hdf5(sample: EventSample, path: str | Path) -> Path:
    """Write ``sample`` atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    particles = np.zeros((len(sample), N_OBJECTS, 4), dtype=np.float32)
    particles[:, :, :3] = sample.objects
    present = sample.objects[:, :, 0] > 0
    present[:, 0] = True  # MET is always there, even when 0
    particles[:, :, 3] = np.where(present, SLOT_TYPE_IDS[None, :], 0)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset(PARTICLES, data=particles, compression="gzip", compression_opts=4)
        labels = f.create_dataset("labels", data=sample.labels)
        labels.attrs["classes"] = json.dumps(list(sample.classes))
        f.create_dataset("npv", data=sample.npv)
        if sample.regions is not None:
            f.create_dataset("regions", data=sample.regions, compression="gzip", compression_opts=4)
        f.attrs["metadata"] = json.dumps(sample.metadata, sort_keys=True)
    return path


def read_hdf5(path: str | Path, class_name: str = BACKGROUND) -> EventSample:
    """Read a challenge-layout file; errors name the file and the dataset or field."""
    path = Path(path)
    if not path.is_file():
        raise HDF5FormatError(f"{path}: no such HDF5 file")
    if path.stat().st_size == 0:
        raise HDF5FormatError(f"{path}: the file is empty")
    try:
        with h5py.File(path, "r") as f:
            if PARTICLES not in f:
                raise HDF5FormatError(
                    f"{path}: no dataset {PARTICLES!r} (found: {', '.join(f.keys()) or 'nothing'}); "
                    f"expected the challenge layout ({PARTICLES}: N x 19 x 4)"
                )
            for name in (PARTICLES, "labels", "npv", "regions"):
                if name in f and not isinstance(f[name], h5py.Dataset):
                    raise HDF5FormatError(
                        f"{path}: {name!r} is an HDF5 {type(f[name]).__name__.lower()}, not a dataset; "
                        f"store it as one array ({PARTICLES}: N x 19 x 4)"
                    )
            particles = f[PARTICLES][()]
            labels = f["labels"][()] if "labels" in f else None
            classes: list[str] = json.loads(f["labels"].attrs["classes"]) if labels is not None else []
            npv = f["npv"][()] if "npv" in f else None
            regions = f["regions"][()] if "regions" in f else None
            metadata = json.loads(f.attrs["metadata"]) if "metadata" in f.attrs else {}
    except HDF5FormatError:
        raise
    except (OSError, KeyError, ValueError) as exc:
        raise HDF5FormatError(f"{path}: unreadable or truncated HDF5 file ({exc}); re-create or re-download it") from exc

    if particles.ndim != 3 or particles.shape[1:] != (N_OBJECTS, 4):
        raise HDF5FormatError(f"{path}: dataset {PARTICLES!r} has shape {particles.shape}, expected (N, {N_OBJECTS}, 4)")
    if particles.shape[0] == 0:
        raise HDF5FormatError(f"{path}: dataset {PARTICLES!r} holds no events")
    types = particles[:, :, 3]
    if not np.all(np.isfinite(types)):
        raise HDF5FormatError(f"{path}: dataset {PARTICLES!r} has NaN or infinite object-type ids (column 3)")
    bad_type = (types != 0) & (types != SLOT_TYPE_IDS[None, :])
    if bad_type.any():
        event, slot = (int(v) for v in np.argwhere(bad_type)[0])
        raise HDF5FormatError(
            f"{path}: {PARTICLES}[{event}, {slot}] has object type {types[event, slot]:g}, but slot {slot} holds "
            f"type {SLOT_TYPE_IDS[slot]} (1 MET, 2 e/gamma, 3 muon, 4 jet) or 0 for no object"
        )
    if labels is None:
        labels = np.zeros(particles.shape[0], dtype=np.int64)
        classes = [BACKGROUND] if class_name == BACKGROUND else [BACKGROUND, class_name]
        if class_name != BACKGROUND:
            labels[:] = 1
    try:
        return EventSample(particles[:, :, :3], labels, tuple(classes), npv, regions, metadata)
    except (SampleError, LayoutError) as exc:
        raise HDF5FormatError(f"{path}: {exc}") from exc
