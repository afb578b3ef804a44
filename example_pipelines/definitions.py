"""What ``dagster dev`` loads (``dagster dev -m example_pipelines.definitions``, or just ``dagster dev`` from
the repository root: pyproject.toml's ``[tool.dagster]`` points here). Records into the embedded default
workspace unless WANDB_DAGSTER_DATABASE_URL names another."""

from example_pipelines.bikes import make_definitions

defs = make_definitions()
