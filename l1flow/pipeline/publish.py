"""The end of a run: physics metrics, the summary, the registry, the report."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from l1flow import records
from l1flow.backends import FirmwareBuild, FirmwarePrecision
from l1flow.config import PipelineConfig
from l1flow.pipeline.data_steps import ConditionsSnapshot, Dataset
from l1flow.pipeline.firmware_steps import (
    EmulationResult,
    synthesis_records,
)
from l1flow.pipeline.workspace import RunFolder, Workspace
from l1flow.records import (
    Conditions,
    DatasetRecord,
    GateEntry,
    Metrics,
    ModelRecord,
    Physics,
    Precision,
    RegistryEntry,
    RunSummary,
    parse,
)
from l1flow.registry.store import ModelRegistry, RegisteredVersion
from l1flow.synthesis.reports import SynthesisReport
from l1flow.toolchain import tool_versions
from l1flow.training import plots
from l1flow.training.metrics import compare_with_previous, trigger_metrics
from l1flow.training.model import TrainedModel

log = logging.getLogger("l1flow")


def open_registry(config: PipelineConfig, workspace: Workspace) -> ModelRegistry:
    return ModelRegistry(workspace.root, tracking_uri=config.registry.tracking_uri)


def production_models(registry: ModelRegistry, workspace: Workspace, names: list[str]) -> dict[str, Path]:
    """Folders of the trained models now in production (for warm starts and comparisons).

    A production version points at the run that produced it; its trained
    model is in that run's folder in this workspace.
    """
    found: dict[str, Path] = {}
    production = registry.production_summary(names)
    for name, block in ({} if production is None else production.models).items():
        run_id = block.record.run_id
        relative = block.record.artifacts.get("model")
        folder = workspace.runs / run_id / relative if run_id and relative else None
        if folder is not None and folder.exists():
            found[name] = folder
        else:
            log.warning(
                "production version %s of %s: its trained model is not in %s; "
                "no warm start or side-by-side comparison for it",
                block.version, name, workspace.runs,
            )
    return found


def physics(
    config: PipelineConfig,
    model: TrainedModel,
    dataset: Dataset,
    run_dir: Path,
    previous: TrainedModel | None,
) -> Physics:
    """AUC and efficiency at the working point on the test sample, next to production's; plots."""
    trigger = config.trigger
    test = dataset.test
    scores = model.score(test)
    metrics = trigger_metrics(
        scores, test, working_point_khz=trigger.working_point_khz, crossing_rate_mhz=trigger.crossing_rate_mhz
    )
    previous_metrics = None
    previous_scores = None
    if previous is not None:
        previous_scores = previous.score(test)
        previous_metrics = trigger_metrics(
            previous_scores, test,
            working_point_khz=trigger.working_point_khz, crossing_rate_mhz=trigger.crossing_rate_mhz,
        )
    plot_dir = run_dir / "plots"
    files = plots.model_plots(
        model.name, scores, test, plot_dir,
        history=model.history,
        previous_scores=previous_scores,
        crossing_rate_mhz=trigger.crossing_rate_mhz,
        working_point_khz=trigger.working_point_khz,
    )
    return Physics(
        metrics=parse(Metrics, metrics, f"{model.name} metrics"),
        previous_production=None if previous_metrics is None else parse(
            Metrics, previous_metrics, f"{model.name} production metrics"
        ),
        comparison=compare_with_previous(metrics, previous_metrics),
        plots={key: str(Path(path).relative_to(run_dir)) for key, path in files.items()},
    )


def save_model(model: TrainedModel, run_dir: Path) -> str:
    """Copy the trained model into the run folder; return its relative path."""
    relative = Path("models") / model.name
    model.save(run_dir / relative)
    return str(relative)


def save_config(config: PipelineConfig, run_dir: Path) -> None:
    """The resolved configuration (overrides applied), so the run can be rebuilt and compared."""
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))


def model_record(
    model: TrainedModel,
    firmware: FirmwareBuild,
    precision: FirmwarePrecision,
    emulation: EmulationResult,
    gates: list[GateEntry],
    physics_result: Physics,
    run_dir: Path,
    run_id: str,
) -> ModelRecord:
    """One model's block of the summary; saves the trained model into the run folder.

    Resources and latency are added by :func:`with_synthesis` when synthesis ends.
    """
    return ModelRecord(
        kind=model.kind,
        run_id=run_id,
        weights_hash=model.weights_hash(),
        firmware_hash=firmware.firmware_hash,
        train_seconds=model.train_seconds,
        precision=Precision(settings=precision.settings, report=precision.report),
        software_vs_emulation=emulation.software_vs_emulation,
        decision_agreement=emulation.decision_agreement,
        decision_threshold=emulation.decision_threshold,
        emulation=emulation.emulation,
        emulation_vs_csim=emulation.emulation_vs_csim,
        outside_layout=emulation.outside_layout,
        emulation_vs_hardware=gates,
        metrics=physics_result.metrics,
        previous_production=physics_result.previous_production,
        comparison=physics_result.comparison,
        plots={**physics_result.plots, **emulation.plots},
        artifacts={
            "model": save_model(model, run_dir),
            "firmware": str(firmware.project_dir.parent.relative_to(run_dir)),
            "vectors": f"vectors/{model.name}",
        },
    )


def with_synthesis(record: ModelRecord, report: SynthesisReport | None) -> ModelRecord:
    """The model's block with the synthesis results (null when synthesis did not run)."""
    resources, latency = synthesis_records(report)
    return replace(record, resources=resources, latency=latency)


def run_summary(
    run: RunFolder,
    config: PipelineConfig,
    started: str,
    conditions: ConditionsSnapshot,
    trigger: dict[str, Any] | None,
    dataset: Dataset,
    trained: dict[str, TrainedModel],
    models: dict[str, ModelRecord],
    wall_seconds: float,
) -> RunSummary:
    """The run's summary before registration (``registry`` null)."""
    snapshot = conditions.to_dict()
    described = dataset.describe()
    return RunSummary(
        run_id=run.run_id,
        config_name=config.name,
        config_hash=config.content_hash(),
        started=started,
        conditions=parse(Conditions, {**snapshot, "trigger": trigger or {"reason": "run by hand"}}, "conditions"),
        dataset=parse(DatasetRecord, described, "dataset"),
        tool_versions=tool_versions(),
        train_seconds=sum(m.train_seconds for m in trained.values()),
        wall_seconds=wall_seconds,
        models=models,
        registry=None,
    )


def registered(summary: RunSummary, versions: list[RegistryEntry], wall_seconds: float) -> RunSummary:
    """The summary once the run's versions are registered."""
    return replace(summary, registry=versions, wall_seconds=wall_seconds)


def write_summary(run_dir: Path, summary: RunSummary) -> Path:
    """``run_dir/summary.json``, checked before it is written (l1flow.records)."""
    return records.write_summary(run_dir, summary)


def register(
    config: PipelineConfig, registry: ModelRegistry, run_dir: Path
) -> list[RegisteredVersion]:
    """Register one version per model; `production` moves only through the acceptance criteria."""
    versions = registry.record_run(run_dir, config.acceptance, promote=config.registry.auto_promote)
    for version in versions:
        log.info("%s", registration_line(version.name, version.version, version.matched, version.promoted,
                                         version.verdict.reason()))
    return versions


def registration_line(name: str, version: int, matched: bool, promoted: bool, verdict: str) -> str:
    """What registration did for one model, in one line (logged by the flow, printed by `l1flow run`)."""
    if matched:
        return (f"{name}: matched version {version} (identical weights and firmware under the same conditions); "
                "no new version registered")
    outcome = "promoted to production" if promoted else f"stays candidate ({verdict})"
    return f"{name}: registered version {version}, {outcome}"


def registry_entries(versions: list[RegisteredVersion]) -> list[RegistryEntry]:
    """The summary's view of the registered versions."""
    return [
        RegistryEntry(name=v.name, version=v.version, promoted=v.promoted, verdict=v.verdict.reason(),
                      matched_existing=v.matched)
        for v in versions
    ]
