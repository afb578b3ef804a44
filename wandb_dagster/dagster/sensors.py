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

The sensors use the ``WandbResource`` bound to the resource key ``wandb``.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Literal, Mapping, Optional, Sequence

import dagster as dg

from wandb_dagster.dagster.resources import WandbResource
from wandb_dagster.sdk.artifact import ArtifactNotFoundError
from wandb_dagster.sdk.names import is_registry_project, parse_artifact_path

EventFn = Callable[[Any], Any]
_VERSION_FIELDS = ("tag", "alias", "version", "description", "metadata.<key>")


# ---------------------------------------------------------------------------------------- version filters


def _get_path(doc: Mapping[str, Any], dotted: str) -> tuple[bool, Any]:
    value: Any = doc
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return False, None
        value = value[part]
    return True, value


def _compare(op: str, have: Any, want: Any) -> bool:
    if isinstance(have, bool) or isinstance(want, bool):
        return op in ("$eq",) and have is want
    numbers = isinstance(have, (int, float)) and isinstance(want, (int, float))
    strings = isinstance(have, str) and isinstance(want, str)
    if not (numbers or strings):
        return False
    return {"$gt": have > want, "$gte": have >= want, "$lt": have < want, "$lte": have <= want}[op]


def _equal(have: Any, want: Any) -> bool:
    # Typed as the query API's filters: 5 never equals "5", True never equals 1.
    return type(have) is type(want) and have == want or (
        isinstance(have, (int, float)) and isinstance(want, (int, float))
        and not isinstance(have, bool) and not isinstance(want, bool) and have == want
    )


def _match_value(values: list[Any], present: bool, cond: Any, field: str) -> bool:
    """``values``: the field's values (one for scalars, many for set fields: any may match)."""
    if not isinstance(cond, Mapping) or not any(str(k).startswith("$") for k in cond):
        if cond is None:
            return not present or any(v is None for v in values)
        return any(_equal(v, cond) for v in values)
    for op, arg in cond.items():
        if op == "$eq":
            ok = _match_value(values, present, arg, field)
        elif op == "$ne":
            ok = not _match_value(values, present, arg, field)
        elif op in ("$gt", "$gte", "$lt", "$lte"):
            ok = any(_compare(op, v, arg) for v in values)
        elif op == "$in":
            ok = any(_match_value(values, present, a, field) for a in arg)
        elif op == "$nin":
            ok = not any(_match_value(values, present, a, field) for a in arg)
        elif op == "$exists":
            ok = (present and bool(values)) == bool(arg)
        elif op == "$regex":
            ok = any(isinstance(v, str) and re.search(arg, v) for v in values)
        elif op == "$not":
            ok = not _match_value(values, present, arg, field)
        elif op == "$contains":
            ok = any(
                (isinstance(v, str) and isinstance(arg, str) and arg in v)
                or (isinstance(v, list) and any(_equal(x, arg) for x in v))
                for v in values
            )
        else:
            raise ValueError(
                f"version_filter: operator {op!r} on {field!r} is not supported; use $eq $ne $gt $gte $lt $lte "
                "$in $nin $exists $regex $not $contains"
            )
        if not ok:
            return False
    return True


def version_matches(version: Mapping[str, Any], filter: Optional[Mapping[str, Any]]) -> bool:
    """Whether ``version`` ({"tags", "aliases", "version", "description", "metadata"}) matches a Mongo-style
    ``filter`` on the query API's version fields (``tag``, ``alias``, ``version``, ``description``,
    ``metadata.<dotted>``), with ``$and``/``$or``/``$nor``.

    >>> version_matches({"tags": ["bikes"], "aliases": [], "version": "v2", "metadata": {"rows": 500}},
    ...                 {"tag": "bikes", "metadata.rows": {"$gte": 100}})
    True
    """
    for key, cond in (filter or {}).items():
        if key in ("$and", "$or", "$nor"):
            results = [version_matches(version, sub) for sub in cond]
            ok = all(results) if key == "$and" else (any(results) if key == "$or" else not any(results))
        elif key == "tag":
            ok = _match_value(list(version.get("tags") or []), True, cond, key)
        elif key == "alias":
            ok = _match_value(list(version.get("aliases") or []), True, cond, key)
        elif key in ("version", "description"):
            ok = _match_value([version.get(key)], version.get(key) is not None, cond, key)
        elif key.startswith("metadata."):
            present, value = _get_path(version.get("metadata") or {}, key[len("metadata."):])
            ok = _match_value([value] if present else [], present, cond, key)
        else:
            raise ValueError(f"version_filter: unknown field {key!r}; valid fields: {list(_VERSION_FIELDS)}")
        if not ok:
            return False
    return True


# ---------------------------------------------------------------------------------------- sensors


def _target(collection: str, resource: Any) -> tuple[str, str, str]:
    settings = resource._settings()
    path = parse_artifact_path(collection, settings.entity, settings.project)
    if path.selector not in ("latest",) and ":" in collection:
        raise ValueError(f"collection {collection!r} must name a collection, not a version; drop ':{path.selector}'.")
    return path.entity, path.project, path.name


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


def _make_sensor(
    *,
    name: str,
    collection: str,
    types: Callable[[str], list[str]],
    alias: Optional[str],
    job: Any,
    jobs: Optional[Sequence[Any]],
    asset_selection: Any,
    version_filter: Optional[Mapping[str, Any]],
    run_config_fn: Optional[EventFn],
    tags_fn: Optional[EventFn],
    dynamic_partitions_def: Optional[dg.DynamicPartitionsDefinition],
    partition_key_fn: Optional[EventFn],
    start: str,
    max_per_tick: int,
    minimum_interval_seconds: int,
    default_status: dg.DefaultSensorStatus,
    description: Optional[str],
) -> dg.SensorDefinition:
    if start not in ("now", "beginning"):
        raise ValueError(f"start={start!r} is invalid: use 'now' (only new events) or 'beginning' (replay the feed).")
    if not isinstance(max_per_tick, int) or not 1 <= max_per_tick <= 1000:
        raise ValueError(f"max_per_tick={max_per_tick!r} must be an integer from 1 to 1000.")
    if version_filter is not None:
        _check_filter(version_filter)

    @dg.sensor(
        name=name,
        job=job,
        jobs=jobs,
        asset_selection=asset_selection,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description=description or f"Runs when {collection} " + (f"moves alias {alias!r}" if alias else "gets a new version"),
    )
    def _sensor(context: dg.SensorEvaluationContext, wandb: WandbResource) -> Any:
        resource = wandb
        entity, project, coll = _target(collection, resource)
        api = resource.api()
        cursor = context.cursor
        if cursor is None and start == "now":
            head = api.event_cursor()
            return dg.SensorResult(skip_reason=f"first tick: watching {entity}/{project}/{coll} from now on", cursor=head)
        feed_filter: dict[str, Any] = {"entity": entity, "project": project, "collection": coll}
        if alias is not None:
            feed_filter["alias"] = alias
        try:
            page = api.events(after=cursor, types=types(project), filter=feed_filter, limit=max_per_tick)
        except ValueError as exc:
            recovered = api.event_cursor() if start == "now" else None
            context.log.error(
                f"sensor {name}: its cursor {cursor!r} is unreadable ({exc}). Recovering per start={start!r}: "
                + ("continuing from the head of the feed; events since the last good cursor are NOT replayed."
                   if start == "now" else "replaying the feed from the beginning; runs already launched are "
                   "skipped by their run_key.")
            )
            page = api.events(after=recovered, types=types(project), filter=feed_filter, limit=max_per_tick)
        requests = []
        new_partitions: list[str] = []
        for event in page:
            if version_filter is not None:
                try:
                    art = api.artifact(event.artifact_name)
                except ArtifactNotFoundError:
                    context.log.info(f"sensor {name}: {event.artifact_name} no longer exists (deleted); skipped")
                    continue
                doc = {
                    "tags": art.tags,
                    "aliases": art.aliases,
                    "version": art.version,
                    "description": art.description,
                    "metadata": art.metadata,
                }
                if not version_matches(doc, version_filter):
                    continue
            tags = _event_tags(event)
            if tags_fn is not None:
                tags.update({str(k): str(v) for k, v in (tags_fn(event) or {}).items()})
            partition_key = None
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
        dynamic = [dynamic_partitions_def.build_add_request(new_partitions)] if new_partitions else None
        skip = None if requests else f"no new matching events ({'more to read' if page.has_more else 'at the head'})"
        return dg.SensorResult(
            run_requests=requests, skip_reason=skip, cursor=page.cursor, dynamic_partitions_requests=dynamic
        )

    return _sensor


def _check_filter(filter: Mapping[str, Any]) -> None:
    # Evaluate once against an empty version so a misspelled field fails at definition time, not per tick.
    version_matches({"tags": [], "aliases": [], "metadata": {}}, filter)


def wandb_artifact_sensor(
    *,
    name: str,
    collection: str,
    job: Any = None,
    jobs: Optional[Sequence[Any]] = None,
    asset_selection: Any = None,
    version_filter: Optional[Mapping[str, Any]] = None,
    run_config_fn: Optional[EventFn] = None,
    tags_fn: Optional[EventFn] = None,
    dynamic_partitions_def: Optional[dg.DynamicPartitionsDefinition] = None,
    partition_key_fn: Optional[EventFn] = None,
    start: Literal["now", "beginning"] = "now",
    max_per_tick: int = 20,
    minimum_interval_seconds: int = 30,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
    description: Optional[str] = None,
) -> dg.SensorDefinition:
    """A sensor that requests a run for each new version of ``collection``.

    ``collection``: ``[entity/]project/name``; in a registry (``wandb-registry-model/bike-models``) a new
    version is a new link, elsewhere a newly created version (re-logging identical content is not one).
    ``version_filter``: Mongo-style on ``tag``, ``alias``, ``version``, ``description``, ``metadata.*``.
    ``dynamic_partitions_def``: add one partition per new version (key: ``partition_key_fn(event)``, default
    the version, e.g. ``"v3"``) and target the run at it. At most ``max_per_tick`` events are read per tick.
    """

    def types(project: str) -> list[str]:
        return ["LINK_ARTIFACT"] if is_registry_project(project) else ["CREATE_ARTIFACT"]

    return _make_sensor(
        name=name, collection=collection, types=types, alias=None, job=job, jobs=jobs,
        asset_selection=asset_selection, version_filter=version_filter, run_config_fn=run_config_fn,
        tags_fn=tags_fn, dynamic_partitions_def=dynamic_partitions_def, partition_key_fn=partition_key_fn,
        start=start, max_per_tick=max_per_tick, minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status, description=description,
    )


def wandb_alias_sensor(
    *,
    name: str,
    collection: str,
    alias: str = "production",
    job: Any = None,
    jobs: Optional[Sequence[Any]] = None,
    asset_selection: Any = None,
    version_filter: Optional[Mapping[str, Any]] = None,
    run_config_fn: Optional[EventFn] = None,
    tags_fn: Optional[EventFn] = None,
    dynamic_partitions_def: Optional[dg.DynamicPartitionsDefinition] = None,
    partition_key_fn: Optional[EventFn] = None,
    start: Literal["now", "beginning"] = "now",
    max_per_tick: int = 20,
    minimum_interval_seconds: int = 30,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
    description: Optional[str] = None,
) -> dg.SensorDefinition:
    """A sensor that requests a run each time ``alias`` moves to a version of ``collection`` (promotion).

    The run gets the version in its tags (``wandb/artifact`` = ``entity/project/collection:vN``,
    ``wandb/previous_version``) and, with ``run_config_fn(event)``, in its run config.
    """
    from wandb_dagster.sdk.names import validate_alias

    validate_alias(alias)

    def types(project: str) -> list[str]:
        return ["ADD_ARTIFACT_ALIAS"]

    return _make_sensor(
        name=name, collection=collection, types=types, alias=alias, job=job, jobs=jobs,
        asset_selection=asset_selection, version_filter=version_filter, run_config_fn=run_config_fn,
        tags_fn=tags_fn, dynamic_partitions_def=dynamic_partitions_def, partition_key_fn=partition_key_fn,
        start=start, max_per_tick=max_per_tick, minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status, description=description,
    )
