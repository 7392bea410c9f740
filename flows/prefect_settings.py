"""The Prefect settings the service commands read."""

from __future__ import annotations

from prefect.settings import (
    PREFECT_API_URL,
    PREFECT_RUNNER_SERVER_ENABLE,
    PREFECT_RUNNER_SERVER_HOST,
)


def api_url() -> str | None:
    """PREFECT_API_URL as Prefect resolves it (environment, profile or temporary settings)."""
    return PREFECT_API_URL.value() or None


def runner_webserver_host() -> str | None:
    """Where `serve`'s runner webserver listens, if PREFECT_RUNNER_SERVER_ENABLE turned it on."""
    return PREFECT_RUNNER_SERVER_HOST.value() if PREFECT_RUNNER_SERVER_ENABLE.value() else None
