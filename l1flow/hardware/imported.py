"""Hardware results made elsewhere: vendor co-simulation output and FPGA board captures.

Both are wrapped as HardwareSource classes, so the gate treats them like any
simulator: ``write()`` and ``compile()`` check that the files are there and
well formed, ``run(input_words)`` checks that the files answer exactly these
input words and returns the output words.

Vitis/Vivado HLS co-simulation (``cosim_design``) leaves, under
``<prj>/solution1/sim/tv/``::

    cdatafile/c.<top>.autotvin_<port>.dat      inputs the C test bench applied
    cdatafile/c.<top>.autotvout_<port>.dat     outputs of the C simulation
    rtldatafile/rtl.<top>.autotvout_<port>.dat outputs of the RTL simulation

one file per RTL port (``input_1`` / ``input_1_V`` packed, ``layer7_out_0``
/ ``layer7_out_0_V`` per element), each::

    [[[runtime]]]
    [[transaction]] 0
    0x0ffd2
    [[/transaction]]
    [[transaction]] 1
    ...
    [[[/runtime]]]

one transaction per call of the top function (one event), holding the
port's raw bits as ``sc_bv::to_string(SC_HEX)`` (``0x`` and hex digits,
possibly with a leading 0). A packed port holds element 0 in its low bits.

Board capture (``l1flow-board-capture/1``, docs/formats.md "Board capture"), a text file defined here::

    # l1flow-board-capture/1 inputs=57 outputs=1
    # free comments
    0: 01a 3ff 000 ... | 0c3
    1: ...

one event per line: the event number, the input words the board received
(as an echo), ``|``, the output words it produced; every word is the raw
two's complement bits of its port type in hex with exactly ceil(width/4)
digits (``ffff`` is -1 for a 16-bit signed type; a sign or another digit
count is refused, as it contradicts the declared type). Capture firmware
writes it by reading its link buffers; a result folder in the test-vector
format (docs/formats.md) is accepted as well.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from l1flow.errors import BadInputError
from l1flow.fileio import write_text_atomic
from l1flow.firmware.fixed import FixedType
from l1flow.firmware.vectors import META_FILE, Port, VectorFormatError, VectorSet
from l1flow.hardware.base import HardwareSource

BOARD_FORMAT = "l1flow-board-capture/1"
_HEX = re.compile(r"^(?:0[xX])?([0-9a-fA-F]+)$")


class ImportFormatError(BadInputError):
    """An imported result file is missing, truncated, reordered or malformed."""


class StimulusMismatchError(BadInputError):
    """The imported results answer other input words than the stimulus given."""


# --------------------------------------------------------------------------- raw words


def raw_to_word(raw: int, t: FixedType) -> int:
    """Raw bits of a port word (unsigned) to its signed-or-unsigned int64 word."""
    if t.signed and raw >> (t.width - 1) & 1:
        return raw - (1 << t.width)
    return raw


def word_to_raw(word: int, t: FixedType) -> int:
    return int(word) & ((1 << t.width) - 1)


def _parse_hex(token: str, bits: int, where: str) -> int:
    if token.startswith(("-", "+")):
        raise ImportFormatError(
            f"{where}: {token!r} carries a sign; words are the raw bits of the port type in hex, never signed"
        )
    match = _HEX.match(token)
    if match is None:
        if re.search(r"[xXzZ]", token[2:] if token[:2].lower() == "0x" else token):
            raise ImportFormatError(f"{where}: {token!r} holds unknown (X/Z) bits; the RTL left an output undriven")
        raise ImportFormatError(f"{where}: {token!r} is not a hex word")
    value = int(match.group(1), 16)
    if value >> bits:
        raise ImportFormatError(f"{where}: {token!r} has more than the port's {bits} bits")
    return value


def check_word_digits(token: str, t: FixedType, count: int, where: str, leading_zero: bool) -> int:
    """The raw bits of a hex word of ``count`` elements of type ``t``, its digit count checked against them.

    Vitis and Vivado HLS write every transaction with ``sc_bv<bits>::to_string(SC_HEX)``:
    a fixed number of digits, ceil((bits+1)/4) (a sign digit: 4 for 13 bits,
    9 for 32; ceil(bits/4) is accepted too). A word with fewer or more digits,
    or with bits set above the port's width, says the declared type (width,
    sign or element count) is not the one the RTL has.
    """
    bits = count * t.width
    digits = _HEX.match(token.lstrip("+-"))
    if token.startswith(("-", "+")) or digits is None:
        return _parse_hex(token, bits, where)
    n = len(digits.group(1))
    need = (bits + 3) // 4
    allowed = (need, (bits + 4) // 4) if leading_zero else (need,)
    value = int(digits.group(1), 16)
    described = f"{count} x {t}" if count > 1 else str(t)
    if n not in allowed:
        fits = [k for k in range(1, 4 * count + 2) if n in ((k * t.width + 3) // 4, (k * t.width + 4) // 4)]
        hint = f"; {n} digits fit {fits[0]} elements of {t.width} bits" if fits and count > 1 else ""
        raise ImportFormatError(
            f"{where}: {token!r} has {n} hex digits, but the declared type {described} needs {need} "
            f"({bits} bits){hint}: the port's width or element count in the project differs from the RTL's"
        )
    if value >> bits:
        extra = value >> bits
        signed_ext = t.signed and extra == (1 << (4 * n - bits)) - 1 and (value >> (bits - 1)) & 1
        why = ("sign-extended beyond the port: the RTL port is wider or signed where the type says otherwise"
               if signed_ext else "bits set above the declared width")
        raise ImportFormatError(f"{where}: {token!r} has {value.bit_length()} significant bits, {described} has {bits}: {why}")
    return value


def _types(ports: list[Port]) -> list[FixedType]:
    return [FixedType.parse(p.type) for p in ports]


def _word_types(ports: list[Port]) -> list[FixedType]:
    """The type of every word of an event row, in row order."""
    out: list[FixedType] = []
    for p, t in zip(ports, _types(ports)):
        out.extend([t] * p.size)
    return out


def _check_stimulus(expected: np.ndarray, found: np.ndarray, what: str) -> None:
    """The imported results must answer exactly the stimulus being checked."""
    expected = np.asarray(expected, dtype=np.int64)
    if expected.shape != found.shape:
        raise StimulusMismatchError(
            f"{what} holds {found.shape[0]} events of {found.shape[1]} input words; the stimulus has "
            f"{expected.shape[0]} of {expected.shape[1]}"
        )
    differ = np.nonzero(np.any(expected != found, axis=1))[0]
    if differ.size:
        e = int(differ[0])
        col = int(np.nonzero(expected[e] != found[e])[0][0])
        raise StimulusMismatchError(
            f"{what} was produced from other inputs: {differ.size} events differ, first event {e} word {col} "
            f"is {found[e, col]} there and {expected[e, col]} in the stimulus"
        )


# --------------------------------------------------------------------------- Vitis co-simulation files


@dataclass(frozen=True)
class CosimPort:
    """One RTL port's files and the event-row words it carries (element i at bits [i*w, (i+1)*w))."""

    rtl_name: str
    first_word: int
    count: int
    type: FixedType


def read_transactions(path: Path) -> list[tuple[int, list[tuple[str, int]]]]:
    """The transactions of one ``.dat`` file: (number, [(token, line)]); checks order and framing."""
    if not path.exists():
        raise ImportFormatError(f"{path}: file is missing")
    tokens = [
        (tok, n)
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), start=1)
        for tok in line.split()
    ]
    if not tokens or tokens[0][0] != "[[[runtime]]]":
        raise ImportFormatError(f"{path}:1: expected [[[runtime]]] at the start (a Vitis co-simulation .dat file)")
    out: list[tuple[int, list[tuple[str, int]]]] = []
    i = 1
    while True:
        if i >= len(tokens):
            line = tokens[-1][1]
            raise ImportFormatError(f"{path}:{line}: file ends without [[[/runtime]]] (truncated)")
        tok, line = tokens[i]
        if tok == "[[[/runtime]]]":
            break
        if tok != "[[transaction]]":
            raise ImportFormatError(f"{path}:{line}: expected [[transaction]] or [[[/runtime]]], found {tok!r}")
        if i + 1 >= len(tokens) or not tokens[i + 1][0].isdigit():
            raise ImportFormatError(f"{path}:{line}: [[transaction]] without its number")
        number = int(tokens[i + 1][0])
        if number != len(out):
            raise ImportFormatError(
                f"{path}:{line}: transaction {number} where {len(out)} was expected (reordered or missing transactions)"
            )
        i += 2
        data: list[tuple[str, int]] = []
        while i < len(tokens) and tokens[i][0] != "[[/transaction]]":
            if tokens[i][0].startswith("[["):
                raise ImportFormatError(f"{path}:{tokens[i][1]}: {tokens[i][0]!r} inside transaction {number}")
            data.append(tokens[i])
            i += 1
        if i >= len(tokens):
            raise ImportFormatError(f"{path}:{line}: transaction {number} is not closed (truncated)")
        out.append((number, data))
        i += 1
    return out


def _bind_cosim(folder: Path, prefix: str, top: str, ports: list[Port]) -> list[CosimPort]:
    """Find the ``.dat`` file of every RTL port carrying ``ports`` (packed or per element; Vitis or Vivado names)."""
    bound: list[CosimPort] = []
    first = 0
    for port, t in zip(ports, _types(ports)):
        packed = [n for n in (port.name, f"{port.name}_V") if (folder / f"{prefix}.{top}.{n}.dat").exists()]
        if packed:
            bound.append(CosimPort(packed[0], first, port.size, t))
        else:
            for i in range(port.size):
                names = (f"{port.name}_{i}", f"{port.name}_{i}_V", f"{port.name}_V_{i}")
                found = [n for n in names if (folder / f"{prefix}.{top}.{n}.dat").exists()]
                if not found:
                    present = sorted(p.name for p in folder.glob(f"{prefix}.{top}.*.dat"))
                    raise ImportFormatError(
                        f"{folder}: no {prefix}.{top}.<port>.dat for word {i} of port {port.name} "
                        f"(looked for {port.name}, {port.name}_V, {', '.join(names)}); present: {present[:8]}"
                    )
                bound.append(CosimPort(found[0], first + i, 1, t))
            extra = [n for n in (f"{port.name}_{port.size}", f"{port.name}_{port.size}_V", f"{port.name}_V_{port.size}")
                     if (folder / f"{prefix}.{top}.{n}.dat").exists()]
            if extra:
                raise ImportFormatError(
                    f"{folder / f'{prefix}.{top}.{extra[0]}.dat'}: the RTL has element {port.size} of {port.name}, "
                    f"but the project declares {port.size} elements ({port.type}{list(port.shape)})"
                )
        first += port.size
    return bound


def read_cosim_words(folder: Path, prefix: str, top: str, ports: list[Port]) -> np.ndarray:
    """(events, words) from the ``<prefix>.<top>.<port>.dat`` files of ``ports`` in ``folder``."""
    bound = _bind_cosim(folder, prefix, top, ports)
    width = sum(p.size for p in ports)
    columns: dict[int, list[int]] = {}
    events: int | None = None
    first_file = ""
    for b in bound:
        path = folder / f"{prefix}.{top}.{b.rtl_name}.dat"
        transactions = read_transactions(path)
        if events is None:
            events, first_file = len(transactions), path.name
        elif len(transactions) != events:
            raise ImportFormatError(
                f"{path}: {len(transactions)} transactions, but {first_file} has {events} (truncated file?)"
            )
        mask = (1 << b.type.width) - 1
        for k in range(b.count):
            columns[b.first_word + k] = []
        for number, data in transactions:
            if len(data) != 1:
                line = data[1][1] if len(data) > 1 else 0
                raise ImportFormatError(
                    f"{path}:{line}: transaction {number} holds {len(data)} words; an io_parallel port holds one"
                )
            token, line = data[0]
            raw = check_word_digits(
                token, b.type, b.count, f"{path}:{line}: port {b.rtl_name}, transaction {number}", leading_zero=True
            )
            for k in range(b.count):
                columns[b.first_word + k].append(raw_to_word((raw >> (k * b.type.width)) & mask, b.type))
    n = events or 0
    out = np.zeros((n, width), dtype=np.int64)
    for col, values in columns.items():
        out[:, col] = values
    return out


def write_cosim_words(folder: Path, prefix: str, top: str, ports: list[Port], words: np.ndarray, packed: bool) -> None:
    """Write ``.dat`` files as Vitis does (packed: one port per array; else one per element)."""
    folder.mkdir(parents=True, exist_ok=True)
    words = np.asarray(words, dtype=np.int64)
    first = 0
    for port, t in zip(ports, _types(ports)):
        groups = [(port.name, range(port.size))] if packed else [(f"{port.name}_{i}", range(i, i + 1)) for i in range(port.size)]
        for rtl_name, elements in groups:
            digits = (len(elements) * t.width + 4) // 4  # sc_bv's SC_HEX: a sign digit above the bits
            lines = ["[[[runtime]]]"]
            for event, row in enumerate(words):
                raw = 0
                for k, i in enumerate(elements):
                    raw |= word_to_raw(row[first + i], t) << (k * t.width)
                lines += [f"[[transaction]] {event}", f"0x{raw:0{digits}x}", "[[/transaction]] "]
            lines.append("[[[/runtime]]]")
            write_text_atomic(folder / f"{prefix}.{top}.{rtl_name}.dat", "\n".join(lines) + "\n")
        first += port.size


def find_tv_dir(sim_dir: Path) -> Path:
    """Accept ``solution1/sim``, ``solution1/sim/tv``, the solution folder or the ``*_prj`` folder holding it."""
    solutions = [*sorted(sim_dir.glob("solution*")), *sorted(sim_dir.glob("*_prj/solution*"))]
    for folder in (sim_dir, *solutions):
        for candidate in (folder / "tv", folder, folder / "sim" / "tv"):
            if (candidate / "rtldatafile").is_dir() or (candidate / "cdatafile").is_dir():
                return candidate
    raise ImportFormatError(
        f"{sim_dir}: no tv/cdatafile or tv/rtldatafile folder; bring back <prj>/solution1/sim after cosim_design"
    )


class CosimImport(HardwareSource):
    """RTL outputs of a Vitis/Vivado HLS co-simulation, checked against the stimulus it was run on."""

    source = "vitis-cosim"

    def __init__(self, sim_dir: Path, inputs: list[Port], outputs: list[Port], project_dir: Path, top: str = "myproject") -> None:
        super().__init__(project_dir)
        self.sim_dir = Path(sim_dir)
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.top = top

    @property
    def tv_dir(self) -> Path:
        return find_tv_dir(self.sim_dir)

    def write(self) -> None:
        """Nothing to lay out; check that every port's files exist."""
        tv = self.tv_dir
        _bind_cosim(tv / "cdatafile", "c", self.top, [_as_tvin(p) for p in self.inputs])
        _bind_cosim(tv / "rtldatafile", "rtl", self.top, [_as_tvout(p) for p in self.outputs])

    def compile(self) -> None:
        """Nothing to build; parse every file once so framing errors surface early."""
        self.read_inputs()
        self.read_outputs()

    def read_inputs(self) -> np.ndarray:
        return read_cosim_words(self.tv_dir / "cdatafile", "c", self.top, [_as_tvin(p) for p in self.inputs])

    def read_outputs(self) -> np.ndarray:
        return read_cosim_words(self.tv_dir / "rtldatafile", "rtl", self.top, [_as_tvout(p) for p in self.outputs])

    def run(self, input_words: np.ndarray) -> np.ndarray:
        _check_stimulus(input_words, self.read_inputs(), f"co-simulation in {self.tv_dir}")
        outputs = self.read_outputs()
        if len(outputs) != len(input_words):
            raise ImportFormatError(
                f"{self.tv_dir / 'rtldatafile'}: {len(outputs)} RTL transactions for {len(input_words)} input events "
                "(co-simulation stopped early?)"
            )
        return outputs


def is_cosim_folder(path: Path) -> bool:
    """A co-simulation's ``sim/tv`` (or ``sim``, or the solution folder) rather than a vector folder."""
    try:
        find_tv_dir(Path(path))
    except ImportFormatError:
        return False
    return True


def cosim_top(tv_dir: Path) -> str:
    """The top function's name, read from the file names ``c.<top>.autotvin_<port>.dat``."""
    names = {p.name.split(".")[1] for p in (tv_dir / "cdatafile").glob("c.*.autotvin_*.dat") if p.name.count(".") >= 2}
    if len(names) != 1:
        raise ImportFormatError(
            f"{tv_dir / 'cdatafile'}: expected c.<top>.autotvin_<port>.dat files of one top function, found tops {sorted(names)}"
        )
    return names.pop()


def cosim_result(sim_dir: Path, stimulus: VectorSet, top: str | None = None) -> VectorSet:
    """A co-simulation folder read as a result set answering ``stimulus`` (for the gate)."""
    tv = find_tv_dir(Path(sim_dir))
    source = CosimImport(tv, stimulus.inputs, stimulus.outputs, tv, top=top or cosim_top(tv))
    return source.simulate(stimulus)


def _as_tvin(port: Port) -> Port:
    return Port(f"autotvin_{port.name}", port.type, port.shape)


def _as_tvout(port: Port) -> Port:
    return Port(f"autotvout_{port.name}", port.type, port.shape)


def write_cosim_tv(
    tv_dir: Path, top: str, inputs: list[Port], outputs: list[Port], input_words: np.ndarray,
    output_words: np.ndarray, packed_outputs: bool = False,
) -> None:
    """Co-simulation files as Vitis writes them for an hls4ml io_parallel top (packed inputs, partitioned outputs)."""
    write_cosim_words(tv_dir / "cdatafile", "c", top, [_as_tvin(p) for p in inputs], input_words, packed=True)
    write_cosim_words(tv_dir / "cdatafile", "c", top, [_as_tvout(p) for p in outputs], output_words, packed_outputs)
    write_cosim_words(tv_dir / "rtldatafile", "rtl", top, [_as_tvout(p) for p in outputs], output_words, packed_outputs)


# --------------------------------------------------------------------------- board captures


def _board_header(path: Path, line: str, n_in: int, n_out: int) -> None:
    fields = line.lstrip("#").split()
    if not fields or fields[0] != BOARD_FORMAT:
        raise ImportFormatError(f"{path}:1: first line must be '# {BOARD_FORMAT} inputs=N outputs=M', found {line!r}")
    values = dict(f.split("=", 1) for f in fields[1:] if "=" in f)
    for key, expected in (("inputs", n_in), ("outputs", n_out)):
        if values.get(key) != str(expected):
            raise ImportFormatError(
                f"{path}:1: header says {key}={values.get(key)}, the ports have {expected} {key} words per event"
            )


def read_board_capture(path: Path, inputs: list[Port], outputs: list[Port]) -> tuple[np.ndarray, np.ndarray]:
    """(input words, output words) of a board capture file, checked line by line."""
    path = Path(path)
    if not path.exists():
        raise ImportFormatError(f"{path}: file is missing")
    in_types, out_types = _word_types(inputs), _word_types(outputs)
    lines = path.read_text(errors="replace").splitlines()
    if not lines:
        raise ImportFormatError(f"{path}: empty file; expected the '# {BOARD_FORMAT} ...' header")
    _board_header(path, lines[0], len(in_types), len(out_types))
    ins: list[list[int]] = []
    outs: list[list[int]] = []
    for n, line in enumerate(lines[1:], start=2):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        where = f"{path}:{n}"
        head, sep, body = text.partition(":")
        if not sep or not head.strip().isdigit():
            raise ImportFormatError(f"{where}: expected '<event>: <input words> | <output words>', found {text[:60]!r}")
        event = int(head)
        if event != len(ins):
            raise ImportFormatError(f"{where}: event {event} where {len(ins)} was expected (reordered or missing lines)")
        left, bar, right = body.partition("|")
        if not bar:
            raise ImportFormatError(f"{where}: no '|' between input and output words")
        in_tokens, out_tokens = left.split(), right.split()
        if len(in_tokens) != len(in_types) or len(out_tokens) != len(out_types):
            raise ImportFormatError(
                f"{where}: {len(in_tokens)} input and {len(out_tokens)} output words, expected "
                f"{len(in_types)} and {len(out_types)} (truncated line?)"
            )
        ins.append([
            raw_to_word(check_word_digits(tok, t, 1, f"{where}: input word {i}", leading_zero=False), t)
            for i, (tok, t) in enumerate(zip(in_tokens, in_types))
        ])
        outs.append([
            raw_to_word(check_word_digits(tok, t, 1, f"{where}: output word {i}", leading_zero=False), t)
            for i, (tok, t) in enumerate(zip(out_tokens, out_types))
        ])
    return (
        np.array(ins, dtype=np.int64).reshape(-1, len(in_types)),
        np.array(outs, dtype=np.int64).reshape(-1, len(out_types)),
    )


def write_board_capture(path: Path, inputs: list[Port], outputs: list[Port], input_words: np.ndarray,
                        output_words: np.ndarray) -> None:
    """Write words in the board capture format (what capture firmware produces; also for round trips)."""
    in_types, out_types = _word_types(inputs), _word_types(outputs)
    in_digits = [(t.width + 3) // 4 for t in in_types]
    out_digits = [(t.width + 3) // 4 for t in out_types]
    lines = [f"# {BOARD_FORMAT} inputs={len(in_types)} outputs={len(out_types)}"]
    for event, (row_in, row_out) in enumerate(zip(np.asarray(input_words), np.asarray(output_words))):
        left = " ".join(f"{word_to_raw(w, t):0{d}x}" for w, t, d in zip(row_in, in_types, in_digits))
        right = " ".join(f"{word_to_raw(w, t):0{d}x}" for w, t, d in zip(row_out, out_types, out_digits))
        lines.append(f"{event}: {left} | {right}")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(Path(path), "\n".join(lines) + "\n")


class BoardCaptureSource(HardwareSource):
    """Outputs captured on an FPGA board: a board capture file, or a result folder in the vector format."""

    source = "board"

    def __init__(self, capture: Path, inputs: list[Port], outputs: list[Port], project_dir: Path) -> None:
        super().__init__(project_dir)
        self.capture = Path(capture)
        self.inputs = list(inputs)
        self.outputs = list(outputs)

    def write(self) -> None:
        """Nothing to lay out; the capture must exist."""
        if not self.capture.exists():
            raise ImportFormatError(f"{self.capture}: board capture is missing")

    def compile(self) -> None:
        """Nothing to build; parse the capture once so format errors surface early."""
        self._read(None)

    def read(self) -> tuple[np.ndarray | None, np.ndarray]:
        """(the input words the capture recorded, or None; the output words)."""
        return self._read(None)

    def _read(self, stimulus_hash: str | None) -> tuple[np.ndarray | None, np.ndarray]:
        if self.capture.is_dir():
            try:
                result = VectorSet.load(self.capture)
            except VectorFormatError as exc:
                raise ImportFormatError(str(exc)) from exc
            if [p.to_json() for p in result.outputs] != [p.to_json() for p in self.outputs]:
                raise ImportFormatError(
                    f"{self.capture / META_FILE}: output ports {[p.to_json() for p in result.outputs]} differ from "
                    f"the stimulus's {[p.to_json() for p in self.outputs]}"
                )
            if result.output_words is None:
                raise ImportFormatError(f"{self.capture}: the result folder holds no output words")
            if stimulus_hash is not None and result.stimulus_hash not in (None, stimulus_hash):
                raise StimulusMismatchError(
                    f"{self.capture / META_FILE}: answers stimulus {result.stimulus_hash}, not {stimulus_hash}"
                )
            return result.input_words, result.output_words
        return read_board_capture(self.capture, self.inputs, self.outputs)

    def run(self, input_words: np.ndarray) -> np.ndarray:
        echoed, outputs = self._read(None)
        if echoed is not None:
            _check_stimulus(input_words, echoed, f"board capture {self.capture}")
        elif len(outputs) != len(input_words):
            raise StimulusMismatchError(
                f"{self.capture}: {len(outputs)} captured events for {len(input_words)} stimulus events"
            )
        return outputs

    def simulate(self, stimulus: VectorSet, result_dir: Path | None = None) -> VectorSet:
        """As for every source; a result folder must also name this stimulus's hash."""
        if self.capture.is_dir():
            self._read(stimulus.content_hash or None)
        return super().simulate(stimulus, result_dir)
