"""The FPGA parts l1flow knows: Xilinx/AMD devices used by hls4ml, conifer and L1 trigger boards.

A typo in ``firmware.part`` would otherwise pass through hls4ml and conifer
unnoticed (they write whatever string they get into the project) and only
fail hours later on a synthesis machine. The table holds full part names
(device, package, speed grade, temperature); a part missing from it can be
used with ``firmware.part_unlisted: true``.
"""

from __future__ import annotations

import difflib

#: part -> where it is used (board or project), shown by ``l1flow parts``
KNOWN_PARTS: dict[str, str] = {
    # Virtex UltraScale+: Phase-2 trigger boards (APx, Serenity), VCU118, hls4ml defaults
    "xcvu9p-flgb2104-2L-e": "Virtex UltraScale+ VU9P (AXOL1TL / hls4ml papers, Serenity)",
    "xcvu9p-flga2104-2L-e": "Virtex UltraScale+ VU9P (VCU118 board)",
    "xcvu9p-flga2577-2-e": "Virtex UltraScale+ VU9P (APx, AWS F1)",
    "xcvu13p-flga2577-2-e": "Virtex UltraScale+ VU13P (hls4ml Vivado/Vitis default)",
    "xcvu13p-flga2577-1-e": "Virtex UltraScale+ VU13P, speed grade 1",
    "xcvu13p-fhga2104-2L-e": "Virtex UltraScale+ VU13P (Serenity)",
    "xcvu7p-flvb2104-1-e": "Virtex UltraScale+ VU7P",
    "xcvu11p-flga2577-1-e": "Virtex UltraScale+ VU11P",
    # Virtex-7 / UltraScale: Run-2/3 CMS and ATLAS trigger boards
    "xc7vx690tffg1927-2": "Virtex-7 VX690T (CMS Stage-2 MP7, AXOL1TL / CICADA in Run 3)",
    "xc7vx485tffg1761-2": "Virtex-7 VX485T (VC707 board)",
    "xcvu440-flga2892-2-e": "Virtex UltraScale VU440",
    "xcku115-flvb2104-2-i": "Kintex UltraScale KU115 (hls4ml jet-tagging paper)",
    "xcku040-ffva1156-2-e": "Kintex UltraScale KU040 (KCU105 board)",
    "xcku15p-ffva1760-2-e": "Kintex UltraScale+ KU15P",
    # Alveo accelerator cards
    "xcu200-fsgd2104-2-e": "Alveo U200",
    "xcu250-figd2104-2L-e": "Alveo U250 (hls4ml VivadoAccelerator / Vitis accelerator)",
    "xcu280-fsvh2892-2L-e": "Alveo U280",
    "xcu50-fsvh2104-2-e": "Alveo U50",
    "xcu55c-fsvh2892-2L-e": "Alveo U55C",
    # Zynq-7000 / Zynq UltraScale+ (hls4ml VivadoAccelerator boards)
    "xc7z020clg400-1": "Zynq-7020 (PYNQ-Z2)",
    "xc7z007sclg400-1": "Zynq-7007S",
    "xczu3eg-sbva484-1-e": "Zynq UltraScale+ ZU3EG (Ultra96)",
    "xczu9eg-ffvb1156-2-e": "Zynq UltraScale+ ZU9EG (ZCU102)",
    "xczu7ev-ffvc1156-2-e": "Zynq UltraScale+ ZU7EV (ZCU106)",
    "xczu28dr-ffvg1517-2-e": "Zynq UltraScale+ RFSoC ZU28DR (ZCU111)",
    # Versal (the Phase-2 and accelerator path)
    "xcvc1902-vsva2197-2MP-e-S": "Versal AI Core VC1902 (VCK190)",
    "xcvp1802-lsvc4072-2MP-e-S": "Versal Premium VP1802 (VPK180)",
    "xcve2802-vsvh1760-2MP-e-S": "Versal AI Edge VE2802 (VEK280)",
    "xcvm1802-vsva2197-2MP-e-S": "Versal Prime VM1802 (VMK180)",
    # Artix-7 (small test boards)
    "xc7a35ticsg324-1L": "Artix-7 35T (Arty A7)",
    "xc7a100tcsg324-1": "Artix-7 100T (Nexys A7)",
}


def close_parts(part: str, count: int = 3) -> list[str]:
    """Known parts whose names look like ``part`` (for 'did you mean')."""
    return difflib.get_close_matches(part, list(KNOWN_PARTS), n=count, cutoff=0.6)


def format_parts() -> str:
    """The table, one part a line, for ``l1flow parts``."""
    width = max(len(p) for p in KNOWN_PARTS)
    return "\n".join(f"{part:<{width}}  {use}" for part, use in KNOWN_PARTS.items())
