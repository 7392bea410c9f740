"""Test vectors: raw fixed-point words exchanged between emulation and hardware.

One folder per vector set (every field in docs/formats.md, "Test vectors"); every
producer of hardware results (RTL simulator, vendor co-simulation, board capture)
writes this same format::

    meta.json     format, model identity, ports (name, type, shape, in order),
                  number of events, sha256 of every data file, content hash
    inputs.txt    one event per row: every input port's words, flattened in
                  C order and concatenated in port order, as signed decimals
    outputs.txt   the same for the output ports

A word is the raw two's complement integer of an ``ap_fixed``/``ap_int`` value,
``round(value * 2**(W-I))``, held in int64; unsigned types hold non-negative
words. Hardware results (RTL simulation, vendor co-simulation, board capture)
come back as a result set: the same layout with ``outputs.txt`` only and the
content hash of the stimulus set they answer. Nothing here ever goes through
printed decimals of real numbers.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from l1flow.errors import BadInputError
from l1flow.fileio import atomic_folder, sha256_file, sha256_json

FORMAT = "l1flow-vectors/1"
INPUTS_FILE = "inputs.txt"
OUTPUTS_FILE = "outputs.txt"
META_FILE = "meta.json"


class VectorFormatError(BadInputError):
    """A vector folder or one of its files is malformed."""


@dataclass(frozen=True)
class Port:
    """One port of the firmware top level: its C++ type and array shape."""

    name: str
    type: str
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "shape": list(self.shape)}

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str) -> Port:
        try:
            return cls(str(data["name"]), str(data["type"]), tuple(int(s) for s in data["shape"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise VectorFormatError(f"{where}: a port needs 'name', 'type' and 'shape' ({exc!s})") from exc


def _words_width(ports: list[Port]) -> int:
    return sum(p.size for p in ports)


def write_words(path: Path, words: np.ndarray) -> None:
    """Write an (events, width) int64 array as decimal words, one event per row."""
    words = np.ascontiguousarray(words, dtype=np.int64)
    if words.ndim != 2:
        raise ValueError(f"words for {path} must be 2-D (events, words), got shape {words.shape}")
    with open(path, "w", encoding="ascii") as handle:
        chunk = 65536
        for start in range(0, len(words), chunk):
            buf = io.StringIO()
            np.savetxt(buf, words[start : start + chunk], fmt="%d", delimiter=" ")
            handle.write(buf.getvalue())


def read_words(path: Path, width: int) -> np.ndarray:
    """Read decimal words written by :func:`write_words` (or by a test bench).

    Every row must hold exactly ``width`` integers; a short, long or
    non-numeric row is reported with the file and the row's number.
    """
    path = Path(path)
    if not path.exists():
        raise VectorFormatError(f"{path}: file is missing")
    if path.stat().st_size == 0:
        return np.zeros((0, width), dtype=np.int64)
    try:
        words = np.loadtxt(path, dtype=np.int64, ndmin=2, comments=None)
    except ValueError as exc:
        raise VectorFormatError(f"{path}: malformed words ({exc})") from exc
    if words.size == 0:
        return np.zeros((0, width), dtype=np.int64)
    if words.shape[1] != width:
        raise VectorFormatError(f"{path}: {words.shape[1]} words per row, expected {width}")
    return words


@dataclass
class VectorSet:
    """An in-memory vector set; `save` writes the folder, `load` reads and checks it."""

    inputs: list[Port]
    outputs: list[Port]
    input_words: np.ndarray | None
    output_words: np.ndarray | None
    model: dict[str, Any] = field(default_factory=dict)
    source: str = "emulator"
    stimulus_hash: str | None = None
    content_hash: str = ""

    @property
    def events(self) -> int:
        for words in (self.input_words, self.output_words):
            if words is not None:
                return int(words.shape[0])
        return 0

    def _check_shapes(self) -> None:
        for label, ports, words in (
            ("inputs", self.inputs, self.input_words),
            ("outputs", self.outputs, self.output_words),
        ):
            if words is None:
                continue
            if words.ndim != 2 or words.shape[1] != _words_width(ports):
                raise VectorFormatError(
                    f"{label}: words have shape {words.shape}, ports need "
                    f"(events, {_words_width(ports)})"
                )
        if self.input_words is not None and self.output_words is not None:
            if len(self.input_words) != len(self.output_words):
                raise VectorFormatError(
                    f"{len(self.input_words)} input events but {len(self.output_words)} output events"
                )

    def save(self, folder: Path) -> Path:
        """Write the folder atomically (temporary name, then rename)."""
        self._check_shapes()
        folder = Path(folder)
        with atomic_folder(folder) as tmp:
            files: dict[str, dict[str, str]] = {}
            for label, name, words in (
                ("inputs", INPUTS_FILE, self.input_words),
                ("outputs", OUTPUTS_FILE, self.output_words),
            ):
                if words is None:
                    continue
                write_words(tmp / name, words)
                files[label] = {"path": name, "sha256": sha256_file(tmp / name)}
            meta = self._meta(files)
            self.content_hash = meta["content_hash"]
            (tmp / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return folder

    def _meta(self, files: dict[str, dict[str, str]]) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "format": FORMAT,
            "model": self.model,
            "source": self.source,
            "events": self.events,
            "ports": {
                "inputs": [p.to_json() for p in self.inputs],
                "outputs": [p.to_json() for p in self.outputs],
            },
            "files": files,
            "stimulus_hash": self.stimulus_hash,
        }
        identity = {k: meta[k] for k in ("model", "ports", "files", "stimulus_hash")}
        meta["content_hash"] = sha256_json(identity)
        return meta

    @classmethod
    def load(cls, folder: Path) -> VectorSet:
        """Read a vector folder, checking format, hashes and row widths."""
        folder = Path(folder)
        meta_path = folder / META_FILE
        if not meta_path.exists():
            raise VectorFormatError(f"{folder}: no {META_FILE}; not a vector folder")
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise VectorFormatError(f"{meta_path}: not valid JSON ({exc})") from exc
        if meta.get("format") != FORMAT:
            raise VectorFormatError(
                f"{meta_path}: format is {meta.get('format')!r}, expected {FORMAT!r}"
            )
        try:
            inputs = [Port.from_json(p, str(meta_path)) for p in meta["ports"]["inputs"]]
            outputs = [Port.from_json(p, str(meta_path)) for p in meta["ports"]["outputs"]]
            files = meta["files"]
            events = int(meta["events"])
        except (KeyError, TypeError, ValueError) as exc:
            raise VectorFormatError(f"{meta_path}: missing or bad field {exc!s}") from exc
        arrays: dict[str, np.ndarray | None] = {"inputs": None, "outputs": None}
        for label, ports in (("inputs", inputs), ("outputs", outputs)):
            if label not in files:
                continue
            entry = files[label]
            path = folder / entry["path"]
            if not path.exists():
                raise VectorFormatError(f"{path}: named in {meta_path} but missing")
            if sha256_file(path) != entry["sha256"]:
                raise VectorFormatError(
                    f"{path}: content does not match the sha256 in {meta_path} "
                    "(file altered or truncated after it was written)"
                )
            words = read_words(path, _words_width(ports))
            if len(words) != events:
                raise VectorFormatError(f"{path}: {len(words)} events, {meta_path} says {events}")
            arrays[label] = words
        vectors = cls(
            inputs=inputs,
            outputs=outputs,
            input_words=arrays["inputs"],
            output_words=arrays["outputs"],
            model=dict(meta.get("model") or {}),
            source=str(meta.get("source", "")),
            stimulus_hash=meta.get("stimulus_hash"),
            content_hash=str(meta.get("content_hash", "")),
        )
        return vectors

    def result(self, output_words: np.ndarray, source: str) -> VectorSet:
        """A result set answering this stimulus set, as a hardware source returns it."""
        if not self.content_hash:
            raise VectorFormatError("save the stimulus set before deriving results from it")
        return VectorSet(
            inputs=self.inputs,
            outputs=self.outputs,
            input_words=None,
            output_words=np.asarray(output_words, dtype=np.int64),
            model=dict(self.model),
            source=source,
            stimulus_hash=self.content_hash,
        )
