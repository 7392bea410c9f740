"""EventSample: a set of events in the 19 x 3 object layout, with labels.

Every model and tool in l1flow exchanges events as an EventSample. Physical
units (GeV, radians) live in ``objects``; the hardware integer words are
derived on demand by :func:`l1flow.data.layout.to_hardware`.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from l1flow.data.layout import (
    N_FEATURES,
    REGION_ET_MAX,
    REGION_SHAPE,
    LayoutError,
    check_objects,
    to_hardware,
)
from l1flow.errors import BadInputError
from l1flow.fileio import atomic_file

BACKGROUND = "background"
SAMPLE_FORMAT = "l1flow-events/1"


class SampleError(BadInputError):
    """An event sample (or the file holding one) is malformed."""


@dataclass
class EventSample:
    """Events in the 19 x 3 layout.

    - ``objects``: float32 (N, 19, 3), pT in GeV, eta, phi in rad.
    - ``labels``: int64 (N,), index into ``classes``; 0 is always background.
    - ``classes``: class names, ``classes[0] == "background"``.
    - ``npv``: int32 (N,), number of primary vertices (pile-up); -1 = unknown
      (files that do not record it, such as the public challenge HDF5).
    - ``regions``: uint16 (N, 18, 14) 10-bit calorimeter region ET words, or None.
    - ``metadata``: provenance (generator seed, conditions hash, source file);
      not part of the content hash.
    """

    objects: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...] = (BACKGROUND,)
    npv: np.ndarray | None = None  # None: unknown for every event; __post_init__ makes it -1 each
    regions: np.ndarray | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.objects = check_objects(self.objects, "EventSample.objects")
        n = self.objects.shape[0]
        labels = np.asarray(self.labels)
        if labels.shape != (n,):
            raise SampleError(f"EventSample.labels: expected shape ({n},), got {labels.shape}")
        if labels.size and not np.issubdtype(labels.dtype, np.integer):
            raise SampleError(f"EventSample.labels: expected integers, got dtype {labels.dtype}")
        self.labels = labels.astype(np.int64, copy=False)
        self.classes = tuple(str(c) for c in self.classes)
        if not self.classes or self.classes[0] != BACKGROUND:
            raise SampleError(f"EventSample.classes: the first class must be {BACKGROUND!r}, got {self.classes}")
        if len(set(self.classes)) != len(self.classes):
            raise SampleError(f"EventSample.classes: duplicate class names in {self.classes}")
        if n and (self.labels.min() < 0 or self.labels.max() >= len(self.classes)):
            raise SampleError(
                f"EventSample.labels: values must be in [0, {len(self.classes) - 1}] "
                f"(one per class), got [{self.labels.min()}, {self.labels.max()}]"
            )
        if self.npv is None:
            self.npv = np.full(n, -1, dtype=np.int32)
        npv = np.asarray(self.npv)
        if npv.shape != (n,):
            raise SampleError(f"EventSample.npv: expected shape ({n},), got {npv.shape}")
        if npv.size and (not np.issubdtype(npv.dtype, np.number) or not np.all(np.isfinite(npv))):
            raise SampleError("EventSample.npv: expected finite numbers of primary vertices")
        if npv.size and npv.min() < -1:
            raise SampleError(f"EventSample.npv: values must be >= 0 (or -1 = unknown), got {npv.min()}")
        self.npv = npv.astype(np.int32, copy=False)
        if self.regions is not None:
            regions = np.asarray(self.regions)
            if regions.shape != (n, *REGION_SHAPE):
                raise SampleError(f"EventSample.regions: expected shape ({n}, 18, 14), got {regions.shape}")
            out_of_range = regions.size and (regions.min() < 0 or regions.max() > REGION_ET_MAX)
            if regions.size and (not np.issubdtype(regions.dtype, np.integer) or out_of_range):
                raise SampleError(f"EventSample.regions: expected integer 10-bit words in [0, {REGION_ET_MAX}]")
            self.regions = regions.astype(np.uint16, copy=False)
        self.metadata = {str(k): str(v) for k, v in self.metadata.items()}

    def __len__(self) -> int:
        return int(self.objects.shape[0])

    def _npv(self) -> np.ndarray:
        assert self.npv is not None, "__post_init__ fills npv"
        return self.npv

    @property
    def npv_known(self) -> bool:
        """True when every event records its number of primary vertices."""
        return bool(len(self) == 0 or self._npv().min() >= 0)

    def features(self) -> np.ndarray:
        """(N, 57) float32 in the order of layout.FEATURE_NAMES."""
        return self.objects.reshape(len(self), N_FEATURES)

    def hardware_features(self) -> np.ndarray:
        """(N, 57) int64 hardware words (see layout.to_hardware)."""
        return to_hardware(self.objects).reshape(len(self), N_FEATURES)

    def is_signal(self) -> np.ndarray:
        """Boolean (N,): label != background."""
        return self.labels != 0

    def class_mask(self, name: str) -> np.ndarray:
        """Boolean (N,) of the events of class ``name``."""
        if name not in self.classes:
            raise SampleError(f"no class {name!r} in this sample; it has {', '.join(self.classes)}")
        return self.labels == self.classes.index(name)

    def select(self, mask_or_indices: np.ndarray | Sequence[int]) -> EventSample:
        """A new sample with the events picked by a boolean mask or integer indices."""
        index = np.asarray(mask_or_indices)
        if index.dtype == bool and index.shape != (len(self),):
            raise SampleError(f"select: boolean mask must have shape ({len(self)},), got {index.shape}")
        if index.dtype != bool and index.size and not np.issubdtype(index.dtype, np.integer):
            raise SampleError(f"select: expected a boolean mask or integer indices, got dtype {index.dtype}")
        if index.dtype != bool:
            index = index.astype(np.int64)
        return EventSample(
            objects=self.objects[index],
            labels=self.labels[index],
            classes=self.classes,
            npv=self._npv()[index],
            regions=None if self.regions is None else self.regions[index],
            metadata=dict(self.metadata),
        )

    @staticmethod
    def concat(samples: Sequence[EventSample]) -> EventSample:
        """Join samples; classes are merged in order of appearance and labels remapped.

        Regions are kept only when every sample has them.
        """
        if not samples:
            raise SampleError("concat: need at least one sample")
        classes: list[str] = []
        for s in samples:
            classes.extend(c for c in s.classes if c not in classes)
        labels = [np.array([classes.index(c) for c in s.classes], dtype=np.int64)[s.labels] for s in samples]
        with_regions = all(s.regions is not None for s in samples)
        metadata = dict(samples[0].metadata) if len(samples) == 1 else {}
        return EventSample(
            objects=np.concatenate([s.objects for s in samples]),
            labels=np.concatenate(labels),
            classes=tuple(classes),
            npv=np.concatenate([s._npv() for s in samples]),
            regions=np.concatenate([s.regions for s in samples]) if with_regions else None,
            metadata=metadata,
        )

    def content_hash(self) -> str:
        """sha256 over the events (objects, labels, classes, npv, regions), not the metadata."""
        digest = hashlib.sha256()
        digest.update(SAMPLE_FORMAT.encode())
        digest.update(json.dumps(list(self.classes)).encode())
        for arr in (self.objects, self.labels, self._npv()):
            digest.update(str(arr.shape).encode())
            digest.update(np.ascontiguousarray(arr).tobytes())
        if self.regions is not None:
            digest.update(np.ascontiguousarray(self.regions).tobytes())
        return digest.hexdigest()

    def save(self, path: str | Path) -> Path:
        """Write an .npz file atomically (temporary name in the same folder, then rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {
            "format": np.array(SAMPLE_FORMAT),
            "objects": self.objects,
            "labels": self.labels,
            "classes": np.array(json.dumps(list(self.classes))),
            "npv": self._npv(),
            "metadata": np.array(json.dumps(self.metadata, sort_keys=True)),
        }
        if self.regions is not None:
            arrays["regions"] = self.regions
        with atomic_file(path, "wb") as handle:
            np.savez_compressed(handle, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> EventSample:
        """Read a file written by :meth:`save`; errors name the file and the field."""
        path = Path(path)
        if not path.is_file():
            raise SampleError(f"{path}: no such event-sample file")
        try:
            with np.load(path, allow_pickle=False) as data:
                keys = set(data.files)
                missing = {"format", "objects", "labels", "classes", "npv"} - keys
                if missing:
                    raise SampleError(f"{path}: not an l1flow event sample, missing field(s) {sorted(missing)}")
                fmt = str(data["format"])
                if fmt != SAMPLE_FORMAT:
                    raise SampleError(f"{path}: format {fmt!r} is not {SAMPLE_FORMAT!r}; rewrite it with this l1flow")
                objects = data["objects"]
                labels = data["labels"]
                classes = tuple(json.loads(str(data["classes"])))
                npv = data["npv"]
                regions = data["regions"] if "regions" in keys else None
                metadata = json.loads(str(data["metadata"])) if "metadata" in keys else {}
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
            if isinstance(exc, SampleError):
                raise
            raise SampleError(f"{path}: unreadable event-sample file ({exc}); regenerate or re-save it") from exc
        try:
            return cls(objects, labels, classes, npv, regions, metadata)
        except (SampleError, LayoutError) as exc:
            raise SampleError(f"{path}: {exc}") from exc

