"""Example pipelines for wandb_dagster (the SDK walkthrough now; Dagster pipelines arrive with the integration)."""
