"""The bit-exact gate: emulation and hardware output words compared as integers.

:func:`compare` answers one question, "did the hardware compute exactly what
the emulation computed, for this stimulus and this model?", and explains any
"no". It checks, in order:

1. the result answers this stimulus (its ``stimulus_hash`` is the stimulus
   set's content hash) and, where both carry input words, the same inputs;
2. the result comes from the same model (``model`` metadata: version,
   firmware hash, ... must be identical);
3. the same ports with the same types and shapes;
4. the same number of events (a truncated result names both counts, and
   whether what is there matches);
5. every output word within its type's range;
6. every output word equal, as an integer.

Mismatches are counted per output port, the first few mismatching events are
listed with their input words, expected and actual words, and the bit
positions that differ (XOR within the port's width), and a histogram of
differing bit positions per port shows at a glance e.g. a rounding error (LSB
only) or a sign problem (MSB). A result holding the right rows in another
order is reported as reordered. ``passed`` is true only if all checks pass.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from l1flow.errors import BadInputError
from l1flow.firmware.fixed import FixedType, FixedTypeError
from l1flow.firmware.vectors import META_FILE, Port, VectorFormatError, VectorSet
from l1flow.records import GateEntry

DEFAULT_EXAMPLES = 10


@dataclass
class GateCheck:
    """One precondition or comparison, passed or not, with a readable reason."""

    name: str
    passed: bool
    detail: str


@dataclass
class WordMismatch:
    """One differing word: port, element index in the port, both words, differing bits."""

    port: str
    index: int
    expected: int
    actual: int
    differing_bits: list[int]


@dataclass
class MismatchEvent:
    """One event whose outputs differ."""

    event: int
    input_words: list[int] | None
    expected_words: list[int]
    actual_words: list[int]
    words: list[WordMismatch]


@dataclass
class OutputMismatches:
    """Mismatch counts of one output port."""

    port: str
    type: str
    width: int
    words_per_event: int
    mismatched_events: int
    mismatched_words: int
    #: largest |expected - actual| in LSBs (1 for a rounding difference)
    max_word_diff: int = 0
    #: bit position -> number of mismatching words in which that bit differs
    bit_histogram: dict[int, int] = field(default_factory=dict)


@dataclass
class GateReport:
    """Outcome of the gate; ``passed`` only if every check passed."""

    passed: bool
    events_expected: int
    events_actual: int
    checks: list[GateCheck]
    mismatched_events: int = 0
    mismatched_words: int = 0
    compared_events: int = 0
    outputs: list[OutputMismatches] = field(default_factory=list)
    first_mismatches: list[MismatchEvent] = field(default_factory=list)
    reordered: bool = False
    expected_source: str = ""
    actual_source: str = ""
    model: dict[str, Any] = field(default_factory=dict)

    @property
    def failures(self) -> list[str]:
        return [f"{c.name}: {c.detail}" for c in self.checks if not c.passed]

    def to_dict(self) -> dict[str, Any]:
        """The full report as JSON (the run summary keeps a :class:`l1flow.records.GateEntry`).

        ``mismatched_events`` counts events with any differing word,
        ``mismatched_words`` the differing words; a gate that failed before
        comparing words (other stimulus or model, different ports) reports
        ``passed: false`` with its ``failures`` whatever those counts say.
        """
        data = asdict(self)
        data["events"] = self.compared_events
        data["failures"] = self.failures
        for output in data["outputs"]:
            output["bit_histogram"] = {str(k): v for k, v in output["bit_histogram"].items()}
        return data

    def entry(self, source: str, events_per_s: float | None, observed_latency_cycles: int | None = None) -> GateEntry:
        """This gate as the run summary records it."""
        return GateEntry(
            source=source,
            events=self.compared_events,
            mismatched_events=self.mismatched_events,
            mismatched_words=self.mismatched_words,
            passed=self.passed,
            events_per_s=events_per_s,
            failures=self.failures,
            observed_latency_cycles=observed_latency_cycles,
        )

    def summary_line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        sources = f"{self.actual_source or 'result'} vs {self.expected_source or 'expected'}"
        if not self.passed and self.compared_events == 0:
            # failed before any word was compared (unreadable result, other stimulus, other ports)
            return f"FAIL: {'; '.join(self.failures)}; {sources}; no events compared"
        text = (
            f"{verdict}: {self.mismatched_events} of {self.compared_events} events differ "
            f"({self.mismatched_words} words); {self.actual_source or 'result'} vs "
            f"{self.expected_source or 'expected'}"
        )
        if self.failures and not self.passed:
            text += "; " + "; ".join(self.failures)
        return text

    def to_markdown(self) -> str:
        """A readable report: verdict, checks, per-output counts, first mismatches."""
        lines = [f"## Bit-exact gate: {'PASS' if self.passed else 'FAIL'}", ""]
        lines.append(
            f"Expected ({self.expected_source or '?'}): {self.events_expected} events; "
            f"actual ({self.actual_source or '?'}): {self.events_actual} events; "
            f"compared {self.compared_events}."
        )
        lines += ["", "| check | result | detail |", "|---|---|---|"]
        for check in self.checks:
            lines.append(f"| {check.name} | {'ok' if check.passed else 'FAIL'} | {check.detail} |")
        if self.outputs:
            lines += [
                "",
                (
                    "| output | type | words/event | mismatched events | mismatched words | max diff (LSB) "
                    "| differing bits (bit: count) |"
                ),
                "|---|---|---|---|---|---|---|",
            ]
            for out in self.outputs:
                bits = ", ".join(f"{b}: {n}" for b, n in sorted(out.bit_histogram.items())) or "-"
                lines.append(
                    f"| {out.port} | `{out.type}` | {out.words_per_event} | {out.mismatched_events} | "
                    f"{out.mismatched_words} | {out.max_word_diff} | {bits} |"
                )
        if self.first_mismatches:
            lines += [
                "",
                f"First {len(self.first_mismatches)} mismatching events:",
                "",
                "| event | output[index] | expected | actual | differing bits | input words |",
                "|---|---|---|---|---|---|",
            ]
            for event in self.first_mismatches:
                inputs = _short(event.input_words) if event.input_words is not None else "-"
                for word in event.words:
                    lines.append(
                        f"| {event.event} | {word.port}[{word.index}] | {word.expected} | {word.actual} | "
                        f"{word.differing_bits} | {inputs} |"
                    )
        return "\n".join(lines) + "\n"


def _short(words: list[int], limit: int = 12) -> str:
    if len(words) <= limit:
        return " ".join(str(w) for w in words)
    return " ".join(str(w) for w in words[:limit]) + f" ... ({len(words)} words)"


def port_type(port: Port) -> FixedType | None:
    """The port's fixed-point type, or None if its spelling is not an ap_* type."""
    try:
        return FixedType.parse(port.type)
    except FixedTypeError:
        return None


def _port_slices(ports: list[Port]) -> list[tuple[Port, slice]]:
    out, start = [], 0
    for port in ports:
        out.append((port, slice(start, start + port.size)))
        start += port.size
    return out


def _ports_text(ports: list[Port]) -> str:
    return ", ".join(f"{p.name}:{p.type}{list(p.shape)}" for p in ports)


def _differing_bits(expected: int, actual: int, width: int) -> list[int]:
    diff = (expected ^ actual) & ((1 << width) - 1)
    return [bit for bit in range(width) if (diff >> bit) & 1]


def _row_keys(words: np.ndarray) -> np.ndarray:
    """One uint64 per row: a multiply-xor hash of its words (sorting 57 columns is slow)."""
    rng = np.random.default_rng(0x5EED)
    multipliers = rng.integers(1, 2**63, size=words.shape[1], dtype=np.uint64) | np.uint64(1)
    keys = np.zeros(len(words), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for column, multiplier in enumerate(multipliers):
            keys = (keys ^ words[:, column].view(np.uint64)) * multiplier
            keys ^= keys >> np.uint64(29)
    return keys


def _same_rows_any_order(a: np.ndarray, b: np.ndarray) -> bool:
    """True if a and b hold the same rows (with multiplicity), in whatever order."""
    if a.shape != b.shape:
        return False
    a_sorted = a[np.argsort(_row_keys(a), kind="stable")]
    b_sorted = b[np.argsort(_row_keys(b), kind="stable")]
    # equal sorted sequences prove equal multisets; only a 64-bit hash collision could hide one
    return bool(np.array_equal(a_sorted, b_sorted))


def compare(expected: VectorSet, actual: VectorSet, max_examples: int = DEFAULT_EXAMPLES) -> GateReport:
    """Compare a result set (``actual``) with the emulation's (``expected``), word by word.

    ``expected`` is the emulation's vector set: either the stimulus set
    itself (inputs and expected outputs) or a result set answering the same
    stimulus. See the module docstring for the checks.
    """
    checks: list[GateCheck] = []
    report = GateReport(
        passed=False,
        events_expected=expected.events,
        events_actual=actual.events,
        checks=checks,
        expected_source=expected.source,
        actual_source=actual.source,
        model=dict(expected.model),
    )

    # 1. stimulus
    answers = {h for h in (expected.content_hash, expected.stimulus_hash) if h}
    if actual.stimulus_hash is None:
        checks.append(GateCheck("stimulus", False, "the result names no stimulus_hash; it cannot be matched to inputs"))
    elif not answers:
        checks.append(GateCheck("stimulus", False, "the expected set has no content or stimulus hash (save it first)"))
    elif actual.stimulus_hash not in answers:
        checks.append(
            GateCheck(
                "stimulus",
                False,
                f"the result answers stimulus {actual.stimulus_hash[:16]}..., expected "
                f"{' or '.join(h[:16] + '...' for h in sorted(answers))}",
            )
        )
    else:
        checks.append(GateCheck("stimulus", True, f"result answers stimulus {actual.stimulus_hash[:16]}..."))
    if expected.input_words is not None and actual.input_words is not None:
        same_inputs = expected.input_words.shape == actual.input_words.shape and np.array_equal(
            expected.input_words, actual.input_words
        )
        checks.append(
            GateCheck(
                "inputs",
                same_inputs,
                "the result's input words equal the stimulus" if same_inputs else "the result carries different input words",
            )
        )

    # 2. model identity
    keys = sorted(set(expected.model) | set(actual.model))
    differing = [k for k in keys if expected.model.get(k) != actual.model.get(k)]
    if differing:
        detail = "; ".join(f"{k}: expected {expected.model.get(k)!r}, result {actual.model.get(k)!r}" for k in differing)
        checks.append(GateCheck("model", False, f"result from another model: {detail}"))
    else:
        identity = ", ".join(f"{k}={expected.model[k]}" for k in keys) or "no identity given"
        checks.append(GateCheck("model", True, f"same model ({identity})"))

    # 3. ports
    ports_ok = expected.outputs == actual.outputs and expected.inputs == actual.inputs
    if ports_ok:
        checks.append(GateCheck("ports", True, f"outputs {_ports_text(expected.outputs)}"))
    else:
        parts = []
        if expected.outputs != actual.outputs:
            parts.append(f"outputs expected [{_ports_text(expected.outputs)}], result [{_ports_text(actual.outputs)}]")
        if expected.inputs != actual.inputs:
            parts.append(f"inputs expected [{_ports_text(expected.inputs)}], result [{_ports_text(actual.inputs)}]")
        checks.append(GateCheck("ports", False, "; ".join(parts)))

    exp_words, act_words = expected.output_words, actual.output_words
    if exp_words is None or act_words is None:
        missing = "expected" if exp_words is None else "result"
        checks.append(GateCheck("outputs present", False, f"the {missing} set holds no output words"))
        return _finish(report)

    # 4. event counts
    n_exp, n_act = len(exp_words), len(act_words)
    common = min(n_exp, n_act)
    if n_exp != n_act:
        prefix = ""
        if ports_ok and common:
            same_prefix = np.array_equal(exp_words[:common], act_words[:common])
            prefix = f"; the first {common} events {'match' if same_prefix else 'do not all match'}"
        kind = "truncated" if n_act < n_exp else "longer"
        checks.append(
            GateCheck("events", False, f"result has {n_act} events, expected {n_exp} ({kind} result file){prefix}")
        )
    else:
        checks.append(GateCheck("events", True, f"{n_exp} events"))
    if not ports_ok:
        return _finish(report)

    # 5. range of the result's words
    slices = _port_slices(expected.outputs)
    out_of_range = []
    for port, cols in slices:
        ftype = port_type(port)
        if ftype is None or act_words.size == 0:
            continue
        block = act_words[:, cols]
        if block.min() >= ftype.min_word and block.max() <= ftype.max_word:
            continue
        bad = int(np.count_nonzero((block < ftype.min_word) | (block > ftype.max_word)))
        if bad:
            out_of_range.append(f"{port.name}: {bad} words outside [{ftype.min_word}, {ftype.max_word}] of {port.type}")
    checks.append(
        GateCheck("word range", not out_of_range, "; ".join(out_of_range) or "every result word fits its type")
    )

    # 6. the words themselves
    exp_c, act_c = exp_words[:common], act_words[:common]
    differ = exp_c != act_c
    event_mask = differ.any(axis=1)
    report.compared_events = common
    report.mismatched_events = int(event_mask.sum())
    report.mismatched_words = int(differ.sum())
    for port, cols in slices:
        ftype = port_type(port)
        width = ftype.width if ftype is not None else 64
        port_diff = differ[:, cols]
        counts = OutputMismatches(port.name, port.type, width, port.size, 0, 0)
        if report.mismatched_words and port_diff.any():
            rows = np.flatnonzero(port_diff.any(axis=1))
            exp_rows, act_rows = exp_c[rows][:, cols], act_c[rows][:, cols]
            xor = (exp_rows ^ act_rows)[port_diff[rows]]
            counts.mismatched_events = len(rows)
            counts.mismatched_words = int(xor.size)
            counts.max_word_diff = int(np.abs(exp_rows - act_rows).max())
            for bit in range(min(width, 64)):
                flips = int(np.count_nonzero((xor >> np.int64(bit)) & 1))
                if flips:
                    counts.bit_histogram[bit] = flips
        report.outputs.append(counts)
    for event in np.flatnonzero(event_mask)[:max_examples]:
        words = []
        for port, cols in slices:
            ftype = port_type(port)
            width = ftype.width if ftype is not None else 64
            for index in np.flatnonzero(differ[event, cols]):
                e, a = int(exp_c[event, cols][index]), int(act_c[event, cols][index])
                words.append(WordMismatch(port.name, int(index), e, a, _differing_bits(e, a, width)))
        inputs = None
        if expected.input_words is not None and event < len(expected.input_words):
            inputs = [int(w) for w in expected.input_words[event]]
        report.first_mismatches.append(
            MismatchEvent(
                event=int(event),
                input_words=inputs,
                expected_words=[int(w) for w in exp_c[event]],
                actual_words=[int(w) for w in act_c[event]],
                words=words,
            )
        )
    if report.mismatched_events:
        if _same_rows_any_order(exp_words, act_words):
            report.reordered = True
            checks.append(
                GateCheck(
                    "words",
                    False,
                    f"reordered: the result holds the same {n_exp} output rows in a different order "
                    f"({report.mismatched_events} events out of place); events must come back in stimulus order",
                )
            )
        else:
            per_port = ", ".join(f"{o.port}: {o.mismatched_events}" for o in report.outputs if o.mismatched_events)
            first = report.first_mismatches[0]
            w = first.words[0]
            checks.append(
                GateCheck(
                    "words",
                    False,
                    f"{report.mismatched_events} of {common} events differ ({per_port}); first at event "
                    f"{first.event}, {w.port}[{w.index}]: expected {w.expected}, got {w.actual}, bits {w.differing_bits}",
                )
            )
    else:
        checks.append(GateCheck("words", True, f"all {common} compared events identical"))
    return _finish(report)


def _finish(report: GateReport) -> GateReport:
    report.passed = all(c.passed for c in report.checks)
    return report


def compare_folders(expected_dir: Path, actual_dir: Path, max_examples: int = DEFAULT_EXAMPLES) -> GateReport:
    """:func:`compare` on saved vector folders; an unreadable result fails the gate.

    ``actual_dir`` may also be a Vitis co-simulation folder (``sim/tv``, ``sim``
    or the solution): its RTL outputs are read with the expected set's ports.
    A result folder whose file was altered or truncated after it was written
    fails the sha256 check in :meth:`VectorSet.load`; the gate reports that
    instead of raising, so a broken hardware result is a failed gate, not a crash.
    A folder that does not exist, or an unreadable expected set, is bad
    input (BadInputError, exit 2), not a mismatch.
    """
    from l1flow.hardware.imported import (
        ImportFormatError,
        StimulusMismatchError,
        cosim_result,
        is_cosim_folder,
    )

    for role, folder in (("expected", expected_dir), ("result", actual_dir)):
        if not Path(folder).is_dir():
            raise BadInputError(f"{folder}: no such {role} folder; give a test-vector folder (holding {META_FILE})")
    try:
        expected = VectorSet.load(expected_dir)
    except VectorFormatError as exc:
        raise BadInputError(f"expected set: {exc}") from exc
    try:
        if not (Path(actual_dir) / META_FILE).exists() and is_cosim_folder(Path(actual_dir)):
            # a co-simulation's sim/tv answers the inputs its own test bench applied; they must be these
            actual = cosim_result(Path(actual_dir), expected)
        else:
            actual = VectorSet.load(actual_dir)
    except (VectorFormatError, ImportFormatError, StimulusMismatchError) as exc:
        return GateReport(
            passed=False,
            events_expected=expected.events,
            events_actual=0,
            checks=[GateCheck("result readable", False, str(exc))],
            expected_source=expected.source,
            model=dict(expected.model),
        )
    return compare(expected, actual, max_examples)
