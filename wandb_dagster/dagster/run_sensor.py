"""A sensor on tracking runs: run a job when a run reaches a state (``finished`` by default) with summary
metrics (or config, tags...) matching a Mongo-style filter, as W&B's "run metric" automations do.

Example::

    promote_when_good = wandb_run_sensor(
        project="bikes", filters={"summary_metrics.accuracy": {"$gte": 0.9}, "jobType": "train"},
        job=promote_job, run_config_fn=lambda run: {"ops": {"promote": {"config": {"run": run.id}}}},
    )

``filters`` has the fields and semantics of ``Api().runs(filters=...)`` (``summary_metrics.<key>``,
``config.<key>``, ``tags``, ``state``, ``jobType``, ``group``, ``displayName``...), checked when the sensor is
defined. It is evaluated on the run as it is when the tick reads it, once per state change the feed reports
(a run's summary and final state are written in one transaction, so a finished run is seen with its final
summary).

The guarantees are the version sensors' (:mod:`wandb_dagster.dagster.sensors`): each requested run has
``run_key`` = the id of the run-state event, and the cursor is the feed's, so a restart never launches a run
twice and no state change is missed; ``start`` and unreadable cursors behave the same. A run that reaches
the state twice (resumed, then finished again) is two events, so it can request two runs. The requested
run gets tags ``wandb/run`` (entity/project/id), ``wandb/run_id``, ``wandb/run_state`` and
``wandb/event_id``; ``run_config_fn`` and ``tags_fn`` receive the run (``wandb_dagster.api`` ``Run``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import dagster as dg

from wandb_dagster.dagster.sensors import _resource_of, _sensor_name, _watched_project
from wandb_dagster.store import RUN_FIELDS, validate_filter

_STATES = ("running", "finished", "failed", "crashed", "killed")


def wandb_run_sensor(
    *,
    filters: Mapping[str, Any] | None = None,
    project: str | None = None,
    state: str | Sequence[str] = "finished",
    name: str | None = None,
    job: Any = None,
    jobs: Sequence[Any] | None = None,
    asset_selection: Any = None,
    run_config_fn: Callable[[Any], Any] | None = None,
    tags_fn: Callable[[Any], Any] | None = None,
    start: Literal["now", "beginning"] = "now",
    max_per_tick: int = 20,
    minimum_interval_seconds: int = 30,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
    description: str | None = None,
    resource_key: str = "wandb",
) -> dg.SensorDefinition:
    """A sensor that requests a run for each tracking run of ``project`` (``[entity/]project``; default the
    resource's) that reaches ``state`` (one state or several: ``running``, ``finished``, ``failed``,
    ``crashed``, ``killed``) and matches ``filters`` (see the module docstring). ``name`` defaults to one
    derived from the project and the states (``wandb_run_bikes_finished``).

    >>> sensor = wandb_run_sensor(project="bikes", filters={"summary_metrics.accuracy": {"$gte": 0.9}},
    ...                           job=dg.define_asset_job("promote", selection="*"))
    >>> sensor.name
    'wandb_run_bikes_finished'
    """
    states = [state] if isinstance(state, str) else list(state)
    bad = [s for s in states if s not in _STATES]
    if not states or bad:
        raise ValueError(f"state={state!r} is invalid: give one or more of {list(_STATES)}.")
    if start not in ("now", "beginning"):
        raise ValueError(f"start={start!r} is invalid: use 'now' (only new events) or 'beginning' (replay the feed).")
    if not isinstance(max_per_tick, int) or not 1 <= max_per_tick <= 1000:
        raise ValueError(f"max_per_tick={max_per_tick!r} must be an integer from 1 to 1000.")
    if not isinstance(resource_key, str) or not resource_key.isidentifier():
        raise ValueError(f"resource_key={resource_key!r} must be a resource key such as 'wandb'.")
    if project is not None and (not isinstance(project, str) or not 1 <= len(project.split("/")) <= 2):
        raise ValueError(f"project={project!r} is invalid: use 'project' or 'entity/project'.")
    sensor_name = name or _sensor_name("wandb_run", project or "default", "_".join(states))
    try:
        checked = validate_filter(filters, RUN_FIELDS)
    except ValueError as exc:
        raise ValueError(f"filters of sensor {sensor_name!r}: {exc}") from None

    @dg.sensor(
        name=sensor_name,
        required_resource_keys={resource_key},
        job=job,
        jobs=jobs,
        asset_selection=asset_selection,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description=description
        or f"Runs when a tracking run of {project or 'the resource project'} becomes {'/'.join(states)}"
        + (f" matching {dict(filters)}" if filters else ""),
    )
    def _sensor(context: dg.SensorEvaluationContext, **_resources: Any) -> Any:
        resource = _resource_of(context, resource_key, sensor_name)
        entity, proj = _watched_project(resource, project)
        api = resource.api()
        cursor = context.cursor
        if cursor is None and start == "now":
            return dg.SensorResult(
                skip_reason=f"first tick: watching the runs of {entity}/{proj} from now on", cursor=api.event_cursor()
            )
        feed_filter = {"entity": entity, "project": proj, "payload.state": {"$in": states}}
        read: dict[str, Any] = {"types": ["RUN_STATE_CHANGE"], "filter": feed_filter, "limit": max_per_tick}
        try:
            page = api.events(after=cursor, **read)
        except ValueError as exc:
            recovered = api.event_cursor() if start == "now" else None
            context.log.error(
                f"sensor {sensor_name}: its cursor {cursor!r} is unreadable ({exc}). Recovering per start={start!r}: "
                + ("continuing from the head of the feed; events since the last good cursor are NOT replayed."
                   if start == "now" else "replaying the feed from the beginning; runs already launched are "
                   "skipped by their run_key.")
            )
            page = api.events(after=recovered, **read)
        requests = []
        for event in page:
            path = f"{event.entity}/{event.project}/{event.run_id}"
            try:
                run = api.run(path)
            except ValueError:
                context.log.info(f"sensor {sensor_name}: run {path} no longer exists (deleted); skipped")
                continue
            if not checked.matches(run._record):
                continue
            tags = {
                "wandb/run": path,
                "wandb/run_id": str(event.run_id),
                "wandb/run_state": str((event.payload or {}).get("state")),
                "wandb/event_id": str(event.id),
            }
            if tags_fn is not None:
                tags.update({str(k): str(v) for k, v in (tags_fn(run) or {}).items()})
            requests.append(
                dg.RunRequest(
                    run_key=str(event.id), run_config=run_config_fn(run) if run_config_fn else None, tags=tags
                )
            )
        skip = None if requests else f"no new matching runs ({'more to read' if page.has_more else 'at the head'})"
        return dg.SensorResult(run_requests=requests, skip_reason=skip, cursor=page.cursor)

    return _sensor
