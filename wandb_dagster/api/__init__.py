"""The public query API (``wandb_dagster.Api``), mirroring ``wandb.Api``."""

from wandb_dagster.api.api import Api

__all__ = ["Api"]
