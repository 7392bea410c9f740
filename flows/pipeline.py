"""The l1flow pipeline as a Prefect flow: the diagram of README.md ("What one run does"), step by step.

Only orchestration lives here; every step is a plain function of
:mod:`l1flow.pipeline`. Steps whose inputs did not change are reused from the
workspace's content-addressed cache (datasets, trained models, RTL builds),
which is also how a crashed run resumes: run it again.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture

from l1flow.backends import FirmwareBuild, FirmwarePrecision
from l1flow.config import PipelineConfig, check_runnable, load_config
from l1flow.pipeline import data_steps, firmware_steps, publish
from l1flow.pipeline.workspace import Workspace
from l1flow.records import Baseline, GateEntry, ModelRecord, Physics, RegistryEntry
from l1flow.report import render_report, report_artifacts
from l1flow.synthesis.reports import SynthesisReport
from l1flow.training.model import TrainedModel

# Samples and models are large in-memory objects: never hash or persist them as task results.
step = task(cache_policy=NO_CACHE, persist_result=False)


@step
def resolve_conditions(config: PipelineConfig, workspace: Workspace) -> data_steps.ConditionsSnapshot:
    return data_steps.resolve_conditions(config, workspace)


@step
def prepare_dataset(
    config: PipelineConfig, conditions: data_steps.ConditionsSnapshot, workspace: Workspace
) -> data_steps.Dataset:
    return data_steps.prepare_dataset(config, conditions, workspace)


@step
def train(config: PipelineConfig, dataset: data_steps.Dataset, workspace: Workspace,
          production: dict[str, Path]) -> dict[str, TrainedModel]:
    return data_steps.train_models(config, dataset, workspace, warm_start=production)


@step
def choose_precision(config: PipelineConfig, model: TrainedModel,
                     dataset: data_steps.Dataset) -> FirmwarePrecision:
    return firmware_steps.choose_precision(config, model, dataset)


@step
def build_firmware(config: PipelineConfig, model: TrainedModel, precision: FirmwarePrecision,
                   run_dir: Path, workspace: Workspace) -> FirmwareBuild:
    return firmware_steps.build_firmware(
        config.firmware, model, precision.settings, run_dir / "firmware" / model.name, workspace.cache / "rtl-builds"
    )


@step
def write_hardware(firmware: FirmwareBuild) -> None:
    firmware_steps.write_hardware(firmware)


@step
def emulate(config: PipelineConfig, model: TrainedModel, firmware: FirmwareBuild,
            dataset: data_steps.Dataset, run_dir: Path) -> firmware_steps.EmulationResult:
    return firmware_steps.emulate(config, model, firmware, dataset, run_dir)


@step
def verify_hardware(config: PipelineConfig, model: TrainedModel, firmware: FirmwareBuild,
                    emulation: firmware_steps.EmulationResult, run_dir: Path,
                    version: dict[str, Any]) -> list[GateEntry]:
    return firmware_steps.verify_hardware(config, model, firmware, emulation, run_dir, version)


@step
def synthesize(config: PipelineConfig, firmware: FirmwareBuild,
               workspace: Workspace) -> SynthesisReport | None:
    return firmware_steps.synthesize(config, firmware, workspace.cache / "synthesis")


@step
def physics(config: PipelineConfig, model: TrainedModel, dataset: data_steps.Dataset, run_dir: Path,
            previous: TrainedModel | None) -> Physics:
    return publish.physics(config, model, dataset, run_dir, previous)


@step
def register(config: PipelineConfig, workspace: Workspace, run_dir: Path) -> list[RegistryEntry]:
    registry = publish.open_registry(config, workspace)
    return publish.registry_entries(publish.register(config, registry, run_dir))


@step
def report(run_dir: Path, previous: Baseline | None, config: PipelineConfig) -> Path:
    """The HTML report, also published as Prefect artifacts (markdown, table, link)."""
    path = render_report(run_dir, previous_production=previous, criteria=config.acceptance)
    published = report_artifacts(run_dir, path, previous, config.acceptance)
    create_markdown_artifact(markdown=published.markdown, key=published.key, description="l1flow run report")
    create_table_artifact(table=published.table, key=f"{published.key}-signals", description="efficiency at rate")
    create_link_artifact(link=published.link, link_text=published.link_text, key=f"{published.key}-html")
    return path


# No log_prints: Prefect would replace builtins.print during the run, and numba
# (da4ml's solver) cannot compile a function that calls a replaced print.
@flow(name="l1flow-pipeline")
def l1flow_pipeline(
    config_path: str,
    overrides: list[str] | None = None,
    workspace: str | None = None,
    trigger: dict[str, Any] | None = None,
) -> str:
    """Conditions → dataset → training → firmware → emulation → hardware → gate → synthesis → registry → report.

    `trigger` carries why the run started (the conditions-change event's
    reason and IOV); returns the path of the run's summary.json.
    """
    logger = get_run_logger()
    began = time.perf_counter()
    started = datetime.now(UTC).isoformat()
    config = load_config(config_path, overrides)
    ws = Workspace(check_runnable(config, config_path, Path(workspace) if workspace else None))
    run = ws.new_run(config.name, config.content_hash())
    logger.info("run folder (until published): %s", run.path)
    try:
        publish.save_config(config, run.path)
        registry = publish.open_registry(config, ws)
        names = [m.name for m in config.models]
        production = publish.production_models(registry, ws, names)
        production_summary = registry.production_summary(names)

        firmware_steps.check_synthesis_tool(config)
        conditions = resolve_conditions(config, ws)
        dataset = prepare_dataset(config, conditions, ws)
        trained = train(config, dataset, ws, production)

        # Firmware for every model first, so synthesis (minutes for a big design)
        # runs beside all the emulation and RTL checks.
        precisions: dict[str, FirmwarePrecision] = {}
        firmwares: dict[str, FirmwareBuild] = {}
        synthesis: dict[str, PrefectFuture[SynthesisReport | None]] = {}
        for name, model in trained.items():
            precisions[name] = choose_precision(config, model, dataset)
            firmwares[name] = build_firmware(config, model, precisions[name], run.path, ws)
            write_hardware(firmwares[name])
            synthesis[name] = synthesize.submit(config, firmwares[name], ws)

        models: dict[str, ModelRecord] = {}
        for name, model in trained.items():
            previous = TrainedModel.load(production[name]) if name in production else None
            firmware = firmwares[name]
            version = {"name": name, "run_id": run.run_id, "weights_hash": model.weights_hash(),
                       "firmware_hash": firmware.firmware_hash}
            emulation = emulate(config, model, firmware, dataset, run.path)
            gates = verify_hardware(config, model, firmware, emulation, run.path, version)
            physics_result = physics(config, model, dataset, run.path, previous)
            models[name] = publish.model_record(
                model, firmware, precisions[name], emulation, gates, physics_result, run.path, run.run_id
            )
        for name, pending in synthesis.items():
            models[name] = publish.with_synthesis(models[name], pending.result())

        summary = publish.run_summary(run, config, started, conditions, trigger, dataset, trained, models,
                                      time.perf_counter() - began)
        publish.write_summary(run.path, summary)
        report(run.path, production_summary, config)
        summary = publish.registered(summary, register(config, ws, run.path), time.perf_counter() - began)
        publish.write_summary(run.path, summary)
        final = run.publish()
    except BaseException:
        failed = run.fail()
        logger.error("run failed; its partial outputs are in %s", failed)
        raise
    logger.info("run finished in %.0f s: %s", time.perf_counter() - began, final)
    return str(final / "summary.json")


def run_pipeline(config_path: Path | str, overrides: list[str] | None = None,
                 workspace: Path | str | None = None) -> Path:
    """Run the flow on Prefect's ephemeral API (no server) and return summary.json's path."""
    result = l1flow_pipeline(str(config_path), overrides or [], str(workspace) if workspace else None)
    return Path(result)

