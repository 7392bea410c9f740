"""The ``l1flow`` command: every command group, one error policy.

A command group is a module with ``add_commands(subparsers)`` that adds its
commands, each with ``set_defaults(func=...)``; adding a group is one line in
``COMMAND_GROUPS``. A command returns its exit status (0 passed, 1 a check
failed) or raises:

- an ``L1flowError`` (``l1flow.errors``): its message is printed without a
  traceback and the command exits with its ``exit_code`` (2 bad input or usage,
  1 a failed verification or a failed tool);
- anything else is a bug: Python prints the traceback.

``--debug`` or ``$L1FLOW_DEBUG`` shows the traceback of an ``L1flowError`` too.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from l1flow.cli import conditions, export, gate, models, pipeline, report, service, synth, training, verify
from l1flow.errors import L1flowError
from l1flow.settings import settings

#: one line per group; the help lists commands in this order
COMMAND_GROUPS: tuple[Callable[[Any], None], ...] = (
    pipeline.add_commands,  # run, compare
    gate.add_commands,  # gate
    conditions.add_commands,  # conditions list|show|add|diff|import|export
    models.add_commands,  # models list|show|promote|rollback|fetch
    report.add_commands,  # report
    synth.add_commands,  # synth run|report|submit|status|fetch
    service.add_commands,  # serve, worker
    training.add_commands,  # model-info, model-score
    verify.add_commands,  # verify PROJECT --against KIND:PATH
    export.add_commands,  # export emulator
)

EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="l1flow",
        description="Retrain, quantize, convert, synthesize and bit-exactly verify L1 trigger ML firmware.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors (or set L1FLOW_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_commands in COMMAND_GROUPS:
        add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("l1flow: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except L1flowError as exc:
        if args.debug or settings().debug:
            raise
        print(f"l1flow: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
