"""Model lifecycle: MLflow versions with lineage, aliases, acceptance criteria, firmware bundles.

The criteria and bundle helpers import quickly; :class:`ModelRegistry` pulls in
MLflow (a few seconds), so it is loaded on first use.
"""

from __future__ import annotations

from typing import Any

from l1flow.registry.bundle import BundleError, BundleInfo, safe_extract, write_bundle
from l1flow.registry.criteria import (
    AcceptanceCriteria,
    AcceptanceVerdict,
    CriterionResult,
    ResourceBudget,
    evaluate_acceptance,
)

_FROM_STORE = {"ModelRegistry", "RegistryError", "PromotionRefused", "RegisteredVersion", "VersionDetails", "FetchedBundle"}

__all__ = [
    "AcceptanceCriteria",
    "AcceptanceVerdict",
    "BundleError",
    "BundleInfo",
    "CriterionResult",
    "ResourceBudget",
    "evaluate_acceptance",
    "safe_extract",
    "write_bundle",
    *sorted(_FROM_STORE),
]


def __getattr__(name: str) -> Any:
    if name in _FROM_STORE:
        from l1flow.registry import store

        return getattr(store, name)
    raise AttributeError(f"module 'l1flow.registry' has no attribute {name!r}")
