"""The public query API (``wandb_dagster.Api``), mirroring ``wandb.Api``: lazy paginated queries over a
workspace with MongoDB-style filters compiled to SQL, registries, and the event feed."""

from wandb_dagster.api.api import Api
from wandb_dagster.api.objects import Artifact, ArtifactCollection, ArtifactType, Project, Run
from wandb_dagster.api.paginator import Paginator
from wandb_dagster.api.registries import Registry
from wandb_dagster.api.sweeps import Sweep

__all__ = ["Api", "Artifact", "ArtifactCollection", "ArtifactType", "Paginator", "Project", "Registry", "Run", "Sweep"]
