"""The Prefect settings the service commands read."""

from __future__ import annotations

from prefect.settings import PREFECT_API_URL


def api_url() -> str | None:
    """PREFECT_API_URL as Prefect resolves it (environment, profile or temporary settings)."""
    return PREFECT_API_URL.value() or None
