"""Run reports: one self-contained HTML page per pipeline run, and Prefect artifact payloads.

The report draws its charts with matplotlib (a second or more to import), so
its names are loaded on first use: `l1flow` commands that never render a
report, and a config error, stay fast.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "ReportArtifacts": "artifacts", "report_artifacts": "artifacts",
    "ReportError": "content", "RunReport": "content", "read_run_report": "content",
    "render_report": "html",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"l1flow.report.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'l1flow.report' has no attribute {name!r}")
