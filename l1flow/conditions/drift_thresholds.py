"""The thresholds of drift detection (:mod:`l1flow.conditions.drift`), apart from its numba kernels.

A pipeline configuration holds these thresholds; keeping them in a module of
their own lets the configuration be validated without importing numba (which
takes about a second), so a config error is reported at once.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

#: fine histogram bins each feature is counted in (PSI and KS are computed from them)
FINE_BINS = 8192


class DriftThresholds(BaseModel):
    """When a feature counts as drifted, and when the sample does.

    A feature drifts when its PSI exceeds ``psi`` or its KS statistic exceeds
    ``ks``; the sample drifts when at least ``min_drifted_features`` do.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    psi: float = Field(0.1, gt=0, le=10, description="PSI above which a feature drifts")
    ks: float = Field(0.05, gt=0, le=1, description="KS statistic above which a feature drifts")
    n_bins: int = Field(10, ge=2, le=FINE_BINS, description="reference-quantile bins of the PSI")
    min_drifted_features: int = Field(1, ge=1, description="drifted features that make the sample drift")
