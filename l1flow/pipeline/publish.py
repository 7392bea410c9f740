"""The end of a run: physics metrics, the summary, the registry, the report."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml

from l1flow.config import PipelineConfig
from l1flow.fileio import write_json_atomic
from l1flow.pipeline.data_steps import Dataset
from l1flow.pipeline.workspace import Workspace
from l1flow.registry.store import ModelRegistry, RegisteredVersion
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
    for name, block in ((production or {}).get("models") or {}).items():
        run_id = block.get("run_id")
        relative = (block.get("artifacts") or {}).get("model")
        folder = workspace.runs / str(run_id) / str(relative) if run_id and relative else None
        if folder is not None and folder.exists():
            found[name] = folder
        else:
            log.warning(
                "production version %s of %s: its trained model is not in %s; "
                "no warm start or side-by-side comparison for it",
                block.get("version"), name, workspace.runs,
            )
    return found


def physics(
    config: PipelineConfig,
    model: TrainedModel,
    dataset: Dataset,
    run_dir: Path,
    previous: TrainedModel | None,
) -> dict[str, Any]:
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
    return {
        "metrics": metrics,
        "previous_production": previous_metrics,
        "comparison": compare_with_previous(metrics, previous_metrics),
        "plots": {key: str(Path(path).relative_to(run_dir)) for key, path in files.items()},
    }


def save_model(model: TrainedModel, run_dir: Path) -> str:
    """Copy the trained model into the run folder; return its relative path."""
    relative = Path("models") / model.name
    model.save(run_dir / relative)
    return str(relative)


def save_config(config: PipelineConfig, run_dir: Path) -> None:
    """The resolved configuration (overrides applied), so the run can be rebuilt and compared."""
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))


def write_summary(run_dir: Path, summary: dict[str, Any]) -> Path:
    path = run_dir / "summary.json"
    write_json_atomic(path, summary)
    return path


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
