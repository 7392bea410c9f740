"""Verify firmware brought from a synthesis machine against its project's reference.

`verify_project` takes a project folder (hls4ml or conifer, see
:mod:`l1flow.verify.project`) and sources of hardware results, each
``KIND:PATH``:

- ``verilog``  the HLS Verilog (``solution*/syn/verilog`` or ``impl/verilog``),
  re-simulated here with Verilator on the stimulus (build cached by content);
- ``cosim``    a co-simulation (``solution*/sim/tv`` or the whole solution):
  its RTL outputs for the inputs its C test bench applied;
- ``board``    a board capture (``l1flow-board-capture/1``) or a result folder;
- ``vectors``  a result folder in the test-vector format.

Every source is compared by the bit-exact gate (:mod:`l1flow.verify.gate`)
with the reference's outputs for the very inputs that source answers.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from l1flow.errors import BadInputError
from l1flow.firmware.fixed import FixedType, quantize
from l1flow.firmware.vectors import Port, VectorFormatError, VectorSet
from l1flow.hardware.hls_verilog import HLSVerilogSource
from l1flow.hardware.imported import BoardCaptureSource, CosimImport, find_tv_dir
from l1flow.hardware.verilator import default_cache_dir
from l1flow.verify.gate import GateReport, compare
from l1flow.verify.project import FirmwareProject
from l1flow.verify.reference import CppReference, EmulatorReference, emulator_reference

KINDS = ("verilog", "cosim", "board", "vectors")
DEFAULT_EVENTS = 10_000
DEFAULT_SEED = 12


@dataclass(frozen=True)
class SourceSpec:
    kind: str
    path: Path

    @classmethod
    def parse(cls, text: str) -> SourceSpec:
        kind, sep, path = text.partition(":")
        if not sep or kind not in KINDS or not path:
            raise BadInputError(f"--against {text!r}: expected KIND:PATH with KIND one of {', '.join(KINDS)}")
        if not Path(path).exists():
            raise BadInputError(f"--against {text!r}: {path} does not exist")
        return cls(kind, Path(path))

    def __str__(self) -> str:
        return f"{self.kind}:{self.path}"


@dataclass
class SourceResult:
    """The gate's verdict on one source, with what it took."""

    source: str
    reference: str
    report: GateReport
    stimulus: str
    seconds: float
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        r = self.report
        return {
            "source": self.source,
            "reference": self.reference,
            "stimulus": self.stimulus,
            "events": r.compared_events,
            "mismatched_events": r.mismatched_events,
            "mismatched_words": r.mismatched_words,
            "passed": r.passed,
            "failures": r.failures,
            "seconds": round(self.seconds, 3),
            "first_mismatches": [
                {
                    "event": m.event,
                    "input_words": m.input_words,
                    "words": [
                        {"port": w.port, "index": w.index, "expected": w.expected, "actual": w.actual,
                         "differing_bits": w.differing_bits}
                        for w in m.words
                    ],
                }
                for m in r.first_mismatches
            ],
            **self.details,
        }


def generated_stimulus(ports: list[Port], events: int, seed: int) -> np.ndarray:
    """Words covering every input's full range: both rails, zero and +-1 first, then uniform draws."""
    if events < 1:
        raise BadInputError(f"--events {events}: give at least 1 event")
    rng = np.random.default_rng(seed)
    columns: list[np.ndarray] = []
    for port in ports:
        t = FixedType.parse(port.type)
        specials = np.array(sorted({t.min_word, t.max_word, 0, 1, -1 if t.signed else 1, t.min_word + 1, t.max_word - 1}))
        specials = specials[(specials >= t.min_word) & (specials <= t.max_word)]
        for k in range(port.size):
            col = rng.integers(t.min_word, t.max_word + 1, size=events, dtype=np.int64)
            # every element sees every special value, at an offset per element so rows mix them
            n = min(events, len(specials))
            col[:n] = np.roll(specials, k)[:n]
            columns.append(col)
    return np.stack(columns, axis=1)


TB_INPUTS = Path("tb_data") / "tb_input_features.dat"


def _quantized(values: np.ndarray, ports: list[Port], where: str) -> np.ndarray:
    """Real input values (events, words) as the input types' words, with each type's rounding and overflow."""
    width = sum(p.size for p in ports)
    if values.ndim != 2 or values.shape[1] != width:
        raise BadInputError(f"{where}: {values.shape[-1] if values.ndim else 0} values per event; the project's "
                            f"inputs {[p.name for p in ports]} take {width}")
    columns, start = [], 0
    for port in ports:
        columns.append(quantize(values[:, start : start + port.size], FixedType.parse(port.type)))
        start += port.size
    return np.concatenate(columns, axis=1).astype(np.int64)


def read_stimulus(path: Path, project: FirmwareProject) -> tuple[np.ndarray, str | None]:
    """Input words (and the vector set's content hash, if one) from what ``--stimulus`` names.

    ``tb`` (the project's own test bench inputs, ``tb_data/tb_input_features.dat``),
    a vector folder, a text file of real values (one event per line, as hls4ml's
    test bench reads them), or an event file the data readers read (HDF5, ROOT,
    .npz: its 57 object features, for a project with one 57-element input).
    """
    ports = project.input_ports
    if str(path) == "tb":
        path = project.folder / TB_INPUTS
        if not path.exists():
            raise BadInputError(f"--stimulus tb: {path} is missing; the project has no test bench inputs")
    if path.is_dir():
        try:
            vectors = VectorSet.load(path)
        except VectorFormatError as exc:
            raise BadInputError(f"--stimulus {path}: {exc}") from exc
        if vectors.inputs != ports:
            raise BadInputError(
                f"--stimulus {path}: its input ports {[p.to_json() for p in vectors.inputs]} are not the project's "
                f"{[p.to_json() for p in ports]}"
            )
        if vectors.input_words is None:
            raise BadInputError(f"--stimulus {path}: the vector folder holds no input words")
        return vectors.input_words, vectors.content_hash
    if not path.is_file():
        raise BadInputError(f"--stimulus {path}: no such file or folder")
    if path.suffix in (".dat", ".txt", ".csv"):
        try:
            values = np.loadtxt(path, dtype=np.float64, ndmin=2, delimiter="," if path.suffix == ".csv" else None)
        except ValueError as exc:
            raise BadInputError(f"--stimulus {path}: not rows of numbers ({exc})") from exc
        return _quantized(values, ports, f"--stimulus {path}"), None
    from l1flow.data.reader import read_events

    try:
        sample = read_events(path)
    except ValueError as exc:
        raise BadInputError(f"--stimulus {path}: {exc}") from exc
    return _quantized(sample.features().astype(np.float64), ports, f"--stimulus {path} (57 object features)"), None


def find_verilog_dir(path: Path) -> Path:
    """The folder of ``*.v`` files: given directly, or under a solution / HLS project folder."""
    if list(path.glob("*.v")):
        return path
    for pattern in ("syn/verilog", "impl/verilog", "solution*/syn/verilog", "*_prj/solution*/syn/verilog",
                    "solution*/impl/verilog", "*_prj/solution*/impl/verilog"):
        found = sorted(p for p in path.glob(pattern) if list(p.glob("*.v")))
        if found:
            return found[0]
    raise BadInputError(
        f"verilog:{path}: no *.v files there or under syn/verilog, impl/verilog or solution*/syn/verilog; "
        "bring back <prj>/solution1/syn/verilog from the synthesis machine"
    )


class Verifier:
    """Runs the reference and every source for one project."""

    def __init__(self, project: FirmwareProject, work_dir: Path, cache_dir: Path | None = None,
                 top: str | None = None, threads: int | None = None) -> None:
        self.project = project
        self.work_dir = Path(work_dir)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.top = top or project.top
        self.threads = threads
        self.stimulus_hash: str | None = None
        emulator, why_not = emulator_reference(project, self.work_dir)
        self.reference: EmulatorReference | CppReference = emulator or CppReference(
            project, self.cache_dir.parent / "cpp-reference"
        )
        self.reference_label = self.reference.name + (f"; the emulator is not used: {why_not}" if why_not else "")

    @property
    def inputs(self) -> list[Port]:
        return self.project.input_ports

    @property
    def outputs(self) -> list[Port]:
        return self.project.output_ports

    def expected(self, input_words: np.ndarray, label: str, answers: str | None = None,
                 model: dict[str, Any] | None = None) -> VectorSet:
        """Inputs with the reference's outputs, saved so results can name it by hash."""
        words = np.asarray(input_words, dtype=np.int64)
        for port, start in zip(self.inputs, np.cumsum([0] + [p.size for p in self.inputs])):
            t = FixedType.parse(port.type)
            block = words[:, start : start + port.size]
            if block.size and (block.min() < t.min_word or block.max() > t.max_word):
                raise BadInputError(
                    f"{label}: words of input {port.name} span [{block.min()}, {block.max()}], outside "
                    f"{port.type} [{t.min_word}, {t.max_word}]"
                )
        outputs = self.reference.predict_words(words)
        # A result folder made elsewhere names its own model; the reference here is the project itself.
        identity = model if model is not None else {"project": str(self.project.folder), "top": self.project.top}
        vectors = VectorSet(self.inputs, self.outputs, words, outputs, model=dict(identity),
                            source=self.reference.name, stimulus_hash=answers)
        vectors.save(self.work_dir / f"expected-{label}")
        return vectors

    def _result_folder(self, spec: SourceSpec, stimulus: np.ndarray, label: str) -> tuple[VectorSet, VectorSet, str]:
        """A result folder answers the stimulus set named by its stimulus_hash (or carries its inputs)."""
        try:
            result = VectorSet.load(spec.path)
        except VectorFormatError as exc:
            raise BadInputError(f"{spec}: {exc}") from exc
        if result.outputs != self.outputs or result.inputs != self.inputs:
            raise BadInputError(
                f"{spec}: ports {[p.to_json() for p in result.inputs + result.outputs]} are not the project's "
                f"{[p.to_json() for p in self.inputs + self.outputs]}"
            )
        if result.input_words is not None:
            stimulus, label, answers = result.input_words, f"the inputs recorded in {spec.path}", result.stimulus_hash
        elif self.stimulus_hash is None or result.stimulus_hash != self.stimulus_hash:
            raise BadInputError(
                f"{spec}: the result answers stimulus {result.stimulus_hash}; give that stimulus set with "
                f"--stimulus DIR (given: {self.stimulus_hash or 'none'})"
            )
        else:
            answers = self.stimulus_hash
        expected = self.expected(stimulus, spec.kind, answers=answers, model=result.model)
        return expected, result, label

    def check(self, spec: SourceSpec, stimulus: np.ndarray, stimulus_label: str) -> SourceResult:
        start = time.monotonic()
        details: dict[str, Any] = {}
        if spec.kind == "verilog":
            verilog = find_verilog_dir(spec.path)
            source = HLSVerilogSource(verilog, self.inputs, self.outputs, self.work_dir / "verilog",
                                      top=self.top, cache_dir=self.cache_dir, threads=self.threads)
            source.write()  # port binding errors before any build
            expected = self.expected(stimulus, "verilog")
            build_start = time.monotonic()
            source.compile()
            details["build_seconds"] = round(time.monotonic() - build_start, 3)
            sim_start = time.monotonic()
            actual = source.simulate(expected)
            sim = time.monotonic() - sim_start
            details["simulate_seconds"] = round(sim, 3)
            details["events_per_second"] = round(len(stimulus) / sim, 1) if sim > 0 else None
            details["verilog_dir"] = str(verilog)
            details["top"] = source.top
        elif spec.kind == "cosim":
            tv = find_tv_dir(spec.path)
            source_c = CosimImport(tv, self.inputs, self.outputs, self.work_dir / "cosim", top=self.top)
            source_c.compile()
            cosim_inputs = source_c.read_inputs()
            stimulus_label = f"the co-simulation's own inputs ({tv / 'cdatafile'})"
            expected = self.expected(cosim_inputs, "cosim")
            actual = source_c.simulate(expected)
        elif spec.path.is_dir():
            expected, actual, stimulus_label = self._result_folder(spec, stimulus, stimulus_label)
        else:
            board = BoardCaptureSource(spec.path, self.inputs, self.outputs, self.work_dir / spec.kind)
            echoed, _ = board.read()
            if echoed is not None:
                stimulus, stimulus_label = echoed, f"the inputs recorded in {spec.path}"
            expected = self.expected(stimulus, spec.kind)
            actual = board.simulate(expected)
        report = compare(expected, actual)
        return SourceResult(str(spec), self.reference_label, report, stimulus_label,
                            time.monotonic() - start, details)


def verify_project(
    project: FirmwareProject, specs: list[SourceSpec], events: int = DEFAULT_EVENTS, seed: int = DEFAULT_SEED,
    stimulus_dir: Path | None = None, top: str | None = None, cache_dir: Path | None = None,
    threads: int | None = None,
) -> tuple[list[SourceResult], dict[str, Any]]:
    """Every source against the reference; returns the results and how the stimulus was made."""
    if not specs:
        raise BadInputError("give at least one --against KIND:PATH (verilog, cosim, board or vectors)")
    if stimulus_dir is not None:
        stimulus, stimulus_hash = read_stimulus(stimulus_dir, project)
        stimulus_info: dict[str, Any] = {"kind": "given", "path": str(stimulus_dir), "events": len(stimulus)}
        label = f"{len(stimulus)} events from {stimulus_dir}"
    else:
        stimulus = generated_stimulus(project.input_ports, events, seed)
        stimulus_info = {"kind": "generated (full range, rails, zero)", "seed": seed, "events": events}
        label = f"{events} generated events (seed {seed}: full range, rails, zero)"
    with tempfile.TemporaryDirectory(prefix="l1flow-verify-") as tmp:
        verifier = Verifier(project, Path(tmp), cache_dir=cache_dir, top=top, threads=threads)
        if stimulus_dir is not None:
            verifier.stimulus_hash = stimulus_hash
        results = [verifier.check(spec, stimulus, label) for spec in specs]
    return results, stimulus_info


def results_table(results: list[SourceResult], examples: int = 5) -> str:
    lines = [
        f"{'source':<50} {'events':>8} {'mism. events':>13} {'mism. words':>12}  verdict",
    ]
    for r in results:
        rep = r.report
        lines.append(
            f"{r.source:<50} {rep.compared_events:>8} {rep.mismatched_events:>13} {rep.mismatched_words:>12}  "
            f"{'PASS' if rep.passed else 'FAIL'}"
        )
    for r in results:
        lines.append("")
        lines.append(f"{r.source}: reference {r.reference}; stimulus {r.stimulus}")
        for key in ("top", "build_seconds", "simulate_seconds", "events_per_second"):
            if key in r.details:
                lines.append(f"  {key.replace('_', ' ')}: {r.details[key]}")
        for failure in r.report.failures:
            lines.append(f"  FAILED {failure}")
        for m in r.report.first_mismatches[:examples]:
            inputs = " ".join(str(w) for w in (m.input_words or [])[:16])
            more = " ..." if m.input_words and len(m.input_words) > 16 else ""
            for w in m.words:
                lines.append(
                    f"  event {m.event}: {w.port}[{w.index}] expected {w.expected}, got {w.actual}, "
                    f"bits {w.differing_bits}; inputs {inputs}{more}"
                )
    return "\n".join(lines)


def write_results_json(path: Path, results: list[SourceResult], stimulus: dict[str, Any]) -> None:
    from l1flow.fileio import write_json_atomic

    write_json_atomic(path, {"stimulus": stimulus, "sources": [r.to_dict() for r in results]})

