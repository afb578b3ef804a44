"""Sensors on the workspace's event feed: run a job when a collection gets a new version, or when an alias
(e.g. ``production``) moves.

Example::

    retrain = wandb_artifact_sensor(
        name="retrain_on_new_features", collection="bikes/features", job=training_job,
        version_filter={"metadata.rows": {"$gte": 100}},
    )
    deploy = wandb_alias_sensor(
        name="deploy_production", collection="wandb-registry-model/bike-models", alias="production",
        job=deploy_job, run_config_fn=lambda e: {"ops": {"deploy": {"config": {"model": e.artifact_name}}}},
    )

Each requested run has ``run_key`` = the event id and the sensor's cursor is the feed cursor, so a restart
(or evaluating twice with the same cursor) never launches a run twice, and no event is missed. The run
receives the version through tags (``wandb/artifact``, ``wandb/artifact_id``, ``wandb/version``,
``wandb/event_id``; ``wandb/alias`` and ``wandb/previous_version`` for alias moves) and, with
``run_config_fn``, through run config.

First start and unreadable cursors: ``start="now"`` (default) begins at the head of the feed (only what
happens from then on); ``start="beginning"`` replays the whole feed. A cursor the feed cannot read (corrupted,
or from another workspace) is logged as an error and replaced according to the same policy; with
``"beginning"`` no event is lost, and runs already launched are not launched again (Dagster skips a
``run_key`` it has seen for the sensor).

``name`` is optional: by default it is derived from the collection (and the alias), e.g.
``wandb_alias_sensor(collection="wandb-registry-model/bike-models", alias="production", ...)`` is named
``wandb_alias_wandb_registry_model_bike_models_production``. Give a name when two sensors watch the same
collection (Dagster refuses two sensors with one name).

The sensors use the ``WandbResource`` bound to the resource key ``resource_key`` (default ``"wandb"``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import dagster as dg

from wandb_dagster.dagster.resources import WandbResource
from wandb_dagster.sdk.artifact import ArtifactNotFoundError
from wandb_dagster.sdk.names import is_registry_project, parse_artifact_path
from wandb_dagster.storage.uri_credentials import redact, redacted_errors
from wandb_dagster.store import VERSION_FIELDS, CheckedFilter, validate_filter

EventFn = Callable[[Any], Any]


# ---------------------------------------------------------------------------------------- version filters
# The query API's filter engine (wandb_dagster.store.filters) evaluates them in Python, over the fields the
# API's version queries have (VERSION_FIELDS): a sensor and Api().registries().versions(filter) agree.


def _version_record(version: Mapping[str, Any]) -> dict[str, Any]:
    """The record VERSION_FIELDS evaluates (VersionRecord's names) from the dict ``version_matches`` takes."""
    record = {"tags": [], "aliases": [], "description": None, "metadata": {}, **version}
    name = record.pop("version", None)
    if "index" not in record:
        # Without a version the dict matches no condition on it (as before the engine: {"version": ...}
        # compared with a missing value), and conditions on other fields still work.
        if name is not None and (not isinstance(name, str) or not re.fullmatch(r"v\d+", name)):
            raise ValueError(f"version_matches: 'version' must be a version name such as 'v3', got {name!r}")
        record["index"] = None if name is None else int(name[1:])
    return record


def _artifact_record(art: Any) -> dict[str, Any]:
    """A fetched artifact version as the record VERSION_FIELDS evaluates."""
    return {
        "tags": art.tags,
        "aliases": art.aliases,
        "index": int(art.version[1:]),
        "description": art.description,
        "metadata": art.metadata,
        "created_at": art.created_datetime,
        "updated_at": art.updated_datetime,
    }


def _check_filter(filter: Mapping[str, Any], sensor: str) -> CheckedFilter:
    # Checked once, when the sensor is defined: a misspelled field fails at definition time, not per tick.
    try:
        return validate_filter(filter, VERSION_FIELDS)
    except ValueError as exc:
        raise ValueError(f"version_filter of sensor {sensor!r}: {exc}") from None


def version_matches(version: Mapping[str, Any], filter: Mapping[str, Any] | None) -> bool:
    """Whether ``version`` ({"tags", "aliases", "version", "description", "metadata", and optionally
    "created_at", "updated_at"}) matches a Mongo-style ``filter`` on the query API's version fields
    (``tag``, ``alias``, ``version``, ``description``, ``created_at``, ``updated_at``, ``metadata.<dotted>``),
    with the API's semantics (``{"version": {"$gt": "v9"}}`` compares indices, so v10 matches).

    >>> version_matches({"tags": ["bikes"], "aliases": [], "version": "v2", "metadata": {"rows": 500}},
    ...                 {"tag": "bikes", "metadata.rows": {"$gte": 100}})
    True
    """
    return validate_filter(filter, VERSION_FIELDS).matches(_version_record(version))


# ---------------------------------------------------------------------------------------- sensors


def _target(collection: str, resource: Any) -> tuple[str, str, str]:
    settings = resource._settings()
    path = parse_artifact_path(collection, settings.entity, settings.project)
    if path.selector not in ("latest",) and ":" in collection:
        raise ValueError(f"collection {collection!r} must name a collection, not a version; drop ':{path.selector}'.")
    # A registry collection belongs to an organization, not to the resource's entity.
    entity, project, name = resource.api().collection_path(collection)
    return entity, project, name


def _event_tags(event: Any) -> dict[str, str]:
    tags = {
        "wandb/artifact": event.artifact_name or "",
        "wandb/artifact_id": event.artifact_id or "",
        "wandb/version": event.version or "",
        "wandb/event_id": str(event.id),
        "wandb/event": event.type,
    }
    if event.alias:
        tags["wandb/alias"] = event.alias
        previous = (event.payload or {}).get("previous_version")
        if previous:
            tags["wandb/previous_version"] = str(previous)
    return tags


def _closest(name: str, names: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.4)
    if close:
        return "closest: " + ", ".join(close)
    if not names:
        return "none exist"
    return "existing: " + ", ".join(sorted(names)[:10]) + (" ..." if len(names) > 10 else "")


def _missing_target(api: Any, entity: str, project: str, coll: str, sensor: str) -> str | None:
    """None when the watched collection exists. Else a skip reason naming the closest collections (it may
    still be created: the first version creates it). A registry that does not exist is an error: registries
    are created on purpose, so a missing one is a typo that would otherwise tick "no new events" forever."""
    from wandb_dagster.sdk.workspace import Workspace

    store = Workspace.for_settings(api.settings).store
    if store.collection(entity, project, coll) is not None:
        return None
    if is_registry_project(project):
        # Listing the registries also creates the core ones (model, dataset) on first use, as the API does.
        registries = [r.full_name for r in api.registries(organization=entity)]
        if project not in registries:
            raise ValueError(
                f"sensor {sensor!r}: registry {entity}/{project} does not exist ({_closest(project, registries)}); "
                "fix the sensor's collection or create the registry."
            )
    elif store.get_project(entity, project) is None:
        projects = [p.name for p in api.projects(entity)]
        return (
            f"project {entity}/{project} does not exist yet ({_closest(project, projects)}); watching "
            f"{coll!r} there: the first version logged creates it"
        )
    names = sorted({c.name for t in api.artifact_types(f"{entity}/{project}")
                    for c in api.artifact_collections(f"{entity}/{project}", t.name)})
    return (
        f"collection {entity}/{project}/{coll} does not exist yet ({_closest(coll, names)}); check the sensor's "
        "collection if it should"
    )


def _sensor_name(kind: str, collection: str, alias: str | None) -> str:
    """A Dagster-valid default sensor name (``^[A-Za-z0-9_]+$``) naming what the sensor watches."""
    parts = [kind, collection] + ([alias] if alias else [])
    return re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_]", "_", "_".join(parts))).strip("_")


def _resource_of(context: Any, resource_key: str, sensor: str) -> WandbResource:
    resource = getattr(context.resources, resource_key, None)
    if not isinstance(resource, WandbResource):
        raise TypeError(
            f"sensor {sensor!r}: the resource under the key {resource_key!r} is "
            f"{type(resource).__name__}, not a WandbResource; bind one there (Definitions(resources="
            f"{{{resource_key!r}: WandbResource(...)}})) or pass resource_key= the key yours is bound to."
        )
    return resource


def _watched_project(resource: WandbResource, project: str | None) -> tuple[str, str]:
    """(entity, project) a run or sweep sensor watches: ``project`` as "project" or "entity/project" (checked
    when the sensor was defined), else the resource's project, in the resource's entity."""
    settings = resource._settings()
    parts = project.split("/") if project else [settings.project]
    return (parts[0], parts[1]) if len(parts) == 2 else (settings.entity, parts[0])


def _make_sensor(
    *,
    name: str,
    resource_key: str,
    collection: str,
    types: Callable[[str], list[str]],
    alias: str | None,
    job: Any,
    jobs: Sequence[Any] | None,
    asset_selection: Any,
    version_filter: Mapping[str, Any] | None,
    run_config_fn: EventFn | None,
    tags_fn: EventFn | None,
    dynamic_partitions_def: dg.DynamicPartitionsDefinition | None,
    partition_key_fn: EventFn | None,
    start: str,
    max_per_tick: int,
    minimum_interval_seconds: int,
    default_status: dg.DefaultSensorStatus,
    description: str | None,
) -> dg.SensorDefinition:
    if start not in ("now", "beginning"):
        raise ValueError(f"start={start!r} is invalid: use 'now' (only new events) or 'beginning' (replay the feed).")
    if not isinstance(max_per_tick, int) or not 1 <= max_per_tick <= 1000:
        raise ValueError(f"max_per_tick={max_per_tick!r} must be an integer from 1 to 1000.")
    if not isinstance(resource_key, str) or not resource_key.isidentifier():
        raise ValueError(f"resource_key={resource_key!r} must be a resource key such as 'wandb'.")
    checked = None if version_filter is None else _check_filter(version_filter, name)

    @dg.sensor(
        name=name,
        required_resource_keys={resource_key},
        job=job,
        jobs=jobs,
        asset_selection=asset_selection,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description=description
        or f"Runs when {collection} " + (f"moves alias {alias!r}" if alias else "gets a new version"),
    )
    def _sensor(context: dg.SensorEvaluationContext, **_resources: Any) -> Any:
        # A tick's error is stored by Dagster and shown in the UI: it must not carry the database password.
        with redacted_errors():
            return _tick(context)

    def _tick(context: dg.SensorEvaluationContext) -> Any:
        # Dagster passes required resources as keyword arguments when a sensor is called directly, not when
        # the daemon evaluates it; context.resources has them in both cases.
        resource = _resource_of(context, resource_key, name)
        entity, project, coll = _target(collection, resource)
        resource.check_workspace()  # an unreachable workspace: a message naming database_url, not a traceback
        api = resource.api()
        cursor = context.cursor
        if cursor is None and start == "now":
            head = api.event_cursor()
            first = f"first tick: watching {entity}/{project}/{coll} from now on"
            missing = _missing_target(api, entity, project, coll, name)
            return dg.SensorResult(skip_reason=redact(f"{first}; {missing}" if missing else first), cursor=head)
        feed_filter: dict[str, Any] = {"entity": entity, "project": project, "collection": coll}
        if alias is not None:
            feed_filter["alias"] = alias
        try:
            page = api.events(after=cursor, types=types(project), filter=feed_filter, limit=max_per_tick)
        except ValueError as exc:
            recovered = api.event_cursor() if start == "now" else None
            context.log.error(redact(
                f"sensor {name}: its cursor {cursor!r} is unreadable ({exc}). Recovering per start={start!r}: "
                + ("continuing from the head of the feed; events since the last good cursor are NOT replayed."
                   if start == "now" else "replaying the feed from the beginning; runs already launched are "
                   "skipped by their run_key.")
            ))
            page = api.events(after=recovered, types=types(project), filter=feed_filter, limit=max_per_tick)
        requests = []
        new_partitions: list[str] = []
        for event in page:
            if checked is not None:
                try:
                    art = api.artifact(event.artifact_name)
                except ArtifactNotFoundError:
                    gone = f"sensor {name}: {event.artifact_name} no longer exists (deleted); skipped"
                    context.log.info(redact(gone))
                    continue
                if not checked.matches(_artifact_record(art)):
                    continue
            tags = _event_tags(event)
            if tags_fn is not None:
                tags.update({str(k): str(v) for k, v in (tags_fn(event) or {}).items()})
            tags = {k: redact(v) for k, v in tags.items()}
            partition_key: str | None = None
            if dynamic_partitions_def is not None:
                partition_key = str(partition_key_fn(event) if partition_key_fn else event.version)
                if partition_key not in new_partitions:
                    new_partitions.append(partition_key)
            requests.append(
                dg.RunRequest(
                    run_key=str(event.id),
                    run_config=run_config_fn(event) if run_config_fn else None,
                    tags=tags,
                    partition_key=partition_key,
                )
            )
        dynamic = (
            [dynamic_partitions_def.build_add_request(new_partitions)]
            if new_partitions and dynamic_partitions_def is not None
            else None
        )
        skip = None if requests else f"no new matching events ({'more to read' if page.has_more else 'at the head'})"
        if not requests and not page.has_more:
            missing = _missing_target(api, entity, project, coll, name)
            skip = f"{skip}; {missing}" if missing else skip
        return dg.SensorResult(
            run_requests=requests, skip_reason=skip, cursor=page.cursor, dynamic_partitions_requests=dynamic
        )

    return _sensor


def wandb_artifact_sensor(
    *,
    collection: str,
    name: str | None = None,
    job: Any = None,
    jobs: Sequence[Any] | None = None,
    asset_selection: Any = None,
    version_filter: Mapping[str, Any] | None = None,
    run_config_fn: EventFn | None = None,
    tags_fn: EventFn | None = None,
    dynamic_partitions_def: dg.DynamicPartitionsDefinition | None = None,
    partition_key_fn: EventFn | None = None,
    start: Literal["now", "beginning"] = "now",
    max_per_tick: int = 20,
    minimum_interval_seconds: int = 30,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
    description: str | None = None,
    resource_key: str = "wandb",
) -> dg.SensorDefinition:
    """A sensor that requests a run for each new version of ``collection``.

    ``collection``: ``[entity/]project/name``; in a registry (``wandb-registry-model/bike-models``) a new
    version is a new link, elsewhere a newly created version (re-logging identical content is not one).
    ``version_filter``: Mongo-style, as the query API's version filters (``tag``, ``alias``, ``version``,
    ``description``, ``created_at``, ``updated_at``, ``metadata.*``); checked when the sensor is defined.
    ``dynamic_partitions_def``: add one partition per new version (key: ``partition_key_fn(event)``, default
    the version, e.g. ``"v3"``) and target the run at it. At most ``max_per_tick`` events are read per tick.
    ``name`` defaults to one derived from the collection (``wandb_artifact_bikes_features``);
    ``resource_key`` is the key the ``WandbResource`` is bound to.
    """

    def types(project: str) -> list[str]:
        return ["LINK_ARTIFACT"] if is_registry_project(project) else ["CREATE_ARTIFACT"]

    return _make_sensor(
        name=name or _sensor_name("wandb_artifact", collection, None), resource_key=resource_key,
        collection=collection, types=types, alias=None, job=job, jobs=jobs,
        asset_selection=asset_selection, version_filter=version_filter, run_config_fn=run_config_fn,
        tags_fn=tags_fn, dynamic_partitions_def=dynamic_partitions_def, partition_key_fn=partition_key_fn,
        start=start, max_per_tick=max_per_tick, minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status, description=description,
    )


def wandb_alias_sensor(
    *,
    collection: str,
    name: str | None = None,
    alias: str = "production",
    job: Any = None,
    jobs: Sequence[Any] | None = None,
    asset_selection: Any = None,
    version_filter: Mapping[str, Any] | None = None,
    run_config_fn: EventFn | None = None,
    tags_fn: EventFn | None = None,
    dynamic_partitions_def: dg.DynamicPartitionsDefinition | None = None,
    partition_key_fn: EventFn | None = None,
    start: Literal["now", "beginning"] = "now",
    max_per_tick: int = 20,
    minimum_interval_seconds: int = 30,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
    description: str | None = None,
    resource_key: str = "wandb",
) -> dg.SensorDefinition:
    """A sensor that requests a run each time ``alias`` moves to a version of ``collection`` (promotion).

    The run gets the version in its tags (``wandb/artifact`` = ``entity/project/collection:vN``,
    ``wandb/previous_version``) and, with ``run_config_fn(event)``, in its run config. ``name`` defaults to
    one derived from the collection and the alias; ``resource_key`` is the key the ``WandbResource`` is bound to.

    >>> deploy = wandb_alias_sensor(collection="wandb-registry-model/bike-models", job=deploy_job)  # doctest: +SKIP
    >>> deploy.name                                                                                # doctest: +SKIP
    'wandb_alias_wandb_registry_model_bike_models_production'
    """
    from wandb_dagster.sdk.names import validate_alias

    validate_alias(alias)

    def types(project: str) -> list[str]:
        return ["ADD_ARTIFACT_ALIAS"]

    return _make_sensor(
        name=name or _sensor_name("wandb_alias", collection, alias), resource_key=resource_key,
        collection=collection, types=types, alias=alias, job=job, jobs=jobs,
        asset_selection=asset_selection, version_filter=version_filter, run_config_fn=run_config_fn,
        tags_fn=tags_fn, dynamic_partitions_def=dynamic_partitions_def, partition_key_fn=partition_key_fn,
        start=start, max_per_tick=max_per_tick, minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status, description=description,
    )
