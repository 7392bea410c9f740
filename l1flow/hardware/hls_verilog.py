"""Verilog written by Vitis/Vivado HLS on a synthesis machine, simulated here with Verilator.

Bring back the ``<prj>/solution1/syn/verilog/`` (or ``impl/verilog/``) folder
of an hls4ml ``io_parallel`` project. Its top module has the ``ap_ctrl_hs``
block protocol (``ap_clk``, ``ap_rst`` or ``ap_rst_n``, ``ap_start``,
``ap_done``, ``ap_idle``, ``ap_ready``, sometimes ``ap_continue``) and one
port per array: hls4ml reshapes the inputs (one wide port, element 0 in the
low bits) and partitions the outputs (one port per element), all with
``_ap_vld``. Vivado HLS appends ``_V`` to the names (``input_1_V``,
``layer7_out_0_V``), Vitis does not. ROMs are ``*.dat`` files read with
``$readmemh``, often with the synthesis machine's absolute path.

:class:`HLSVerilogSource` reads the top module's port list, binds every
firmware word to its bits, generates the port code of a C++ harness
(``firmware_templates/verilator_hls``) that runs the handshake, and builds it
with Verilator (cached by content hash).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from l1flow.errors import BadInputError
from l1flow.firmware.fixed import FixedType
from l1flow.firmware.vectors import Port
from l1flow.hardware.base import HardwareSource
from l1flow.hardware.verilator import build_verilated_harness, run_simulator
from l1flow.templates import template_path

TEMPLATE = template_path("verilator_hls", "harness.cpp")
CONTROL_PORTS = ("ap_clk", "ap_rst", "ap_rst_n", "ap_start", "ap_done", "ap_idle", "ap_ready", "ap_continue")
_READMEM = re.compile(r'(\$readmem[hb]\s*\(\s*")([^"]+)(")')
_MODULE = re.compile(r"\bmodule\s+(\w+)\s*(?:#\s*\((?:[^()]|\([^()]*\))*\)\s*)?\(", re.DOTALL)
_DECL = re.compile(
    r"\b(input|output|inout)\b\s*(?:wire|reg|logic)?\s*(?:signed\s*)?(\[\s*[^\]]+\])?\s*"
    r"((?:\w+\s*,\s*)*\w+)\s*(?=[;,)])"
)


class HLSVerilogError(BadInputError):
    """The HLS Verilog folder does not fit the firmware ports or the ap_ctrl_hs protocol."""


@dataclass(frozen=True)
class VerilogPort:
    name: str
    direction: str
    width: int


@dataclass(frozen=True)
class WordBits:
    """Firmware word ``word`` (index in the flattened event row) at ``offset`` of a Verilog port."""

    word: int
    offset: int
    width: int
    signed: bool


@dataclass(frozen=True)
class PortBinding:
    """One Verilog data port, the valid strobe that goes with it, and the words it carries."""

    port: VerilogPort
    valid: str | None
    words: tuple[WordBits, ...]


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.DOTALL)
    return re.sub(r"//[^\n]*", "", text)


def _modules(text: str) -> dict[str, str]:
    """Module name -> module text (header to endmodule) of comment-free Verilog."""
    modules: dict[str, str] = {}
    for match in _MODULE.finditer(text):
        end = text.find("endmodule", match.end())
        modules[match.group(1)] = text[match.start() : end if end >= 0 else len(text)]
    return modules


def _width(range_text: str | None, where: str) -> int:
    if not range_text:
        return 1
    m = re.fullmatch(r"\[\s*(\d+)\s*:\s*(\d+)\s*\]", range_text.strip())
    if m is None:
        raise HLSVerilogError(f"{where}: port range {range_text} is not numeric; expected HLS output like [31:0]")
    return abs(int(m.group(1)) - int(m.group(2))) + 1


def read_top_ports(module_text: str, where: str) -> dict[str, VerilogPort]:
    """Ports of one module, ANSI or non-ANSI declarations, in declaration order."""
    ports: dict[str, VerilogPort] = {}
    for m in _DECL.finditer(module_text):
        width = _width(m.group(2), where)
        for name in re.split(r"\s*,\s*", m.group(3).strip()):
            if name in ("wire", "reg", "logic", "signed"):
                continue
            ports.setdefault(name, VerilogPort(name, m.group(1), width))
    return ports


# `<module> [#(...)] <instance> (` : the identifier that opens an instantiation.
_INSTANCE = re.compile(r"(?<![\w.$`])(\w+)\s+(?:#\s*\((?:[^()]|\([^()]*\))*\)\s*)?\w+\s*\(")


def find_top(modules: dict[str, str]) -> str:
    """The one module that no other module instantiates.

    One regex pass per module collects the identifiers that open an
    instantiation, so 100 files take well under a second (a search per
    pair of modules took 30-100 s on 77 Vitis files).
    """
    used: set[str] = set()
    for name, text in modules.items():
        body = text[text.find("(") :]  # skip `module <name>` itself
        used.update(m.group(1) for m in _INSTANCE.finditer(body) if m.group(1) != name)
    tops = sorted(set(modules) - used)
    if len(tops) != 1:
        raise HLSVerilogError(
            f"cannot tell the top module: candidates {tops or sorted(modules)}; pass --top <name> "
            "(hls4ml's project name, e.g. 'myproject')"
        )
    return tops[0]


def _candidates(base: str, index: int | None) -> list[str]:
    if index is None:
        return [base, f"{base}_V"]
    return [f"{base}_{index}", f"{base}_{index}_V", f"{base}_V_{index}"]


def bind_ports(ports: dict[str, VerilogPort], firmware: list[Port], direction: str, where: str) -> list[PortBinding]:
    """Map every word of the firmware ports onto the Verilog ports of ``direction``.

    A firmware port is either one packed Verilog port (``name`` / ``name_V``,
    width = elements x word width, element 0 in the low bits) or one Verilog
    port per element (``name_<i>`` / ``name_<i>_V``).
    """
    bindings: list[PortBinding] = []
    first_word = 0
    for fw in firmware:
        t = FixedType.parse(fw.type)
        found: list[PortBinding] = []
        packed = next((ports[n] for n in _candidates(fw.name, None) if n in ports), None)
        if packed is not None and packed.direction == direction:
            expected = fw.size * t.width
            if packed.width != expected:
                raise HLSVerilogError(
                    f"{where}: port {packed.name} has {packed.width} bits, but firmware port {fw.name} "
                    f"needs {fw.size} x {t.width} = {expected} ({fw.type})"
                )
            words = tuple(WordBits(first_word + i, i * t.width, t.width, t.signed) for i in range(fw.size))
            found.append(PortBinding(packed, _valid(ports, packed.name), words))
        else:
            for i in range(fw.size):
                element = next((ports[n] for n in _candidates(fw.name, i) if n in ports), None)
                if element is None or element.direction != direction:
                    data = sorted(n for n, p in ports.items() if p.direction == direction and n not in CONTROL_PORTS)
                    raise HLSVerilogError(
                        f"{where}: no {direction} port for word {i} of firmware port {fw.name} "
                        f"(looked for {_candidates(fw.name, None) + _candidates(fw.name, i)}); "
                        f"the top module's {direction} data ports are {data}. Name the firmware ports "
                        "as hls4ml does (input_1, layer7_out, ...)."
                    )
                if element.width != t.width:
                    raise HLSVerilogError(
                        f"{where}: port {element.name} has {element.width} bits, firmware type {fw.type} has {t.width}"
                    )
                word = WordBits(first_word + i, 0, t.width, t.signed)
                found.append(PortBinding(element, _valid(ports, element.name), (word,)))
            extra = [n for n in _candidates(fw.name, fw.size) if n in ports and ports[n].direction == direction]
            if extra:
                raise HLSVerilogError(
                    f"{where}: the top module has port {extra[0]}, element {fw.size} of {fw.name}, but the "
                    f"firmware port declares {fw.size} elements ({fw.type}{list(fw.shape)})"
                )
        bindings.extend(found)
        first_word += fw.size
    return bindings


def _valid(ports: dict[str, VerilogPort], name: str) -> str | None:
    vld = f"{name}_ap_vld"
    return vld if vld in ports else None


def _check_protocol(ports: dict[str, VerilogPort], where: str) -> None:
    missing = [p for p in ("ap_clk", "ap_start", "ap_ready", "ap_done") if p not in ports]
    if missing:
        raise HLSVerilogError(
            f"{where}: the top module lacks {missing}; expected the ap_ctrl_hs block protocol of an "
            "hls4ml io_parallel project"
        )
    memory = sorted(n for n in ports if n.endswith(("_address0", "_ce0", "_q0")))
    if memory:
        raise HLSVerilogError(
            f"{where}: ports {memory[:4]} are an ap_memory interface; only io_parallel designs with "
            "reshaped/partitioned arrays (ap_vld or wire ports) are supported"
        )
    if "ap_rst" not in ports and "ap_rst_n" not in ports:
        raise HLSVerilogError(f"{where}: the top module has neither ap_rst nor ap_rst_n")


def harness_ports(
    ports: dict[str, VerilogPort], inputs: list[PortBinding], outputs: list[PortBinding], n_in: int, n_out: int,
    max_stall_cycles: int,
) -> str:
    """The generated part of the harness: how to drive and read this top module's ports."""
    lines = [
        "// generated by l1flow.hardware.hls_verilog from the top module's port list",
        "#pragma once",
        f"#define N_IN {n_in}",
        f"#define N_OUT {n_out}",
        f"#define N_OUT_PORTS {len(outputs)}",
        "#define RESET_CYCLES 4",
        f"#define MAX_STALL_CYCLES {max_stall_cycles}",
        "",
        "namespace {",
        "",
        "void set_reset(Vtop *dut, bool on) {",
        "    dut->ap_rst = on ? 1 : 0;" if "ap_rst" in ports else "    dut->ap_rst_n = on ? 0 : 1;",
        "}",
        "",
        "void set_continue(Vtop *dut) {",
        "    dut->ap_continue = 1;" if "ap_continue" in ports else "    (void)dut;",
        "}",
        "",
        "void set_input_valid(Vtop *dut, int level) {",
    ]
    valids = [b.valid for b in inputs if b.valid]
    lines += [f"    dut->{v} = level;" for v in valids] or ["    (void)dut; (void)level;"]
    lines += ["}", "", "void drive_inputs(Vtop *dut, const int64_t *w) {"]
    for b in inputs:
        chunks = (b.port.width + 31) // 32
        lines.append(f"    {{ uint32_t c[{chunks} + word_stream::kPadChunks] = {{0}};")
        for w in b.words:
            lines.append(f"      put_bits(c, {w.offset}, {w.width}, w[{w.word}]);")
        lines.append(f"      load_bus(dut->{b.port.name}, c); }}")
    lines += [
        "}",
        "",
        "bool capture_outputs(Vtop *dut, int64_t *out, std::size_t *captured, std::size_t events) {",
        "    bool any = false;",
    ]
    for n, b in enumerate(outputs):
        strobe = b.valid or "ap_done"
        chunks = (b.port.width + 31) // 32
        lines.append(f"    if (dut->{strobe} && captured[{n}] < events) {{")
        lines.append(f"        uint32_t c[{chunks} + word_stream::kPadChunks] = {{0}};")
        lines.append(f"        store_bus(dut->{b.port.name}, c);")
        for w in b.words:
            lines.append(
                f"        out[captured[{n}] * N_OUT + {w.word}] = get_bits(c, {w.offset}, {w.width}, {str(w.signed).lower()});"
            )
        lines.append(f"        ++captured[{n}];")
        lines.append("        any = true;")
        lines.append("    }")
    lines += ["    return any;", "}", "", "}  // namespace", ""]
    return "\n".join(lines)


class HLSVerilogSource(HardwareSource):
    """Vitis/Vivado HLS Verilog of an io_parallel design, simulated with Verilator."""

    source = "verilator-hls"

    def __init__(
        self,
        verilog_dir: Path,
        inputs: list[Port],
        outputs: list[Port],
        project_dir: Path,
        top: str | None = None,
        cache_dir: Path | None = None,
        threads: int | None = None,
        max_stall_cycles: int = 100_000,
    ) -> None:
        super().__init__(project_dir)
        self.verilog_dir = Path(verilog_dir)
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.top = top
        self.cache_dir = cache_dir
        self.threads = threads
        self.max_stall_cycles = max_stall_cycles
        self._executable: Path | None = None
        self._verilog: dict[str, str] = {}
        self._data: dict[str, bytes] = {}
        self._header = ""

    @property
    def verilog_sources(self) -> dict[str, str]:
        """The Verilog as it will be built (ROM paths localised); filled by write()."""
        return dict(self._verilog)

    @property
    def rom_files(self) -> list[str]:
        """Names of the ROM images the design reads; filled by write()."""
        return sorted(self._data)

    @property
    def n_inputs(self) -> int:
        return sum(p.size for p in self.inputs)

    @property
    def n_outputs(self) -> int:
        return sum(p.size for p in self.outputs)

    def write(self) -> None:
        """Read the Verilog folder, bind the ports, localise ROM paths, write the harness header."""
        folder = self.verilog_dir
        files = sorted(folder.glob("*.v"))
        if not files:
            raise HLSVerilogError(
                f"{folder}: no *.v files; bring back <prj>/solution1/syn/verilog (or impl/verilog) from the synthesis machine"
            )
        modules: dict[str, str] = {}
        texts: dict[str, str] = {}
        for path in files:
            text = path.read_text(errors="replace")
            texts[path.name] = text
            for name, body in _modules(_strip_comments(text)).items():
                modules[name] = body
        top = self.top or find_top(modules)
        if top not in modules:
            raise HLSVerilogError(f"{folder}: no module named {top!r} (modules: {sorted(modules)[:10]})")
        where = f"{folder}/{top}"
        ports = read_top_ports(modules[top], where)
        _check_protocol(ports, where)
        in_bind = bind_ports(ports, self.inputs, "input", where)
        out_bind = bind_ports(ports, self.outputs, "output", where)
        self._data = {}
        self._verilog = {}
        for name, text in texts.items():
            self._verilog[name] = _READMEM.sub(functools.partial(self._localise_rom, folder=folder, verilog_name=name), text)
        self._header = harness_ports(ports, in_bind, out_bind, self.n_inputs, self.n_outputs, self.max_stall_cycles)
        self.top = top
        self.project_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.project_dir / ".harness_ports.h.tmp"
        tmp.write_text(self._header)
        tmp.replace(self.project_dir / "harness_ports.h")

    def _localise_rom(self, match: re.Match[str], folder: Path, verilog_name: str) -> str:
        # The synthesis machine's path means nothing here: find the file by name in the folder.
        base = Path(match.group(2).replace("\\", "/")).name
        local = folder / base
        if not local.exists():
            raise HLSVerilogError(
                f"{folder / verilog_name}: ROM file {match.group(2)!r} is not in {folder}; copy the whole "
                "verilog folder, *.dat files included"
            )
        self._data[base] = local.read_bytes()
        return f"{match.group(1)}{base}{match.group(3)}"

    def compile(self) -> None:
        if not self._verilog:
            self.write()
        assert self.top is not None
        self._executable = build_verilated_harness(
            self._verilog,
            self.top,
            TEMPLATE,
            {"harness_ports.h": self._header},
            data_files=self._data,
            cache_dir=self.cache_dir,
            what=f"{self.top} from {self.verilog_dir}",
        )

    def run(self, input_words: np.ndarray) -> np.ndarray:
        words = np.asarray(input_words, dtype=np.int64)
        if words.ndim != 2 or words.shape[1] != self.n_inputs:
            raise ValueError(f"input words have shape {words.shape}; the ports need (events, {self.n_inputs})")
        if self._executable is None:
            self.compile()
        assert self._executable is not None
        return run_simulator(self._executable, words, self.n_outputs, self.threads).output_words
