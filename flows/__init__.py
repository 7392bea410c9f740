"""Prefect flows and deployments: orchestration only (installed as ``l1flow.flows``).

This package itself imports nothing from Prefect, so the CLI can read where the
flows are without loading Prefect; its modules do.
"""

from pathlib import Path

#: the folder holding ``flows/``, which deployments load their entrypoints from:
#: the repository in a checkout (``l1flow/flows`` links to it), the installed
#: ``l1flow`` package folder from a wheel
FLOW_SOURCE = Path(__file__).resolve().parents[1]
SYNTHESIZE_ENTRYPOINT = "flows/synthesize.py:synthesize"
WATCH_ENTRYPOINT = "flows/watch.py:watch_conditions"
PIPELINE_ENTRYPOINT = "flows/pipeline.py:l1flow_pipeline"
