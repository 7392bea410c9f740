"""Reading a pipeline run folder's summary.json: one reader for every consumer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from l1flow.errors import BadInputError

SUMMARY_FILE = "summary.json"


class SummaryError(BadInputError):
    """A run folder's summary.json is missing or malformed."""


def read_summary(path: Path | str) -> dict[str, Any]:
    """The summary of a run folder (or of a summary.json file given directly)."""
    path = Path(path)
    file = path if path.suffix == ".json" else path / SUMMARY_FILE
    try:
        summary = json.loads(file.read_text())
    except FileNotFoundError as error:
        raise SummaryError(f"{file} does not exist; pass the folder of one pipeline run") from error
    except OSError as error:
        raise SummaryError(f"cannot read {file}: {error.strerror}") from error
    except json.JSONDecodeError as error:
        raise SummaryError(f"{file} is not valid JSON (line {error.lineno}): {error.msg}") from error
    if not isinstance(summary, dict):
        raise SummaryError(f"{file} must hold a JSON object, not {type(summary).__name__}")
    return summary
