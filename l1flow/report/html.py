"""One self-contained HTML page per pipeline run.

Images are embedded as data URIs, the CSS is inline, there is no JavaScript
and a Content-Security-Policy forbids loading anything else, so the file can be
mailed, attached to an MLflow run or opened offline and look the same.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from l1flow.fileio import write_text_atomic
from l1flow.records import Baseline
from l1flow.registry.criteria import AcceptanceCriteria
from l1flow.report.content import NOT_MEASURED, RunReport, fmt, read_run_report

REPORT_FILE = "report.html"


def _seconds(value: float | None) -> str:
    if value is None:
        return NOT_MEASURED
    minutes, seconds = divmod(float(value), 60)
    return f"{int(minutes)} min {seconds:.0f} s" if minutes else f"{seconds:.1f} s"


def _signed(value: float | None) -> str:
    return "—" if value is None else f"{value:+.4f}"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


def _verdict_class(verdict: str) -> str:
    return {"passed": "pass", "failed": "fail"}.get(verdict, "none")


def _budget_class(status: str) -> str:
    return {"within budget": "pass", "over budget": "fail", NOT_MEASURED: "none"}.get(status, "")


def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("l1flow.report", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.globals.update(
        fmt=fmt,
        seconds=_seconds,
        signed=_signed,
        percent=_percent,
        verdict_class=_verdict_class,
        budget_class=_budget_class,
    )
    return environment


def render_html(report: RunReport) -> str:
    """The page for a report read by :func:`read_run_report`."""
    return _environment().get_template("report.html").render(r=report)


def render_report(
    run_dir: Path,
    previous_production: Baseline | None = None,
    criteria: AcceptanceCriteria | None = None,
    output: Path | None = None,
) -> Path:
    """Write the run's report (default ``<run_dir>/report.html``) and return its path.

    `previous_production` is the baseline (the versions now in production, or
    a previous run) for the comparison; `criteria` adds budgets and the
    acceptance verdict. The file is written under a temporary name and renamed,
    so a failure never leaves half a report.
    """
    run_dir = Path(run_dir)
    page = render_html(read_run_report(run_dir, previous_production, criteria))
    target = Path(output) if output is not None else run_dir / REPORT_FILE
    return write_text_atomic(target, page)
