"""The exceptions every l1flow command reports to its user, and their exit codes.

One policy for the whole CLI (``l1flow.cli.main``): an ``L1flowError`` prints
its message (no traceback) and exits with its ``exit_code``; anything else is a
bug and shows its traceback.

- ``BadInputError`` (exit 2): a file, field, value or command line that l1flow
  refuses. The message names the file or field and says what to do.
- ``VerificationFailed`` (exit 1): the input was fine and the check ran, but it
  did not pass (a mismatch, a refused promotion).
- ``L1flowError`` itself (exit 1): an expected failure of a tool or a step
  (a simulator that crashed, a missing vendor tool), described for the user.
"""

from __future__ import annotations


class L1flowError(Exception):
    """An expected failure, described for the user; the CLI prints it and exits 1."""

    exit_code = 1


class BadInputError(L1flowError, ValueError):
    """Input l1flow refuses (file, field, value, usage); the CLI exits 2."""

    exit_code = 2


class VerificationFailed(L1flowError):
    """A check ran on valid input and failed (mismatch, refused promotion); exit 1."""

    exit_code = 1
