"""Run reports: one self-contained HTML page per pipeline run, and Prefect artifact payloads."""

from l1flow.report.artifacts import ReportArtifacts, report_artifacts
from l1flow.report.content import ReportError, RunReport, read_run_report
from l1flow.report.html import render_report

__all__ = ["ReportArtifacts", "ReportError", "RunReport", "read_run_report", "render_report", "report_artifacts"]
