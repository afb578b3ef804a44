"""Sweeps as Dagster work: each trial of a W&B sweep is a Dagster step, and a last step keeps the best model.

Example::

    import dagster as dg
    from wandb_dagster.dagster import WandbResource, wandb_sweep_job

    def train(run):                                  # one trial: run.config holds the suggested values
        model = fit(alpha=run.config["alpha"])
        run.log({"rmse": score(model)})
        return model                                 # the best trial's model is logged by the last step

    sweep_alpha = wandb_sweep_job(
        "sweep_alpha",
        {"method": "grid", "metric": {"name": "rmse", "goal": "minimize"},
         "parameters": {"alpha": {"values": [0.1, 1.0, 10.0]}}},
        train,
        max_concurrent=2,                            # at most two trials at once
        link_to="wandb-registry-model/bike-models",  # the best model is linked there
    )
    defs = dg.Definitions(jobs=[sweep_alpha], resources={"wandb": WandbResource(project="bikes")})

The graph (:func:`wandb_sweep_graph`; :func:`wandb_sweep_job` makes it a job) is three ops:

- ``<name>_start`` creates the sweep (``wandb.sweep``) in the resource's workspace, named after the Dagster
  run, or joins the sweep its config names (``sweep_id``: several Dagster runs, on any machines, then act as
  agents of one sweep), and fans out one dynamic output per trial slot (the grid's size, ``run_cap`` or
  ``trials``);
- ``<name>_trial``, once per slot, in parallel as far as the executor allows: it is one ``wandb.agent``
  with ``count=1``, so the trial's suggestion is claimed from the store when the step starts (grid points
  are never handed out twice, bayes sees the trials finished so far) and its run is a run of the sweep with
  ``group`` = the Dagster run id. ``train(run)`` trains; what it returns is the trial's model. A trial that
  raises is recorded as failed (as W&B's agent does) and the step still succeeds, so the sweep goes on;
- ``<name>_best`` collects the trials, picks the best by the sweep's metric, logs its model (``model_name``,
  type ``model``, stored as the IO manager stores objects, so ``load_artifact_object`` reads it) from its own
  step's run, links it to ``link_to`` with ``link_aliases``, and returns a :class:`SweepBest`.

Concurrency: each trial op carries the tag ``wandb/sweep_trial`` = ``name``. :func:`wandb_sweep_job` uses the
multiprocess executor with a tag concurrency limit of ``max_concurrent`` on it (give ``executor_def`` to use
another executor; :func:`trial_concurrency_limits` builds the same limit for your own multiprocess config). The
in-process executor runs the trials one after the other. Trials of several Dagster runs (several agents) are
limited across runs by Dagster's pools: pass ``pool=`` and set the pool's limit on the instance.

The ops pass their values (the trials' models among them) through the IO manager bound to
``wandb_sweep_io_manager`` (:data:`SWEEP_IO_MANAGER_KEY`): :func:`wandb_sweep_job` binds a
``dg.FilesystemIOManager``; bind one yourself when you put the graph in a job of your own. They are not
versioned in W&B: only the best model is.

The event feed records each trial that becomes the sweep's best (``SWEEP_BEST_RUN``);
:func:`wandb_sweep_sensor` runs a job when that happens.
"""

# No `from __future__ import annotations`: Dagster reads the ops' annotations (their Config class) at runtime.

import dataclasses
import math
import tempfile
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import dagster as dg

from wandb_dagster.dagster import serializers
from wandb_dagster.dagster.sensors import _resource_of, _sensor_name, _watched_project
from wandb_dagster.sdk import sweep_config
from wandb_dagster.storage.uri_credentials import redacted_errors
from wandb_dagster.store import EVENT_TYPES

SWEEP_IO_MANAGER_KEY = "wandb_sweep_io_manager"
TRIAL_TAG = "wandb/sweep_trial"
SWEEP_BEST_RUN = "SWEEP_BEST_RUN"  # the feed's event for a trial that beat every other run of its sweep
assert SWEEP_BEST_RUN in EVENT_TYPES  # the store's name for it (store.schema is SQL, not for this layer)


@dataclasses.dataclass(frozen=True)
class SweepTrial:
    """One trial as its step ended: its run (``entity/project/run_id``), the suggested ``params``, its final
    ``state`` and ``summary``, the sweep metric's ``value`` (None when it was not logged), and the ``model``
    ``train`` returned (None when it failed)."""

    sweep: str
    run: str
    params: dict[str, Any]
    state: str
    summary: dict[str, Any]
    value: float | None
    model: Any = None
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class SweepBest:
    """What ``<name>_best`` kept: the sweep (``entity/project/id``), the best trial's ``run`` and ``params``,
    the ``metric`` with its ``goal`` and ``value``, the model version it logged (``artifact``, a qualified
    name) and the registry version it linked (``linked``, or None without ``link_to``)."""

    sweep: str
    run: str
    params: dict[str, Any]
    metric: str
    goal: str
    value: float
    artifact: str
    linked: str | None
    trials: int


class SweepStartConfig(dg.Config):
    sweep_id: str = ""  # join this existing sweep (entity/project/id or id) instead of creating one
    trials: int = 0  # trial slots of this run; 0: the factory's `trials`, else the grid's size or run_cap


def trial_concurrency_limits(name: str, max_concurrent: int) -> list[dict[str, Any]]:
    """The multiprocess executor's ``tag_concurrency_limits`` that run at most ``max_concurrent`` trials of
    sweep graph ``name`` at once: ``dg.multiprocess_executor.configured({"tag_concurrency_limits": ...})``."""
    return [{"key": TRIAL_TAG, "value": name, "limit": max_concurrent}]


def _slots(config: Mapping[str, Any], trials: int | None) -> int | None:
    if trials is not None:
        return trials
    cap = config.get("run_cap")
    if config.get("method") == "grid":
        size = len(sweep_config.grid_points(dict(config)))
        return size if cap is None else min(size, cap)
    return cap if isinstance(cap, int) else None


def _metric_value(summary: Mapping[str, Any], name: str) -> float | None:
    value = summary.get(name)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def wandb_sweep_graph(
    name: str,
    sweep: Mapping[str, Any] | str | Path,
    train: Callable[[Any], Any],
    *,
    trials: int | None = None,
    model_name: str | None = None,
    link_to: str | None = None,
    link_aliases: Sequence[str] = (),
    pool: str | None = None,
    resource_key: str = "wandb",
    description: str | None = None,
) -> dg.GraphDefinition:
    """A graph that runs sweep ``sweep`` (W&B's configuration: a dict or a YAML file's path) with one Dagster
    step per trial, and logs the best trial's model (see the module docstring). Its output is a
    :class:`SweepBest`.

    ``train(run)`` is called in each trial with the trial's run (``run.config`` holds the suggested values) and
    returns the trial's model (any picklable object). ``trials``: trial slots per Dagster run (default: the
    grid's size, or ``run_cap``; required for random and bayes search without ``run_cap``). ``model_name``:
    the best model's artifact name (default ``<name>-model``). ``link_to``: a registry collection to link it
    to, with ``link_aliases``. ``pool``: the Dagster pool of the trial ops (limits trials across runs).

    >>> graph = wandb_sweep_graph("sweep_alpha", {"method": "grid", "metric": {"name": "rmse"},
    ...                           "parameters": {"alpha": {"values": [0.1, 1.0]}}}, train=lambda run: None)
    >>> sorted(node.name for node in graph.nodes)
    ['sweep_alpha_best', 'sweep_alpha_start', 'sweep_alpha_trial']
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name={name!r} must be a Dagster name such as 'sweep_alpha' (letters, digits, '_').")
    if not callable(train):
        raise ValueError(f"train={train!r} must be a function taking the trial's run and returning its model.")
    if trials is not None and (not isinstance(trials, int) or isinstance(trials, bool) or trials < 1):
        raise ValueError(f"trials={trials!r} must be a positive integer, or None for the grid's size / run_cap.")
    if not isinstance(resource_key, str) or not resource_key.isidentifier():
        raise ValueError(f"resource_key={resource_key!r} must be a resource key such as 'wandb'.")
    config = sweep_config.validate(sweep_config.load(sweep))  # an invalid configuration fails at load time
    metric = config.get("metric")
    if not metric:
        raise ValueError(
            f"sweep graph {name!r}: the sweep configuration has no 'metric', so no trial is better than another; "
            "add e.g. metric: {name: rmse, goal: minimize}"
        )
    default_slots = _slots(config, trials)
    if default_slots is None:
        raise ValueError(
            f"sweep graph {name!r}: {config['method']} search without run_cap has no end; pass trials=N (trial "
            "steps per Dagster run) or set run_cap in the configuration"
        )
    artifact_name = model_name or f"{name}-model"
    aliases = list(link_aliases)
    sweep_cfg = dict(config)
    io = SWEEP_IO_MANAGER_KEY

    @dg.op(
        name=f"{name}_start",
        required_resource_keys={resource_key},
        out=dg.DynamicOut(dict, io_manager_key=io),
        description=f"Creates (or joins) the sweep and fans out its trial slots: {description or name}",
    )
    def start(context: dg.OpExecutionContext, config: SweepStartConfig) -> Any:
        from wandb_dagster.sdk.sweeps import sweep as create_sweep

        resource = getattr(context.resources, resource_key)
        settings = resource._settings()
        with redacted_errors():
            api = resource.api()
            if config.sweep_id:
                found = api.sweep(config.sweep_id)
                path = "/".join(found.path)
                slots = config.trials or _slots(found.config, trials) or default_slots
                context.log.info(f"joining sweep {path} with {slots} trial steps")
            else:
                # Named after the Dagster run; the configuration's own entity/project win, as in wandb.sweep.
                named = {"name": f"{name}-{context.run_id[:8]}", **sweep_cfg}
                entity = named.get("entity") or settings.entity
                project = named.get("project") or settings.project
                sweep_id = create_sweep(named, entity=entity, project=project, settings=settings)
                found = api.sweep(f"{entity}/{project}/{sweep_id}")
                path = "/".join(found.path)
                slots = config.trials or default_slots
                context.log.info(f"created sweep {path} ({found.config['method']}), {slots} trial steps")
        for slot in range(slots):
            yield dg.DynamicOutput({"sweep": path, "slot": slot}, mapping_key=f"trial_{slot}")

    @dg.op(
        name=f"{name}_trial",
        required_resource_keys={resource_key},
        tags={TRIAL_TAG: name},
        pool=pool,
        out=dg.Out(SweepTrial, io_manager_key=io, is_required=False),
        description="Runs one trial of the sweep (one wandb.agent trial) in its own run of the sweep.",
    )
    def trial(context: dg.OpExecutionContext, slot: dict) -> Any:
        from wandb_dagster.sdk import sweeps as sdk_sweeps
        from wandb_dagster.sdk.run import init

        resource = getattr(context.resources, resource_key)
        settings = resource._settings()
        seen: dict[str, Any] = {}
        step = f"{context.op_handle}[{context.get_mapping_key()}]"

        def function() -> None:
            dagster = {"run_id": context.run_id, "job": context.job_name, "step": step}
            with init(
                settings=settings, group=context.run_id, job_type=f"{name}_trial", config={"dagster": dagster},
                reinit="create_new",
            ) as run:
                seen["run"] = run
                seen["params"] = dict(sdk_sweeps.current_trial.params) if sdk_sweeps.current_trial else {}
                try:
                    seen["model"] = train(run)
                except Exception:
                    seen["error"] = traceback.format_exc()
                    raise  # the agent records the trial as failed and returns

        with redacted_errors():
            sdk_sweeps.agent(slot["sweep"], function=function, count=1, settings=settings)
            if "run" not in seen:
                context.log.info(f"sweep {slot['sweep']} had no trial left for this step (done, paused or capped)")
                return
            run = seen["run"]
            record = resource.api().run(f"{run.entity}/{run.project}/{run.id}")
            summary = {k: v for k, v in dict(record.summary).items() if not k.startswith("_")}
            value = _metric_value(summary, metric["name"])
        params = seen["params"]
        if "error" in seen:
            context.log.error(f"trial {record.id} of sweep {slot['sweep']} failed:\n{seen['error']}")
        else:
            context.log.info(f"trial {record.id}: {params} -> {metric['name']} = {value}")
        out_meta: dict[str, Any] = {"wandb/run": f"{run.entity}/{run.project}/{run.id}", "wandb/state": record.state}
        if value is not None:
            out_meta[f"wandb/{metric['name']}"] = dg.MetadataValue.float(value)
        yield dg.Output(
            SweepTrial(
                sweep=slot["sweep"], run=f"{run.entity}/{run.project}/{run.id}", params=params, state=record.state,
                summary=summary, value=value, model=seen.get("model"), error=seen.get("error"),
            ),
            metadata=out_meta,
        )

    @dg.op(
        name=f"{name}_best",
        required_resource_keys={resource_key},
        out=dg.Out(SweepBest, io_manager_key=io),
        description=f"Logs the best trial's model as {artifact_name}"
        + (f" and links it to {link_to}" if link_to else ""),
    )
    def best(context: dg.OpExecutionContext, trials: list[SweepTrial]) -> dg.Output[SweepBest]:
        resource = getattr(context.resources, resource_key)
        goal = metric.get("goal", "minimize")
        done = [t for t in trials if t.state == "finished" and t.value is not None]
        if not done:
            raise dg.Failure(
                f"none of the {len(trials)} trials of this run finished with a numeric {metric['name']!r} in its "
                "summary; log it in train (run.log({...})) and look at the trials' errors in their steps' logs"
            )
        sign = -1.0 if goal == "maximize" else 1.0
        chosen = min(done, key=lambda t: sign * (t.value or 0.0))  # the first of equals: the earliest trial
        with redacted_errors():
            _finish_if_done(resource, chosen.sweep)
            logged, linked = _log_model(
                resource, context, chosen, artifact_name, metric["name"], goal, link_to, aliases
            )
        context.log.info(
            f"best trial {chosen.run} ({chosen.params}): {metric['name']} = {chosen.value}; logged "
            f"{logged.qualified_name}" + (f", linked as {linked.qualified_name}" if linked is not None else "")
        )
        result = SweepBest(
            sweep=chosen.sweep, run=chosen.run, params=chosen.params, metric=metric["name"], goal=goal,
            value=float(chosen.value or 0.0), artifact=logged.qualified_name,
            linked=None if linked is None else linked.qualified_name, trials=len(trials),
        )
        meta: dict[str, Any] = {
            "wandb/sweep": result.sweep, "wandb/best_run": result.run, "wandb/artifact": result.artifact,
            f"wandb/{result.metric}": dg.MetadataValue.float(result.value),
            "wandb/trials": dg.MetadataValue.int(len(trials)),
        }
        if linked is not None:
            meta["wandb/linked"] = linked.qualified_name
        app = resource._settings().app_url
        if app is not None:
            from wandb_dagster.dagster.io_manager import run_page, version_page

            entity, project, run_id = result.run.split("/")
            meta["wandb/version_url"] = dg.MetadataValue.url(version_page(app, logged))
            meta["wandb/run_url"] = dg.MetadataValue.url(run_page(app, entity, project, run_id))
            meta["wandb/sweep_url"] = dg.MetadataValue.url(
                "/".join([app, *result.sweep.split("/")[:2], "sweeps", result.sweep.split("/")[2]])
            )
        return dg.Output(result, metadata=meta)

    @dg.graph(name=name, description=description or f"W&B sweep {name}: one step per trial, then the best model")
    def sweep_graph() -> Any:
        return best(start().map(trial).collect())

    return sweep_graph


def _finish_if_done(resource: Any, path: str) -> None:
    """Mark the sweep FINISHED when every trial it will make has been claimed (the grid is done, run_cap is
    reached), as an agent that finds nothing left does. Each trial step's agent stops after its one trial,
    before the claim that would notice; this is that claim. Only then: otherwise it would start a trial."""
    from wandb_dagster.sdk.sweeps import agent

    sweep = resource.api().sweep(path)
    expected = sweep.expected_run_count
    live = [run for run in sweep.runs if run.state != "crashed"]  # a crashed trial's point is handed out again
    if sweep.state == "RUNNING" and expected is not None and len(live) >= expected:
        agent(path, function=lambda: None, count=1, settings=resource._settings())


def _log_model(
    resource: Any, context: Any, chosen: SweepTrial, artifact_name: str, metric: str, goal: str,
    link_to: str | None, aliases: list[str],
) -> tuple[Any, Any]:
    """Log the best trial's model from this step's run, stored as the IO manager stores an object (so
    ``load_artifact_object`` reads it back), and link it to ``link_to``."""
    from wandb_dagster.sdk.artifact import Artifact

    run = resource.run(context)
    serializer = serializers.get("pickle")
    entry = f"output.{serializer.extension}"
    sweep_meta = {"id": chosen.sweep, "run": chosen.run, "params": chosen.params, "metric": metric, "goal": goal,
                  "value": chosen.value}
    art = Artifact(
        artifact_name, type="model", description=f"best trial of sweep {chosen.sweep}",
        metadata={
            "sweep": sweep_meta,
            "dagster": {"asset_key": None, "partition": None, "kind": "object", "serializer": serializer.name,
                        "object_type": serializers.object_type(chosen.model), "entry": entry},
        },
        workspace=run.workspace,
    )
    with tempfile.TemporaryDirectory(prefix="wandb-dagster-sweep-") as tmp:
        target = Path(tmp) / entry
        serializer.dump(chosen.model, target, {})
        art.add_file(str(target), name=entry)
        logged = run.log_artifact(art)
        logged.wait()
    run.summary.update({metric: chosen.value, "best_trial_run": chosen.run})
    linked = resource.link(logged, link_to, aliases=aliases) if link_to else None
    return logged, linked


def wandb_sweep_job(
    name: str,
    sweep: Mapping[str, Any] | str | Path,
    train: Callable[[Any], Any],
    *,
    trials: int | None = None,
    max_concurrent: int | None = None,
    model_name: str | None = None,
    link_to: str | None = None,
    link_aliases: Sequence[str] = (),
    executor_def: dg.ExecutorDefinition | None = None,
    pool: str | None = None,
    resource_key: str = "wandb",
    tags: Mapping[str, str] | None = None,
    description: str | None = None,
) -> dg.JobDefinition:
    """:func:`wandb_sweep_graph` as a job: the multiprocess executor runs at most ``max_concurrent`` (default 4)
    trials at once (``executor_def`` replaces it, e.g. ``dg.in_process_executor``; then leave
    ``max_concurrent`` out), and ``wandb_sweep_io_manager`` is a ``dg.FilesystemIOManager``. The
    ``WandbResource`` comes from the definitions (key ``resource_key``).

    >>> job = wandb_sweep_job("sweep_alpha", {"method": "grid", "metric": {"name": "rmse"},
    ...                       "parameters": {"alpha": {"values": [0.1, 1.0]}}}, train=lambda run: None)
    >>> job.name
    'sweep_alpha'
    """
    if executor_def is not None and max_concurrent is not None:
        raise ValueError(
            f"wandb_sweep_job({name!r}): max_concurrent={max_concurrent!r} limits the job's own multiprocess "
            "executor, and executor_def replaces it; give one of the two (for a multiprocess executor of your "
            f"own: dg.multiprocess_executor.configured({{'tag_concurrency_limits': "
            f"trial_concurrency_limits({name!r}, {max_concurrent!r})}}))"
        )
    limit = 4 if max_concurrent is None else max_concurrent
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ValueError(f"max_concurrent={max_concurrent!r} must be a positive integer (default 4).")
    graph = wandb_sweep_graph(
        name, sweep, train, trials=trials, model_name=model_name, link_to=link_to, link_aliases=link_aliases,
        pool=pool, resource_key=resource_key, description=description,
    )
    executor = executor_def or dg.multiprocess_executor.configured(
        {"tag_concurrency_limits": trial_concurrency_limits(name, limit)}
    )
    # The job brings its own IO manager for the trials' values but not the WandbResource, which the
    # Definitions bind (graph.to_job would refuse a job whose resources are only partly given; Dagster's
    # Definitions complete such a job with their own resources, as they do for a job given none).
    return dg.JobDefinition(
        graph_def=graph,
        name=name,
        executor_def=executor,
        resource_defs={SWEEP_IO_MANAGER_KEY: dg.FilesystemIOManager().get_resource_definition()},
        tags=dict(tags or {}),
        description=description,
        _was_explicitly_provided_resources=False,
    )


def wandb_sweep_sensor(
    *,
    job: Any = None,
    jobs: Sequence[Any] | None = None,
    asset_selection: Any = None,
    project: str | None = None,
    sweep_id: str | None = None,
    name: str | None = None,
    run_config_fn: Callable[[Any], Any] | None = None,
    tags_fn: Callable[[Any], Any] | None = None,
    start: Literal["now", "beginning"] = "now",
    max_per_tick: int = 20,
    minimum_interval_seconds: int = 30,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
    description: str | None = None,
    resource_key: str = "wandb",
) -> dg.SensorDefinition:
    """A sensor that requests a run each time a sweep of ``project`` (``[entity/]project``; default the
    resource's) finds a better trial: the event feed's ``SWEEP_BEST_RUN``, written when a trial ends with the
    sweep metric better than every other run of the sweep. ``sweep_id`` watches one sweep only.

    The requested run has ``run_key`` = the event id (the cursor is the feed's: a restart launches nothing
    twice) and the tags ``wandb/sweep`` (entity/project/id), ``wandb/run`` (the trial's run),
    ``wandb/metric``, ``wandb/value``, ``wandb/previous_value`` and ``wandb/event_id``; ``run_config_fn`` and
    ``tags_fn`` receive the event (``payload`` holds sweep, metric, goal, value, previous_value,
    previous_run_id).

    >>> sensor = wandb_sweep_sensor(project="bikes", job=dg.define_asset_job("promote", selection="*"))
    >>> sensor.name
    'wandb_sweep_bikes_best'
    """
    if start not in ("now", "beginning"):
        raise ValueError(f"start={start!r} is invalid: use 'now' (only new events) or 'beginning' (replay the feed).")
    if not isinstance(max_per_tick, int) or not 1 <= max_per_tick <= 1000:
        raise ValueError(f"max_per_tick={max_per_tick!r} must be an integer from 1 to 1000.")
    if not isinstance(resource_key, str) or not resource_key.isidentifier():
        raise ValueError(f"resource_key={resource_key!r} must be a resource key such as 'wandb'.")
    if project is not None and (not isinstance(project, str) or not 1 <= len(project.split("/")) <= 2):
        raise ValueError(f"project={project!r} is invalid: use 'project' or 'entity/project'.")
    if sweep_id is not None and (not isinstance(sweep_id, str) or not sweep_id or "/" in sweep_id):
        raise ValueError(f"sweep_id={sweep_id!r} is invalid: give the sweep's id (what wandb.sweep returned).")
    sensor_name = name or _sensor_name("wandb_sweep", "_".join(filter(None, [project or "default", sweep_id])), "best")

    @dg.sensor(
        name=sensor_name,
        required_resource_keys={resource_key},
        job=job,
        jobs=jobs,
        asset_selection=asset_selection,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description=description
        or f"Runs when a sweep of {project or 'the resource project'} finds a better trial"
        + (f" (sweep {sweep_id})" if sweep_id else ""),
    )
    def _sensor(context: dg.SensorEvaluationContext, **_resources: Any) -> Any:
        resource = _resource_of(context, resource_key, sensor_name)
        entity, proj = _watched_project(resource, project)
        api = resource.api()
        cursor = context.cursor
        if cursor is None and start == "now":
            return dg.SensorResult(
                skip_reason=f"first tick: watching the sweeps of {entity}/{proj} from now on",
                cursor=api.event_cursor(),
            )
        feed_filter: dict[str, Any] = {"entity": entity, "project": proj}
        if sweep_id:
            feed_filter["payload.sweep"] = sweep_id
        read: dict[str, Any] = {"types": [SWEEP_BEST_RUN], "filter": feed_filter, "limit": max_per_tick}
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
            payload = event.payload or {}
            tags = {
                "wandb/sweep": f"{event.entity}/{event.project}/{payload.get('sweep')}",
                "wandb/run": f"{event.entity}/{event.project}/{event.run_id}",
                "wandb/metric": str(payload.get("metric")),
                "wandb/value": str(payload.get("value")),
                "wandb/previous_value": str(payload.get("previous_value")),
                "wandb/event_id": str(event.id),
            }
            if tags_fn is not None:
                tags.update({str(k): str(v) for k, v in (tags_fn(event) or {}).items()})
            requests.append(
                dg.RunRequest(
                    run_key=str(event.id), run_config=run_config_fn(event) if run_config_fn else None, tags=tags
                )
            )
        where = "more to read" if page.has_more else "at the head"
        skip = None if requests else f"no sweep found a better trial ({where})"
        return dg.SensorResult(run_requests=requests, skip_reason=skip, cursor=page.cursor)

    return _sensor
