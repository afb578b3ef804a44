"""W&B Launch on Dagster: Dagster jobs published as W&B jobs, and the launch agent, a sensor.

``publish_jobs(defs, wandb=...)`` logs each job of a ``Definitions`` as a W&B job (``job-<name>``, an
artifact of type ``job`` naming the code location, the Dagster job, its ops' config schema and the git
commit); unchanged definitions publish no new version. ``wandb_launch_agent(queue=..., jobs=[...],
max_concurrent=...)`` is the agent: each tick it

1. follows the queue's active items: an item whose Dagster run (tag ``wandb/queue_item``) exists takes its
   state (running, finished, failed, cancelled) and records the run and its W&B tracking run;
2. leases the next pending items in one store transaction (``max_concurrent`` counts the queue's leased
   and running items across every agent; priority order under ``prioritization_mode="V0"``);
3. requests one Dagster run per leased item with ``run_key`` = the item's id and the item's resolved run
   config, after checking the job is one of the agent's and the config fits it (otherwise the item
   fails with the reason, and the queue goes on).

A restart of the daemon, or two agents on one queue, never launch an item twice: Dagster skips a run_key
the sensor already launched, and an item is leased by one agent at a time. A lease whose run never
appeared (the daemon died between the tick and the launch) expires after ``lease_seconds`` and the item
is leased again (its run_key unchanged), up to ``max_attempts`` times.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dagster as dg

from wandb_dagster.dagster.resources import WandbResource
from wandb_dagster.dagster.sensors import _resource_of, _sensor_name
from wandb_dagster.launch import jobs as launch_jobs
from wandb_dagster.launch.queues import LaunchError, get_run_queue
from wandb_dagster.storage.uri_credentials import redact

ITEM_TAG = "wandb/queue_item"
QUEUE_TAG = "wandb/queue"
JOB_TAG = "wandb/job"
_STATE_OF_STATUS = {
    dg.DagsterRunStatus.SUCCESS: "finished",
    dg.DagsterRunStatus.FAILURE: "failed",
    dg.DagsterRunStatus.CANCELED: "cancelled",
    dg.DagsterRunStatus.CANCELING: "cancelled",
}


# ----------------------------------------------------------------------------------------- publishing


def _git(source_dir: Path) -> dict[str, Any] | None:
    def run(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(source_dir), *args], capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else None

    commit = run("rev-parse", "HEAD")
    if commit is None:
        return None
    remote = run("config", "--get", "remote.origin.url")
    return {"commit": commit, "remote": redact(remote) if remote else None}


def _config_schema(config_type: Any) -> dict[str, Any]:
    """A JSON description of a Dagster config type: what a run config may say, for the job's readers."""
    from dagster._config import ConfigTypeKind

    kind = config_type.kind
    if ConfigTypeKind.has_fields(kind):
        fields = {}
        for name, field in sorted(config_type.fields.items()):
            described = {**_config_schema(field.config_type), "required": field.is_required}
            if field.default_provided:
                described["default"] = json.loads(field.default_value_as_json_str)
            fields[name] = described
        return {"type": kind.value.lower(), "fields": fields}
    if kind in (ConfigTypeKind.ARRAY, ConfigTypeKind.NONEABLE, ConfigTypeKind.MAP):
        inner = _config_schema(config_type.inner_type)
        if kind == ConfigTypeKind.NONEABLE:
            return {**inner, "nullable": True}
        return {"type": kind.value.lower(), "items": inner}
    if kind == ConfigTypeKind.ENUM:
        return {"type": "enum", "values": [v.config_value for v in config_type.enum_values]}
    return {"type": str(config_type.given_name or kind.value).lower()}


def _ops_schema(job_def: dg.JobDefinition) -> dict[str, Any]:
    """The part of the job's run config schema under ``ops``: op name -> its schema (the executor and
    logger parts are Dagster's own and change with its version, not with the job)."""
    root: Any = job_def.run_config_schema.config_type  # a shape: its fields are the run config's keys
    ops = root.fields.get("ops")
    if ops is None:
        return {}
    described = _config_schema(ops.config_type)
    return dict(described.get("fields", {}))


def _job_specs(repository: Any, names: Sequence[str] | None, code_location: str | None,
               source_dir: Path) -> list[dict[str, Any]]:
    git = _git(source_dir)
    wanted = list(names) if names is not None else [
        n for n in repository.job_names if not n.startswith("__ASSET_JOB")
    ]
    specs = []
    for name in wanted:
        if not repository.has_job(name):
            raise ValueError(f"publish_jobs: the definitions have no job {name!r}; their jobs: {repository.job_names}")
        job_def = repository.get_job(name)
        specs.append(launch_jobs.job_spec(
            dagster_job=name, code_location=code_location, run_config_schema={"ops": _ops_schema(job_def)}, git=git,
        ))
    return specs


def publish_jobs(
    defs: dg.Definitions,
    *,
    wandb: WandbResource | None = None,
    jobs: Sequence[str] | None = None,
    code_location: str | None = None,
    source_dir: str | os.PathLike | None = None,
) -> list[Any]:
    """Publish the jobs of ``defs`` (or those named in ``jobs``) as W&B jobs ``job-<name>`` in the
    resource's entity and project (``wandb``; default: the one bound as ``"wandb"`` in ``defs``). Each
    records ``code_location`` (the Dagster code location serving it), the job's ops' config schema and the
    git commit of ``source_dir`` (default: the working directory). Returns the job artifacts; unchanged
    jobs keep their version.

    >>> publish_jobs(defs, code_location="bikes")[0].name                       # doctest: +SKIP
    'job-train:v0'
    """
    if wandb is None:
        bound = (defs.resources or {}).get("wandb")
        if not isinstance(bound, WandbResource):
            raise ValueError("publish_jobs: pass wandb=WandbResource(...), or bind one as 'wandb' in the Definitions")
        wandb = bound
    specs = _job_specs(defs.get_repository_def(), jobs, code_location, Path(source_dir or os.getcwd()))
    return _publish(wandb, specs)


def _publish(wandb: WandbResource, specs: list[dict[str, Any]]) -> list[Any]:
    api = wandb.api()
    settings = wandb._settings()
    return [
        launch_jobs.publish_job(api._ws, entity=settings.entity, project=settings.project, spec=spec) for spec in specs
    ]


# ----------------------------------------------------------------------------------------- the agent


def _job_target_name(job: Any) -> str:
    name = getattr(job, "name", None)
    if not isinstance(name, str):
        raise TypeError(f"wandb_launch_agent: jobs must be Dagster job definitions, got {job!r}")
    return name


def wandb_launch_agent(
    *,
    queue: str,
    jobs: Sequence[Any],
    max_concurrent: int = 1,
    entity: str | None = None,
    name: str | None = None,
    lease_seconds: float = 300.0,
    max_attempts: int = 3,
    minimum_interval_seconds: int = 30,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
    description: str | None = None,
    resource_key: str = "wandb",
) -> dg.SensorDefinition:
    """The launch agent of run queue ``queue`` (of ``entity``; default the resource's): a sensor that launches
    each queued run once as a run of one of ``jobs``, at most ``max_concurrent`` at a time across every agent
    of the queue (see the module docstring). ``name`` defaults to ``wandb_launch_agent_<queue>``. With
    ``WandbResource(publish_jobs=True)`` it also publishes ``jobs`` as W&B jobs when they change.

    >>> agent = wandb_launch_agent(queue="training", jobs=[train_job], max_concurrent=2)  # doctest: +SKIP
    >>> agent.name                                                                       # doctest: +SKIP
    'wandb_launch_agent_training'
    """
    if not isinstance(queue, str) or not queue:
        raise ValueError(f"queue={queue!r} must be the name of a run queue (Api().create_run_queue)")
    if not jobs:
        raise ValueError("wandb_launch_agent: pass jobs=[...], the Dagster jobs this agent may launch")
    if not isinstance(max_concurrent, int) or isinstance(max_concurrent, bool) or max_concurrent < 1:
        raise ValueError(f"max_concurrent={max_concurrent!r} must be an integer of at least 1")
    if not isinstance(max_attempts, int) or max_attempts < 1:
        raise ValueError(f"max_attempts={max_attempts!r} must be an integer of at least 1")
    if not lease_seconds > 0:
        raise ValueError(f"lease_seconds={lease_seconds!r} must be positive (a few times the tick interval)")
    if not isinstance(resource_key, str) or not resource_key.isidentifier():
        raise ValueError(f"resource_key={resource_key!r} must be a resource key such as 'wandb'.")
    job_names = [_job_target_name(job) for job in jobs]
    sensor_name = name or _sensor_name("wandb_launch_agent", queue, None)

    @dg.sensor(
        name=sensor_name,
        required_resource_keys={resource_key},
        jobs=list(jobs),
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description=description or f"W&B Launch agent of run queue {queue!r} (at most {max_concurrent} at a time)",
    )
    def _sensor(context: dg.SensorEvaluationContext, **_resources: Any) -> Any:
        resource = _resource_of(context, resource_key, sensor_name)
        api = resource.api()
        cursor = _read_cursor(context.cursor)
        if resource.publish_jobs and context.repository_def is not None:
            location = context.code_location_origin.location_name if context.code_location_origin else None
            specs = _job_specs(context.repository_def, job_names, location, Path(os.getcwd()))
            digest = hashlib.sha256(json.dumps(specs, sort_keys=True).encode()).hexdigest()
            if cursor.get("published") != digest:
                published = _publish(resource, specs)
                context.log.info(f"{sensor_name}: published {[a.name for a in published]}")
                cursor["published"] = digest
        try:
            run_queue = get_run_queue(api, entity or resource._settings().entity, queue)
        except ValueError as exc:
            return dg.SensorResult(skip_reason=str(exc), cursor=json.dumps(cursor, sort_keys=True))
        store = api._store
        instance = context.instance
        for item in store.queue_items(run_queue._record.pk, ("leased", "running")):
            _follow(api, instance, item)
        owner = f"{sensor_name}@{socket.gethostname()}:{os.getpid()}"
        requests = []
        # A failed launch frees its slot at once: lease again until a round fails nothing (or finds nothing),
        # so bad items never hold the queue up.
        while True:
            leased = store.lease_queue_items(
                run_queue._record.pk, owner, max_concurrent=max_concurrent, lease_seconds=lease_seconds,
                max_attempts=max_attempts, prioritized=run_queue.prioritized,
            )  # fmt: skip
            failed = 0
            for item in leased:
                if _follow(api, instance, item):
                    continue  # launched already (another agent of the queue, or before its lease expired)
                request = _request(context, item, job_names, queue, sensor_name)
                if isinstance(request, str):
                    store.update_queue_item(item.id, state="failed", error=request)
                    context.log.warning(f"{sensor_name}: queued run {item.id} failed: {request}")
                    failed += 1
                    continue
                requests.append(request)
            if not failed:
                break
        skip = None if requests else f"nothing to launch from queue {queue!r} ({_summary(store, run_queue)})"
        return dg.SensorResult(run_requests=requests, skip_reason=skip, cursor=json.dumps(cursor, sort_keys=True))

    return _sensor


def _read_cursor(raw: str | None) -> dict[str, Any]:
    try:
        parsed = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _summary(store: Any, run_queue: Any) -> str:
    counts: dict[str, int] = {}
    for item in store.queue_items(run_queue._record.pk, ("pending", "leased", "running")):
        counts[item.state] = counts.get(item.state, 0) + 1
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "empty"


def _follow(api: Any, instance: dg.DagsterInstance, item: Any) -> bool:
    """Bring an item's state up to its Dagster run's; False when it has no Dagster run (yet)."""
    runs = instance.get_runs(filters=dg.RunsFilter(tags={ITEM_TAG: item.id}), limit=1)
    if not runs:
        return False
    run = runs[0]
    state = _STATE_OF_STATUS.get(run.status, "running")
    error = f"Dagster run {run.run_id} ended {run.status.value}" if state in ("failed", "cancelled") else None
    run_path = item.run_path or _tracking_run(api, item, run.run_id)
    if state != item.state or item.dagster_run_id != run.run_id or (run_path and not item.run_path):
        api._store.update_queue_item(item.id, state=state, dagster_run_id=run.run_id, run_path=run_path, error=error)
    return True


def _tracking_run(api: Any, item: Any, dagster_run_id: str) -> str | None:
    """entity/project/id of the first W&B run the Dagster run's steps logged (WandbResource: group = the
    Dagster run id), or None."""
    for run in api.runs(f"{item.entity}/{item.project}", filters={"group": dagster_run_id}, per_page=1):
        return f"{run.entity}/{run.project}/{run.id}"
    return None


def _request(
    context: dg.SensorEvaluationContext, item: Any, job_names: list[str], queue: str, sensor_name: str
) -> dg.RunRequest | str:
    """The run request of a leased item, or why it cannot be launched."""
    launch = item.launch
    job = launch.get("dagster_job")
    if job not in job_names:
        return (
            f"job {item.job} names Dagster job {job!r}, which agent {sensor_name} of queue "
            f"{queue!r} does not launch (its jobs: {job_names}); add it to the agent's jobs="
        )
    repository = context.repository_def
    if repository is not None:
        if not repository.has_job(job):
            return f"Dagster job {job!r} is not in this code location's definitions (jobs: {repository.job_names})"
        try:
            dg.validate_run_config(repository.get_job(job), launch.get("run_config") or {})
        except dg.DagsterInvalidConfigError as exc:
            problems = "; ".join(error.message for error in exc.errors) or str(exc)
            return f"its run config does not fit Dagster job {job!r}: {problems}"
    tags = {
        **{str(k): str(v) for k, v in (launch.get("tags") or {}).items()},
        QUEUE_TAG: queue,
        ITEM_TAG: item.id,
        JOB_TAG: item.job,
        "wandb/priority": str(item.priority),
    }
    return dg.RunRequest(run_key=item.id, job_name=job, run_config=launch.get("run_config") or {}, tags=tags)


__all__ = ["LaunchError", "publish_jobs", "wandb_launch_agent"]
