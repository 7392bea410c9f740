"""``l1flow gate EXPECTED RESULT``: the bit-exact gate on two test-vector folders.

Exit status 0 only if the result matches the emulation bit for bit, 1 on any
mismatch, 2 if a folder is not a valid vector set.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _cmd_gate(args: argparse.Namespace) -> int:
    from l1flow.verify.gate import compare_folders

    report = compare_folders(args.expected, args.result, max_examples=args.examples)
    if args.markdown is not None:
        args.markdown.write_text(report.to_markdown())
    if args.json:
        print(json.dumps(report.to_dict(), sort_keys=True))
    else:
        print(report.to_markdown() if args.verbose else report.summary_line())
    return 0 if report.passed else 1


def add_commands(subparsers: Any) -> None:
    """Add ``gate``."""
    gate = subparsers.add_parser(
        "gate", help="bit-exact gate: compare a hardware result folder with the emulation's vector folder"
    )
    gate.add_argument("expected", type=Path, help="emulation vector folder (the stimulus set)")
    gate.add_argument("result", type=Path, help="hardware result folder answering it")
    gate.add_argument("--examples", type=int, default=10, help="how many mismatching events to list")
    gate.add_argument("--markdown", type=Path, default=None, help="also write the readable report here")
    gate.add_argument("--json", action="store_true", help="print the full report as one JSON line")
    gate.add_argument("--verbose", action="store_true", help="print the readable table, not one line")
    gate.set_defaults(func=_cmd_gate)
