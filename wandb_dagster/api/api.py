"""``Api``: read and update what is in a workspace, as ``wandb.Api`` does for a W&B server.

Example::

    >>> import wandb_dagster as wandb
    >>> api = wandb.Api()                                   # doctest: +SKIP
    >>> artifact = api.artifact("bike-dataset:latest")      # doctest: +SKIP
    >>> artifact.description = "My new description"         # doctest: +SKIP
    >>> artifact.save()                                     # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from wandb_dagster.sdk.artifact import Artifact, ArtifactNotFoundError
from wandb_dagster.sdk.run import fetch_artifact
from wandb_dagster.sdk.workspace import Workspace
from wandb_dagster.settings import Settings

_OVERRIDE_KEYS = ("entity", "project", "base_url", "storage_root", "root_dir")


class Api:
    """Query a workspace. ``overrides`` may set ``entity``, ``project`` and ``base_url`` (a database URL)."""

    def __init__(self, overrides: dict[str, Any] | None = None, timeout: int | None = None, api_key: str | None = None) -> None:
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(_OVERRIDE_KEYS))
        if unknown:
            raise ValueError(f"Unknown Api overrides {unknown}; valid keys: {list(_OVERRIDE_KEYS)}.")
        base_url = overrides.get("base_url")
        if base_url is not None and "://" not in base_url:
            raise ValueError(
                f"overrides['base_url']={base_url!r} is not a workspace URL; use a database URL such as "
                "'sqlite:////path/store.db' or 'postgresql://user@host/db'."
            )
        self.settings = Settings.resolve(
            database_url=base_url,
            entity=overrides.get("entity"),
            project=overrides.get("project"),
            storage_root=overrides.get("storage_root"),
            root_dir=overrides.get("root_dir"),
        )
        self._ws = Workspace.for_settings(self.settings)

    @property
    def default_entity(self) -> str:
        return self.settings.entity

    def artifact(self, name: str, type: str | None = None) -> Artifact:
        """The version named ``[[entity/]project/]name[:version|alias]`` (alias defaults to ``latest``)."""
        artifact = fetch_artifact(self._ws, name, self.settings.entity, self.settings.project)
        if type is not None and artifact.type != type:
            raise ValueError(f"Artifact {artifact.qualified_name!r} has type {artifact.type!r}, not {type!r}.")
        return artifact

    def artifact_exists(self, name: str, type: str | None = None) -> bool:
        try:
            self.artifact(name, type=type)
        except ArtifactNotFoundError:
            return False
        return True

    def artifacts(self, type_name: str, name: str, per_page: int = 50, tags: list[str] | None = None) -> list[Artifact]:
        """Every version of the collection ``[[entity/]project/]name``, oldest first (optionally with all ``tags``).

        A plain list for now; the registry/query issue makes it a lazy, paginated result.
        """
        from wandb_dagster.sdk.names import parse_artifact_path

        path = parse_artifact_path(name, self.settings.entity, self.settings.project)
        store = self._ws.store
        collection = store.collection(path.entity, path.project, path.name)
        if collection is None:
            raise ArtifactNotFoundError(f"No artifact collection {path.entity}/{path.project}/{path.name}.")
        if collection.type != type_name:
            raise ValueError(f"Collection {path.name!r} has type {collection.type!r}, not {type_name!r}.")
        wanted = set(tags or ())
        return [
            Artifact._from_record(self._ws, record)
            for record in store.collection_versions(collection.pk)
            if wanted <= set(record.tags)
        ]

    def flush(self) -> None:
        """Nothing is cached between calls; kept for W&B compatibility."""
