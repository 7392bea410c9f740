"""The model lifecycle in MLflow: record a pipeline run, register versions, move aliases.

One :class:`ModelRegistry` wraps an MLflow tracking and model-registry store.
The embedded default is a SQLite database in the workspace
(``sqlite:///<workspace>/mlflow.db``) with artifacts under
``<workspace>/mlartifacts``; any MLflow tracking URI works in production.

Per pipeline run (:meth:`ModelRegistry.record_run`) one MLflow run receives the
parameters, metrics, plots, summary and report, and every model of the run
gets a new registered version carrying its lineage as tags (``l1flow.*``: IOV
and conditions tag, dataset, config, weights and firmware hashes, tool versions,
gate verdict, synthesis report) and its firmware bundle as an artifact.

Aliases only (MLflow stages are deprecated): every new version becomes
``candidate``; ``production`` moves to it only when it meets the
:class:`~l1flow.registry.criteria.AcceptanceCriteria`. The versions that were
production are kept as a stack in a registered-model tag so that
:meth:`ModelRegistry.rollback` can restore the previous one; every move,
forced or not, is appended to an audit log tag.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from l1flow.auth import registry_credential
from l1flow.errors import BadInputError, VerificationFailed
from l1flow.records import (
    Baseline,
    BaselineModel,
    Conditions,
    Iov,
    ModelRecord,
    RunSummary,
    model_from_dict,
    model_to_dict,
    read_summary,
)
from l1flow.registry.bundle import (
    BUNDLE_FILE,
    BundleError,
    safe_extract,
    sha256_file,
    write_bundle,
)
from l1flow.registry.criteria import (
    AcceptanceCriteria,
    AcceptanceVerdict,
    evaluate_acceptance,
    gate_verdict,
)
from l1flow.settings import settings

# Progress bars would garble CLI output and logs; the user can still turn them on.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
# MLflow 3 sends usage telemetry unless told not to; it honours DO_NOT_TRACK only
# when spelled "true", while l1flow.toolchain sets "1", so say it explicitly.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

from mlflow import MlflowClient  # noqa: E402  (after the environment default above)
from mlflow.entities import Metric, Param  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

log = logging.getLogger(__name__)

CANDIDATE = "candidate"
PRODUCTION = "production"
TAG = "l1flow."
SUMMARY_TAG = TAG + "summary"
CRITERIA_TAG = TAG + "acceptance.criteria"
HISTORY_TAG = TAG + "production_history"
LOG_TAG = TAG + "production_log"
BUNDLE_SHA_TAG = TAG + "bundle.sha256"
BUNDLE_PATH_TAG = TAG + "bundle.artifact_path"
EMULATOR_SHA_TAG = TAG + "emulator.sha256"
EMULATOR_PATH_TAG = TAG + "emulator.artifact_path"
REPORT_FILE = "report.html"
# A model block larger than this stays only in the run's summary.json artifact
# (MLflow limits a registry tag value to 100,000 characters).
_SUMMARY_TAG_LIMIT = 90_000
# Oldest entries are dropped beyond this so the tags stay far below MLflow's 100 kB limit.
_HISTORY_LIMIT = 200
_SAFE_KEY = re.compile(r"[^A-Za-z0-9_\-. /]")


class RegistryError(BadInputError):
    """A registry operation could not be done; the message says why and what to do."""


class PromotionRefused(VerificationFailed):
    """A version failed an acceptance criterion; `verdict` lists them all."""

    def __init__(self, name: str, version: int, verdict: AcceptanceVerdict) -> None:
        super().__init__(
            f"refusing to promote {name} version {version} to {PRODUCTION}: {verdict.reason()}. "
            "Fix the failing step and register a new version, or use --force with --reason to override."
        )
        self.name = name
        self.version = version
        self.verdict = verdict


@dataclass(frozen=True)
class RegisteredVersion:
    """A version created by :meth:`ModelRegistry.record_run`."""

    name: str
    version: int
    run_id: str
    verdict: AcceptanceVerdict
    promoted: bool
    #: True when no version was created: ``version`` already holds identical weights and
    #: firmware trained under the same conditions (the run matched it)
    matched: bool = False


#: the lineage tags that make two versions the same: identical weights and firmware, same conditions
IDENTITY_TAGS: tuple[str, ...] = (
    TAG + "weights.hash", TAG + "firmware.hash", TAG + "conditions.tag", TAG + "conditions.iov.first_run",
)


@dataclass(frozen=True)
class ModelOverview:
    """One registered model as `l1flow models list` shows it."""

    name: str
    latest_version: int
    aliases: dict[str, int]
    versions: int


@dataclass(frozen=True)
class VersionDetails:
    """Everything recorded for one version: lineage, metrics, aliases."""

    name: str
    version: int
    run_id: str
    source: str
    created: str
    aliases: list[str]
    lineage: dict[str, str]
    metrics: dict[str, float]
    summary: ModelRecord = field(repr=False)


@dataclass(frozen=True)
class FetchedBundle:
    """A bundle downloaded by :meth:`ModelRegistry.fetch`, verified and extracted."""

    archive: Path | None  # the kept archive (None when only the extracted folder is kept)
    folder: Path
    sha256: str
    files: list[str]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _user() -> str:
    return settings().user


def _key(*parts: object) -> str:
    """An MLflow-safe metric/param key from summary names (signals may hold any characters)."""
    return ".".join(_SAFE_KEY.sub("_", str(p)) for p in parts)[:250]


def _text(value: object, limit: int = 6000) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def model_metrics(name: str, model: ModelRecord) -> dict[str, float]:
    """Flatten one model block of summary.json into MLflow metric names."""
    out: dict[str, float] = {}
    metrics = model.metrics
    if metrics is not None:
        for group, values in (("auc", metrics.auc), ("efficiency_at_rate", metrics.efficiency_at_rate)):
            for signal, value in values.items():
                out[_key(name, group, signal)] = float(value)
        for scalar, number in (("threshold", metrics.threshold), ("working_point_khz", metrics.working_point_khz)):
            if number is not None:
                out[_key(name, scalar)] = float(number)
    fidelity = model.software_vs_emulation
    if fidelity is not None:
        for item, number in (("max_abs_diff", fidelity.max_abs_diff),
                             ("fraction_differing", fidelity.fraction_differing), ("events", fidelity.events)):
            out[_key(name, "software_vs_emulation", item)] = float(number)
    if model.decision_agreement is not None:
        out[_key(name, "decision_agreement")] = float(model.decision_agreement)
    for gate in model.emulation_vs_hardware:
        for item, count in (("events", gate.events), ("mismatched_events", gate.mismatched_events),
                            ("mismatched_words", gate.mismatched_words)):
            out[_key(name, "gate", gate.source, item)] = float(count)
    if model.resources is not None:
        for kind in ("LUT", "FF", "DSP", "BRAM", "carry"):
            if (amount := model.resources.get(kind)) is not None:
                out[_key(name, "resources", kind)] = float(amount)
    if model.latency is not None:
        for unit in ("cycles", "ns", "ii"):
            if (measured := model.latency.get(unit)) is not None:
                out[_key(name, "latency", unit)] = float(measured)
    return out


def _iov_tags(conditions: Conditions | None) -> tuple[str, str]:
    iov = conditions.iov if conditions is not None else None
    first = "" if iov is None else str(iov.first_run)
    last = "open" if iov is None or iov.last_run is None else str(iov.last_run)
    return first, last


def _trigger(conditions: Conditions | None) -> dict[str, Any]:
    return (conditions.trigger if conditions is not None else None) or {}


def lineage_tags(summary: RunSummary, name: str, model: ModelRecord) -> dict[str, str]:
    """The lineage of one model version as `l1flow.*` tags (all strings)."""
    conditions = summary.conditions
    first, last = _iov_tags(conditions)
    trigger = _trigger(conditions)
    tags: dict[str, str] = {
        TAG + "pipeline_run": summary.run_id or "",
        TAG + "kind": model.kind or "",
        TAG + "conditions.tag": (conditions.tag if conditions is not None else None) or "",
        TAG + "conditions.iov.first_run": first,
        TAG + "conditions.iov.last_run": last,
        # The same interval in one readable value, e.g. "[390000, open]".
        TAG + "conditions.iov": f"[{first or '?'}, {last}]",
        TAG + "conditions.trigger.retrain": str(trigger.get("retrain", "")),
        TAG + "conditions.trigger.reason": _text(trigger.get("reason", "")),
        TAG + "dataset.hash": (summary.dataset.hash if summary.dataset is not None else None) or "",
        TAG + "config.name": summary.config_name or "",
        TAG + "config.hash": summary.config_hash or "",
        TAG + "weights.hash": model.weights_hash or "",
        TAG + "firmware.hash": model.firmware_hash or "",
    }
    for tool, version in summary.tool_versions.items():
        tags[TAG + "tool." + _key(tool)] = str(version)
    passed, detail = gate_verdict(model)
    tags[TAG + "gate.verdict"] = {True: "passed", False: "failed", None: "not run"}[passed]
    tags[TAG + "gate.detail"] = _text(detail)
    resources = model.resources
    tags[TAG + "synthesis.report"] = "not measured" if resources is None else _text(_present(resources))
    latency = model.latency
    tags[TAG + "latency"] = "not measured" if latency is None else _text(_present(latency))
    return tags


def _present(record: Any) -> dict[str, Any]:
    """A record's measured values (nulls left out), for a one-line tag."""
    return {key: value for key, value in dataclasses.asdict(record).items() if value is not None}


class ModelRegistry:
    """Model versions, lineage and aliases in an MLflow store.

    `workspace` holds the embedded store and the lock file that serialises
    writers on this machine; `tracking_uri` points elsewhere (a server or a
    database) when given. `artifact_location` is used only when the experiment
    is created (default: ``<workspace>/mlartifacts`` for SQLite and file
    stores, the server's own artifact root otherwise).
    """

    def __init__(
        self,
        workspace: Path,
        tracking_uri: str | None = None,
        experiment: str = "l1flow",
        artifact_location: str | None = None,
    ) -> None:
        self.workspace = Path(workspace).resolve()
        self.workspace.mkdir(parents=True, exist_ok=True)
        # A server (http, databricks, a database shared by machines) has its own
        # artifact root, or takes `artifact_location`; a SQLite file opened
        # directly would default to ./mlruns in the current directory, so its
        # artifacts go under the workspace.
        if artifact_location is None and (tracking_uri is None or tracking_uri.startswith(("sqlite:", "file:"))):
            artifact_location = (self.workspace / "mlartifacts").as_uri()
        self.tracking_uri = tracking_uri or f"sqlite:///{self.workspace / 'mlflow.db'}"
        if self.tracking_uri.startswith(("http:", "https:")):
            # a served registry (`l1flow registry-server`) asks for the credential MLflow's client sends
            registry_credential()
        self._lock_path = self.workspace / ".registry.lock"
        # Creating the schema of a new SQLite store (which MlflowClient does on
        # first contact) is not safe from two processes at once.
        with self._locked():
            try:
                self.client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
                existing = self.client.get_experiment_by_name(experiment)
                if existing is not None:
                    self.experiment_id = existing.experiment_id
                else:
                    self.experiment_id = self.client.create_experiment(experiment, artifact_location=artifact_location)
            except MlflowException as error:
                raise RegistryError(
                    f"cannot open the MLflow store at {self.tracking_uri}: {error.message}. "
                    "Check --tracking-uri (or the workspace folder's permissions)."
                ) from error

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """An exclusive lock of the workspace: writers on one machine never interleave.

        MLflow's SQLAlchemy store retries version numbering itself, but SQLite
        allows one writer at a time and alias history is read-modify-write, so
        registry writes go one after another.
        """
        with self._lock_path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # ---- recording a pipeline run -------------------------------------------------

    def record_run(
        self, run_dir: Path, criteria: AcceptanceCriteria, promote: bool = True
    ) -> list[RegisteredVersion]:
        """Log one pipeline run folder and register one new version per model.

        Each version gets the `candidate` alias; with `promote`, `production`
        moves to it when it meets `criteria` against the current production.
        A model whose weights and firmware are identical to an existing
        version's, under the same conditions, makes no new version: it is
        returned with ``matched=True`` and that version's number, and no
        alias moves (a rerun of an unchanged config changes nothing).
        """
        run_dir = Path(run_dir)
        try:
            summary = read_summary(run_dir)
        except BadInputError as error:
            raise RegistryError(str(error)) from error
        models = summary.models
        if not models:
            raise RegistryError(f"{run_dir / 'summary.json'} lists no models; nothing to register")
        with tempfile.TemporaryDirectory(prefix="l1flow-bundles-") as scratch:
            bundles = {
                name: write_bundle(run_dir, _bundle_entries(model), Path(scratch) / name / BUNDLE_FILE)
                for name, model in models.items()
            }
            with self._locked():
                matches = {name: self._identical_version(summary, name, model) for name, model in models.items()}
                new = [name for name, match in matches.items() if match is None]
                run_id = self._log_run(run_dir, summary, bundles) if new else ""
                return [
                    self._matched(summary, name, model, matches[name], criteria)
                    if name not in new
                    else self._register(summary, name, model, run_id, bundles[name].sha256, criteria, promote)
                    for name, model in models.items()
                ]

    def _identical_version(self, summary: RunSummary, name: str, model: ModelRecord) -> Any | None:
        """The newest existing version of ``name`` with the same weights, firmware and conditions, or None."""
        wanted = {key: value for key, value in lineage_tags(summary, name, model).items() if key in IDENTITY_TAGS}
        if not all(wanted.values()):
            return None  # a block without hashes cannot be proved identical
        try:
            versions = self.client.search_model_versions(f"name = '{name}'", max_results=10000)
        except MlflowException:
            return None
        same = [v for v in versions if all(v.tags.get(key) == value for key, value in wanted.items())]
        return max(same, key=lambda v: int(v.version)) if same else None

    def _matched(
        self, summary: RunSummary, name: str, model: ModelRecord, existing: Any, criteria: AcceptanceCriteria
    ) -> RegisteredVersion:
        version = int(existing.version)
        log.info(
            "%s: identical weights and firmware under the same conditions as version %d; no new version",
            name, version,
        )
        verdict = evaluate_acceptance(model, self._production_model_block(name), criteria)
        return RegisteredVersion(name=name, version=version, run_id=existing.run_id, verdict=verdict,
                                 promoted=False, matched=True)

    def _log_run(self, run_dir: Path, summary: RunSummary, bundles: dict[str, Any]) -> str:
        run = self.client.create_run(
            self.experiment_id,
            run_name=summary.run_id or None,
            tags={
                TAG + "pipeline_run": summary.run_id or "",
                TAG + "config.name": summary.config_name or "",
                TAG + "conditions.tag": (summary.conditions.tag if summary.conditions else None) or "",
            },
        )
        run_id = run.info.run_id
        try:
            self._log_values(run_id, summary)
            self.client.log_artifact(run_id, str(run_dir / "summary.json"))
            if (run_dir / REPORT_FILE).is_file():
                self.client.log_artifact(run_id, str(run_dir / REPORT_FILE))
            for name, model in summary.models.items():
                for plot in model.plots.values():
                    if (run_dir / plot).is_file():
                        self.client.log_artifact(run_id, str(run_dir / plot), f"plots/{_key(name)}")
                model_path = model.artifacts.get("model")
                if model_path and (run_dir / model_path).is_dir():
                    self.client.log_artifacts(run_id, str(run_dir / model_path), f"models/{_key(name)}")
                elif model_path and (run_dir / model_path).is_file():
                    self.client.log_artifact(run_id, str(run_dir / model_path), f"models/{_key(name)}")
                self.client.log_artifact(run_id, str(bundles[name].path), f"bundles/{_key(name)}")
        except BaseException:
            self.client.set_terminated(run_id, status="FAILED")
            raise
        self.client.set_terminated(run_id)
        return run_id

    def _log_values(self, run_id: str, summary: RunSummary) -> None:
        conditions = summary.conditions
        first, last = _iov_tags(conditions)
        trigger = _trigger(conditions)
        dataset = summary.dataset
        params: dict[str, Any] = {
            "config_name": summary.config_name or "",
            "config_hash": summary.config_hash or "",
            "conditions.tag": (conditions.tag if conditions is not None else None) or "",
            "conditions.iov.first_run": first,
            "conditions.iov.last_run": last,
            "conditions.trigger.retrain": trigger.get("retrain", ""),
            "conditions.trigger.reason": trigger.get("reason", ""),
            "dataset.hash": (dataset.hash if dataset is not None else None) or "",
        }
        for key, value in (dataset.events if dataset is not None else {}).items():
            params[_key("dataset.events", key)] = value
        for tool, version in summary.tool_versions.items():
            params[_key("tool", tool)] = version
        param_list = [Param(_key(k), _text(str(v))) for k, v in params.items()]
        metrics: dict[str, float] = {}
        for scalar, number in (("wall_seconds", summary.wall_seconds), ("train_seconds", summary.train_seconds)):
            if number is not None:
                metrics[scalar] = float(number)
        for name, model in summary.models.items():
            metrics.update(model_metrics(name, model))
        stamp = int(datetime.now(UTC).timestamp() * 1000)
        metric_list = [Metric(k, v, stamp, 0) for k, v in metrics.items()]
        for start in range(0, len(param_list), 100):
            self.client.log_batch(run_id, params=param_list[start : start + 100])
        for start in range(0, len(metric_list), 1000):
            self.client.log_batch(run_id, metrics=metric_list[start : start + 1000])

    def _register(
        self,
        summary: RunSummary,
        name: str,
        model: ModelRecord,
        run_id: str,
        bundle_sha: str,
        criteria: AcceptanceCriteria,
        promote: bool,
    ) -> RegisteredVersion:
        try:
            self.client.get_registered_model(name)
        except MlflowException:
            try:
                self.client.create_registered_model(
                    name, description=f"l1flow model '{name}' ({model.kind or 'unknown kind'})"
                )
            except MlflowException as error:
                # Another machine on a shared server created it between our two calls.
                if error.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
        production = self._production_model_block(name)
        verdict = evaluate_acceptance(model, production, criteria)
        tags = lineage_tags(summary, name, model)
        block = json.dumps(model_to_dict(model), sort_keys=True)
        if len(block) <= _SUMMARY_TAG_LIMIT:
            tags[SUMMARY_TAG] = block
        tags.update(
            {
                CRITERIA_TAG: criteria.model_dump_json(),
                BUNDLE_SHA_TAG: bundle_sha,
                BUNDLE_PATH_TAG: f"bundles/{_key(name)}/{BUNDLE_FILE}",
                TAG + "acceptance.passed": str(verdict.passed),
                TAG + "acceptance.reason": _text(verdict.reason() or "all criteria passed"),
            }
        )
        run = self.client.get_run(run_id)
        has_model = bool(model.artifacts.get("model"))
        source = f"{run.info.artifact_uri}/{'models' if has_model else 'bundles'}/{_key(name)}"
        created = self.client.create_model_version(name, source=source, run_id=run_id, tags=tags)
        version = int(created.version)
        self.client.set_registered_model_alias(name, CANDIDATE, str(version))
        promoted = False
        if promote and verdict.passed:
            self._move_production(name, version, action="accepted", reason="met the acceptance criteria at registration")
            promoted = True
        return RegisteredVersion(name=name, version=version, run_id=run_id, verdict=verdict, promoted=promoted)

    def attach_report(self, run_id: str, report: Path) -> None:
        """Log a run's HTML report rendered after :meth:`record_run` (e.g. one that shows its outcome)."""
        report = Path(report)
        if not report.is_file():
            raise RegistryError(f"report {report} does not exist; render it first (l1flow report RUN_DIR)")
        self.client.log_artifact(run_id, str(report))

    # ---- aliases -------------------------------------------------------------------

    def _alias_version(self, name: str, alias: str) -> int | None:
        try:
            return int(self.client.get_model_version_by_alias(name, alias).version)
        except MlflowException:
            return None

    def _production_model_block(self, name: str) -> ModelRecord | None:
        version = self._alias_version(name, PRODUCTION)
        if version is None:
            return None
        return self._summary_of(name, version)

    def _summary_of(self, name: str, version: int) -> ModelRecord:
        """The model's block of summary.json as registered (from its tag, or the run's summary.json)."""
        record = self._model_version(name, version)
        if SUMMARY_TAG in record.tags:
            return model_from_dict(json.loads(record.tags[SUMMARY_TAG]), f"{name} version {version} tag {SUMMARY_TAG}")
        if BUNDLE_SHA_TAG not in record.tags:
            raise RegistryError(f"{name} version {version} was not registered by l1flow (no '{TAG}*' lineage tags)")
        with tempfile.TemporaryDirectory(prefix="l1flow-summary-") as scratch:
            path = Path(self.client.download_artifacts(record.run_id, "summary.json", scratch))
            models = read_summary(path).models
        if name not in models:
            raise RegistryError(f"the summary.json of run {record.run_id} has no block for model {name}")
        return models[name]

    def _model_version(self, name: str, version: int) -> Any:
        try:
            return self.client.get_model_version(name, str(version))
        except MlflowException as error:
            raise RegistryError(
                f"{name} version {version} is not in the registry at {self.tracking_uri}; "
                "`l1flow models list` shows what is there"
            ) from error

    def _history(self, name: str, tag: str) -> list[dict[str, Any]]:
        try:
            value = self.client.get_registered_model(name).tags.get(tag)
        except MlflowException as error:
            raise RegistryError(
                f"no model named '{name}' in the registry at {self.tracking_uri}; `l1flow models list` shows them"
            ) from error
        return json.loads(value) if value else []

    def _append(self, name: str, tag: str, entries: list[dict[str, Any]]) -> None:
        self.client.set_registered_model_tag(name, tag, json.dumps(entries[-_HISTORY_LIMIT:]))

    def _move_production(self, name: str, version: int, action: str, reason: str) -> dict[str, Any]:
        entry = {"version": version, "action": action, "at": _now(), "by": _user(), "reason": reason}
        history = self._history(name, HISTORY_TAG)
        history.append(entry)
        self.client.set_registered_model_alias(name, PRODUCTION, str(version))
        self._append(name, HISTORY_TAG, history)
        self._append(name, LOG_TAG, self._history(name, LOG_TAG) + [entry])
        return entry

    def resolve_version(self, name: str, version: int | str) -> int:
        """A version number from a number or an alias name ("production", "candidate")."""
        if isinstance(version, int) or str(version).isdigit():
            return int(version)
        found = self._alias_version(name, str(version))
        if found is None:
            raise RegistryError(f"{name} has no version with alias '{version}'; `l1flow models show {name}` lists them")
        return found

    def check(self, name: str, version: int | str, criteria: AcceptanceCriteria | None = None) -> AcceptanceVerdict:
        """The acceptance verdict of a version against today's production.

        Uses the criteria recorded with the version unless others are given.
        """
        number = self.resolve_version(name, version)
        record = self._model_version(name, number)
        if criteria is None:
            criteria = AcceptanceCriteria.model_validate_json(record.tags.get(CRITERIA_TAG, "{}"))
        production_version = self._alias_version(name, PRODUCTION)
        production = (
            None
            if production_version is None or production_version == number
            else self._summary_of(name, production_version)
        )
        return evaluate_acceptance(self._summary_of(name, number), production, criteria)

    def promote(
        self,
        name: str,
        version: int | str,
        force: bool = False,
        reason: str = "",
        criteria: AcceptanceCriteria | None = None,
    ) -> dict[str, Any]:
        """Move `production` to a version if it meets the criteria (or with `force`).

        A refused promotion raises :class:`PromotionRefused` naming every failed
        criterion. `force` needs a `reason`; who, when, why and what was
        overridden are recorded on the version and in the history.
        """
        with self._locked():
            number = self.resolve_version(name, version)
            if self._alias_version(name, PRODUCTION) == number:
                raise RegistryError(f"{name} version {number} is already {PRODUCTION}")
            verdict = self.check(name, number, criteria)
            if verdict.passed:
                return self._move_production(name, number, action="promoted", reason=reason or "met the acceptance criteria")
            if not force:
                raise PromotionRefused(name, number, verdict)
            if not reason.strip():
                raise RegistryError("a forced promotion needs a reason (--reason \"...\"); it is recorded with the version")
            entry = self._move_production(name, number, action="forced", reason=reason)
            entry["overridden"] = verdict.reason()
            for key, value in (
                ("forced_promotion", "true"),
                ("forced.by", entry["by"]),
                ("forced.at", entry["at"]),
                ("forced.reason", reason),
                ("forced.overridden", verdict.reason()),
            ):
                self.client.set_model_version_tag(name, str(number), TAG + key, _text(value))
            return entry

    def rollback(self, name: str, reason: str = "") -> dict[str, Any]:
        """Restore the version that was `production` before the current one."""
        with self._locked():
            history = self._history(name, HISTORY_TAG)
            current = self._alias_version(name, PRODUCTION)
            if history and current is not None and int(history[-1]["version"]) != current:
                raise RegistryError(
                    f"{name}: the '{PRODUCTION}' alias points to version {current} but l1flow's history ends at "
                    f"version {history[-1]['version']}; the alias was moved outside l1flow. "
                    f"Run `l1flow models promote {name} <version>` to put it back under l1flow's record"
                )
            if len(history) < 2 or current is None:
                now = "no version is production" if current is None else f"version {current} is production"
                raise RegistryError(
                    f"{name} has no earlier {PRODUCTION} version to roll back to: {now} and none came before it "
                    f"(history: {[h['version'] for h in history] or 'empty'})"
                )
            removed = history.pop()
            previous = int(history[-1]["version"])
            self.client.set_registered_model_alias(name, PRODUCTION, str(previous))
            self._append(name, HISTORY_TAG, history)
            entry = {
                "version": previous,
                "action": "rollback",
                "from_version": int(removed["version"]),
                "at": _now(),
                "by": _user(),
                "reason": reason or "rollback",
            }
            self._append(name, LOG_TAG, self._history(name, LOG_TAG) + [entry])
            self.client.set_model_version_tag(
                name, str(removed["version"]), TAG + "rolled_back", f"{entry['at']} by {entry['by']}: {entry['reason']}"
            )
            return entry

    # ---- reading -------------------------------------------------------------------

    def list_models(self) -> list[ModelOverview]:
        """Every registered model with its latest version and aliases."""
        overviews: list[ModelOverview] = []
        for model in self.client.search_registered_models(max_results=1000):
            versions = self.client.search_model_versions(f"name = '{model.name}'", max_results=10000)
            numbers = [int(v.version) for v in versions]
            overviews.append(
                ModelOverview(
                    name=model.name,
                    latest_version=max(numbers, default=0),
                    aliases={alias: int(v) for alias, v in (model.aliases or {}).items()},
                    versions=len(numbers),
                )
            )
        return sorted(overviews, key=lambda o: o.name)

    def versions(self, name: str) -> list[int]:
        """All version numbers of a model, ascending."""
        return sorted(int(v.version) for v in self.client.search_model_versions(f"name = '{name}'", max_results=10000))

    def show(self, name: str, version: int | str = PRODUCTION) -> VersionDetails:
        """Lineage, metrics and aliases of one version (a number or an alias)."""
        number = self.resolve_version(name, version)
        record = self._model_version(name, number)
        metrics = {
            key: value
            for key, value in self.client.get_run(record.run_id).data.metrics.items()
            if key.startswith(_key(name) + ".")
        }
        lineage = {
            key[len(TAG) :]: value
            for key, value in sorted(record.tags.items())
            if key.startswith(TAG) and key not in (SUMMARY_TAG, CRITERIA_TAG)
        }
        created = datetime.fromtimestamp(record.creation_timestamp / 1000, UTC).isoformat(timespec="seconds")
        return VersionDetails(
            name=name,
            version=number,
            run_id=record.run_id,
            source=record.source,
            created=created,
            aliases=sorted(record.aliases or []),
            lineage=lineage,
            metrics=metrics,
            summary=self._summary_of(name, number),
        )

    def production_history(self, name: str) -> list[dict[str, Any]]:
        """Every move of `production` (promotions, forced promotions, rollbacks), oldest first."""
        return self._history(name, LOG_TAG)

    def production_summary(self, names: list[str], before_run: str | None = None) -> Baseline | None:
        """The production versions of `names`, as the baseline a new run is compared with.

        This is what :func:`l1flow.report.render_report` compares a new run to;
        None when none of the models has a production version yet. With
        `before_run` (a pipeline run id), a version registered by that run is
        skipped in favour of the production version before it, so a run that
        was already promoted is compared with its predecessor, not itself.
        """
        models: dict[str, BaselineModel] = {}
        for name in names:
            try:
                current = self._alias_version(name, PRODUCTION)
                stack = [int(entry["version"]) for entry in reversed(self._history(name, HISTORY_TAG))]
            except RegistryError:
                continue
            for version in ([current] if current is not None else []) + stack:
                record = self._model_version(name, version)
                if before_run is None or record.tags.get(TAG + "pipeline_run") != before_run:
                    models[name] = self._previous_block(name, version, record.tags)
                    break
        return Baseline(label="production", models=models) if models else None

    def _previous_block(self, name: str, version: int, tags: dict[str, str]) -> BaselineModel:
        last_run = tags.get(TAG + "conditions.iov.last_run", "open")
        first_run = tags.get(TAG + "conditions.iov.first_run", "")
        iov = Iov(int(first_run), int(last_run) if last_run.isdigit() else None) if first_run.isdigit() else None
        conditions = Conditions(tag=tags.get(TAG + "conditions.tag", ""), iov=iov)
        return BaselineModel(self._summary_of(name, version), version, conditions)

    def fetch(self, name: str, version: int | str, dest: Path) -> FetchedBundle:
        """Download a version's firmware bundle into `dest`, check its sha256, extract it safely.

        Writes ``<dest>/<name>-v<N>.tar.gz`` (byte-identical to what was
        registered) and the folder ``<dest>/<name>-v<N>/``.
        """
        number = self.resolve_version(name, version)
        dest = Path(dest)
        archive = dest / f"{_key(name)}-v{number}.tar.gz"
        folder = dest / f"{_key(name)}-v{number}"
        if archive.exists() or folder.exists():
            raise RegistryError(f"{archive} or {folder} already exists; fetch into an empty folder")
        return self._download_verified(name, number, BUNDLE_SHA_TAG, BUNDLE_PATH_TAG, "firmware bundle", folder, archive)

    def attach_emulator(self, name: str, version: int | str, archive: Path) -> str:
        """Attach an emulator package (a tar.gz) to a version, as its firmware bundle is; return its sha256.

        The archive goes to the artifacts of the version's MLflow run and its
        sha256 and path become version tags, so :meth:`fetch_emulator` returns
        exactly these bytes. A version takes one emulator package: attaching
        another is refused.
        """
        number = self.resolve_version(name, version)
        with self._locked():
            record = self._model_version(name, number)
            if record.tags.get(EMULATOR_SHA_TAG):
                raise RegistryError(
                    f"{name} version {number} already has an emulator package "
                    f"(sha256 {record.tags[EMULATOR_SHA_TAG]}); fetch it instead of attaching another"
                )
            sha = sha256_file(Path(archive))
            artifact_dir = f"emulators/{_key(name)}/v{number}"
            self.client.log_artifact(record.run_id, str(archive), artifact_dir)
            self.client.set_model_version_tag(name, str(number), EMULATOR_PATH_TAG, f"{artifact_dir}/{Path(archive).name}")
            self.client.set_model_version_tag(name, str(number), EMULATOR_SHA_TAG, sha)
        return sha

    def has_emulator(self, name: str, version: int | str) -> bool:
        """Whether an emulator package is attached to the version."""
        record = self._model_version(name, self.resolve_version(name, version))
        return bool(record.tags.get(EMULATOR_SHA_TAG) and record.tags.get(EMULATOR_PATH_TAG))

    def fetch_emulator(self, name: str, version: int | str, folder: Path) -> FetchedBundle:
        """Download the version's attached emulator package, check its sha256 and extract it into `folder`."""
        number = self.resolve_version(name, version)
        folder = Path(folder)
        if folder.exists():
            raise RegistryError(f"{folder} already exists; fetch the emulator package into a new folder")
        return self._download_verified(name, number, EMULATOR_SHA_TAG, EMULATOR_PATH_TAG, "emulator package", folder, None)

    def _download_verified(
        self, name: str, number: int, sha_tag: str, path_tag: str, what: str, folder: Path, archive: Path | None
    ) -> FetchedBundle:
        """Download an archive recorded by tags, refuse it unless its sha256 matches, extract it to `folder`."""
        record = self._model_version(name, number)
        expected = record.tags.get(sha_tag)
        artifact = record.tags.get(path_tag)
        if not expected or not artifact:
            raise RegistryError(f"{name} version {number} has no {what} recorded")
        folder.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".fetch-", dir=folder.parent) as scratch:
            downloaded = Path(self.client.download_artifacts(record.run_id, artifact, scratch))
            actual = sha256_file(downloaded)
            if actual != expected:
                raise RegistryError(
                    f"the {what} of {name} version {number} in the artifact store has sha256 {actual}, "
                    f"but {expected} was registered; the store copy is corrupt or was replaced"
                )
            try:
                files = safe_extract(downloaded, folder)
            except BundleError as error:
                raise RegistryError(f"{name} version {number}: {error}") from error
            if archive is not None:
                shutil.move(str(downloaded), archive)
        return FetchedBundle(archive=archive, folder=folder, sha256=actual, files=files)


def _bundle_entries(model: ModelRecord) -> dict[str, str]:
    """The artifacts that go into the firmware bundle: everything but the trained model."""
    return {key: path for key, path in model.artifacts.items() if key != "model" and path}
