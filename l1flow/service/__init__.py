"""l1flow as a service: Prefect server, synthesis pools and their workers, job submission."""
