"""Payloads for Prefect artifacts: plain data the flows hand to Prefect.

The library never imports Prefect; a flow does, e.g.::

    payload = report_artifacts(run_dir, report_path, previous, criteria)
    create_markdown_artifact(payload.markdown, key=payload.key, description=...)
    create_table_artifact(payload.table, key=payload.key + "-table")
    create_link_artifact(payload.link, link_text=payload.link_text, key=payload.key + "-link")
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from l1flow.records import Baseline
from l1flow.registry.criteria import AcceptanceCriteria
from l1flow.report.content import NOT_MEASURED, RunReport, fmt, read_run_report

_KEY_CHARACTERS = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True)
class ReportArtifacts:
    """Markdown summary, one table row per (model, signal), and a link to the HTML report."""

    key: str
    markdown: str
    table: list[dict[str, Any]]
    link: str
    link_text: str


def artifact_key(config_name: str) -> str:
    """A Prefect artifact key (lowercase letters, digits, dashes) per pipeline config."""
    slug = _KEY_CHARACTERS.sub("-", config_name.lower()).strip("-")
    return f"l1flow-report-{slug or 'run'}"


def _cell(value: Any) -> str:
    return fmt(value).replace("|", "\\|")


def _markdown(report: RunReport, link: str, file_name: str) -> str:
    lines = [
        f"# l1flow run `{report.run_id}` ({report.config_name})",
        "",
        f"**Conditions:** tag `{report.conditions_tag}`, {report.iov}; trigger: {report.trigger_reason}",
        f"**Compared with:** {report.previous_label or 'no previous production version'}",
        "",
        "| model | kind | bit-exact gate | acceptance | LUT | latency (ns) |",
        "|---|---|---|---|---|---|",
    ]
    for m in report.models:
        budgets = {b.quantity: b for b in m.budget_rows}
        acceptance = "no criteria" if m.verdict is None else ("passed" if m.verdict.passed else "**failed**")
        gate = m.gate_verdict if m.gate_verdict != "failed" else "**failed**"
        lines.append(
            f"| {m.name} | {m.kind} | {gate} | {acceptance} | {_cell(budgets['LUT'].value)} "
            f"| {_cell(budgets['latency (ns)'].value)} |"
        )
    for m in report.models:
        if m.verdict is not None and not m.verdict.passed:
            lines += ["", f"**{m.name} not accepted:** {m.verdict.reason()}"]
    lines += ["", f"Full report: [{file_name}]({link})"]
    return "\n".join(lines) + "\n"


def _rows(report: RunReport) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for m in report.models:
        budgets = {b.quantity: b.value for b in m.budget_rows}
        mismatched_events = sum(g.mismatched_events for g in m.gate_rows) if m.gate_rows else None
        mismatched_words = sum(g.mismatched_words for g in m.gate_rows) if m.gate_rows else None
        common = {
            "model": m.name,
            "kind": m.kind,
            "gate": m.gate_verdict,
            "mismatched_events": mismatched_events,
            "mismatched_words": mismatched_words,
            "accepted": None if m.verdict is None else m.verdict.passed,
            "LUT": budgets.get("LUT"),
            "latency_ns": budgets.get("latency (ns)"),
        }
        for s in m.signals or []:
            rows.append({**common, "signal": s.signal, "auc": s.auc, "efficiency_at_rate": s.efficiency,
                         "efficiency_previous": s.efficiency_previous})
        if not m.signals:
            rows.append({**common, "signal": NOT_MEASURED, "auc": None, "efficiency_at_rate": None,
                         "efficiency_previous": None})
    return rows


def report_artifacts(
    run_dir: Path,
    report_path: Path,
    previous_production: Baseline | None = None,
    criteria: AcceptanceCriteria | None = None,
) -> ReportArtifacts:
    """The markdown, table and link a flow publishes for one run's report."""
    report = read_run_report(Path(run_dir), previous_production, criteria, images=False)
    link = Path(report_path).resolve().as_uri()
    return ReportArtifacts(
        key=artifact_key(report.config_name),
        markdown=_markdown(report, link, Path(report_path).name),
        table=_rows(report),
        link=link,
        link_text=f"l1flow report {report.run_id}",
    )
