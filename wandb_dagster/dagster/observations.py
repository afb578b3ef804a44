"""Observable source assets: a collection's version under an alias (``latest`` by default), seen by Dagster.

Example::

    import dagster as dg
    from wandb_dagster.dagster import wandb_observable_source_asset

    production_model = wandb_observable_source_asset(
        "production_model", collection="wandb-registry-model/bike-models", alias="production"
    )

    @dg.asset
    def scores(production_model: dict) -> dict:   # loads the version the last observation saw
        ...

Each observation reports the version's artifact digest as the ``DataVersion``: the same value the IO manager
reports for the materializations it writes, so a link into a registry and the version it links observe as
the same data, and an asset downstream goes stale exactly when the alias moves to different content. The
observation's metadata names the version (``wandb/artifact``, ``wandb/version``, ``wandb/artifact_id``,
``wandb/digest``, ``wandb/collection``); the IO manager loads an input from that version when the source
asset was observed and never materialized.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from wandb_dagster.dagster.names import collection_name
from wandb_dagster.dagster.resources import WandbResource
from wandb_dagster.sdk.artifact import ArtifactNotFoundError
from wandb_dagster.sdk.names import parse_artifact_path, validate_alias


def _resource(context: Any, resource_key: str, what: str) -> WandbResource:
    resource = getattr(context.resources, resource_key, None)
    if not isinstance(resource, WandbResource):
        raise TypeError(
            f"{what}: the resource under the key {resource_key!r} is {type(resource).__name__}, not a "
            f"WandbResource; bind one there (resources={{{resource_key!r}: WandbResource(...)}}) or pass "
            "resource_key= the key yours is bound to."
        )
    return resource


def version_metadata(art: Any) -> dict[str, Any]:
    """What an observation (or a check) records about the version ``art``: enough for the IO manager to
    load exactly that version later."""
    return {
        "wandb/artifact": art.qualified_name,
        "wandb/collection": f"{art.entity}/{art.project}/{art.collection_name}",
        "wandb/version": art.version,
        "wandb/artifact_id": art.id,
        "wandb/digest": art.digest,
        "wandb/aliases": dg.MetadataValue.json(sorted(art.aliases)),
    }


def wandb_observable_source_asset(
    key: Any,
    *,
    collection: str | None = None,
    alias: str = "latest",
    resource_key: str = "wandb",
    description: str | None = None,
    group_name: str | None = None,
    io_manager_key: str | None = None,
) -> dg.SourceAsset:
    """A source asset whose observation is the version of ``collection`` that ``alias`` names now.

    ``key``: the asset key (an ``AssetKey``, a string or a list of strings). ``collection``:
    ``[entity/]project/name``, e.g. ``wandb-registry-model/bike-models``; default: the collection the IO
    manager writes for ``key`` (:func:`~wandb_dagster.dagster.collection_name`) in the resource's project.
    ``alias``: ``latest`` (the newest version) or any alias such as ``production``. The
    ``DataVersion`` is the version's digest. While the alias names no version the observation reports no
    data version and logs a warning naming the collection.

    >>> production = wandb_observable_source_asset(
    ...     "production_model", collection="wandb-registry-model/bike-models", alias="production")
    >>> production.key.to_user_string()
    'production_model'
    """
    asset_key = dg.AssetKey.from_coercible(key)
    validate_alias(alias)
    if collection is not None and ":" in collection:
        raise ValueError(
            f"collection {collection!r} must name a collection, not a version; pass the alias as alias=, "
            f"e.g. alias={collection.partition(':')[2]!r}."
        )
    if not isinstance(resource_key, str) or not resource_key.isidentifier():
        raise ValueError(f"resource_key={resource_key!r} must be a resource key such as 'wandb'.")
    what = f"observable source asset {asset_key.to_user_string()!r}"

    @dg.observable_source_asset(
        key=asset_key,
        required_resource_keys={resource_key},
        description=description or f"The version of {collection or collection_name(asset_key)} under {alias!r}",
        group_name=group_name,
        io_manager_key=io_manager_key,
    )
    def _observe(context: dg.OpExecutionContext) -> dg.ObserveResult:
        resource = _resource(context, resource_key, what)
        settings = resource._settings()
        path = parse_artifact_path(collection or collection_name(asset_key), settings.entity, settings.project)
        name = f"{path.entity}/{path.project}/{path.name}:{alias}"
        try:
            art = resource.artifact(name)
        except ArtifactNotFoundError as exc:
            context.log.warning(f"{what}: {name} names no version yet ({exc}); nothing observed.")
            return dg.ObserveResult(metadata={"wandb/artifact": name, "wandb/missing": True})
        return dg.ObserveResult(data_version=dg.DataVersion(art.digest), metadata=version_metadata(art))

    return _observe
