"""Run queues and queued runs (W&B Launch's ``RunQueue`` and ``QueuedRun``), and ``launch_add``.

In W&B, an agent polls a queue and starts each item on some compute. Here the compute is Dagster: a queued
run names a W&B job (a Dagster job, :mod:`wandb_dagster.launch.jobs`) and the agent is a Dagster sensor
(``wandb_dagster.dagster.wandb_launch_agent``) that leases items from the workspace and requests one
Dagster run per item, with ``run_key`` = the item's id. Everything an item needs is validated and resolved
when it is enqueued (the queue's template variables, the priority, the job version), so a bad value is
refused by ``launch_add`` with a message naming it, not found later by the agent.

>>> api = wandb.Api()                                                                   # doctest: +SKIP
>>> api.create_run_queue("training", type="local-process", prioritization_mode="V0",  # doctest: +SKIP
...     config={"run_config": {"ops": {"train": {"config": {"epochs": "{{epochs}}"}}}}},
...     template_variables={"epochs": {"schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10}}})
>>> queued = launch_add(job="bikes/job-train:latest", queue_name="training",  # doctest: +SKIP
...                     template_variables={"epochs": 5})
>>> queued.wait_until_finished().summary["loss"]                                       # doctest: +SKIP
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from wandb_dagster.launch.templates import check_schemas, resolve_values, substitute

if TYPE_CHECKING:
    from wandb_dagster.api.api import Api
    from wandb_dagster.api.objects import Run
    from wandb_dagster.store.records import RunQueueItemRecord, RunQueueRecord

# W&B's resource types. Dagster is the compute for every queue here: a local process or container is what
# the Dagster instance's run launcher starts, so those two are accepted; the others name a compute this
# agent does not drive.
RESOURCE_TYPES = ("local-container", "local-process", "kubernetes", "sagemaker", "gcp-vertex")
ACCEPTED_RESOURCE_TYPES = ("local-process", "local-container")
PRIORITIZATION_MODES = (None, "DISABLED", "V0")
# W&B's priority levels (``wandb launch --priority``), lower first; the default is medium.
PRIORITIES = {"critical": 0, "high": 1, "medium": 2, "low": 3}
DEFAULT_PRIORITY = PRIORITIES["medium"]
# The keys of a queue's config (its default resource config in W&B's words): a partial Dagster run config
# that every item's own run config is merged over, and tags for the Dagster runs.
QUEUE_CONFIG_KEYS = ("run_config", "tags")
# The default W&B project of launch: W&B keeps queues there; here a queue belongs to its entity alone.
LAUNCH_DEFAULT_PROJECT = "model-registry"


class LaunchError(RuntimeError):
    """A queued run cannot give what was asked: it failed, was cancelled, or timed out; the message says why."""


def _check_resource_type(resource_type: str) -> str:
    if resource_type in ACCEPTED_RESOURCE_TYPES:
        return resource_type
    if resource_type in RESOURCE_TYPES:
        raise ValueError(
            f"resource type {resource_type!r} is not supported: queues here are served by a Dagster sensor "
            f"(wandb_launch_agent) and run where the Dagster instance's run launcher puts them; use one of "
            f"{list(ACCEPTED_RESOURCE_TYPES)} (configure Kubernetes or containers in the Dagster instance instead)"
        )
    raise ValueError(f"resource type {resource_type!r} is not one of W&B's {list(RESOURCE_TYPES)}")


def _check_queue_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
    config = dict(config or {})
    unknown = sorted(set(config) - set(QUEUE_CONFIG_KEYS))
    if unknown:
        raise ValueError(
            f"queue config keys {unknown} are not understood; a queue's config has {list(QUEUE_CONFIG_KEYS)}: "
            "'run_config' (a partial Dagster run config each item's is merged over) and 'tags' (Dagster run tags)"
        )
    if not isinstance(config.get("run_config", {}), Mapping) or not isinstance(config.get("tags", {}), Mapping):
        raise ValueError("a queue config's 'run_config' and 'tags' must be dicts")
    return config


def put_run_queue(
    api: Api,
    name: str,
    resource_type: str,
    *,
    entity: str | None,
    prioritization_mode: str | None,
    config: Mapping[str, Any] | None,
    template_variables: Mapping[str, Any] | None,
    external_links: Mapping[str, Any] | None,
    create: bool,
) -> RunQueue:
    if not isinstance(name, str) or not name or "/" in name:
        raise ValueError(f"run queue name {name!r} is invalid: give a non-empty name without '/'")
    _check_resource_type(resource_type)
    if prioritization_mode not in PRIORITIZATION_MODES:
        raise ValueError(f"prioritization_mode={prioritization_mode!r} is invalid: use 'V0' or None")
    checked = _check_queue_config(config)
    variables = dict(template_variables or {})
    check_schemas(checked, variables)
    record = api._store.put_run_queue(
        entity or api.default_entity, name, resource_type=resource_type,
        prioritization_mode=prioritization_mode, config=checked, template_variables=variables,
        external_links=dict(external_links or {}), create=create,
    )  # fmt: skip
    return RunQueue(api, record)


def get_run_queue(api: Api, entity: str | None, name: str) -> RunQueue:
    entity = entity or api.default_entity
    record = api._store.get_run_queue(entity, name)
    if record is None:
        known = [q.name for q in api._store.run_queues(entity)]
        raise ValueError(
            f"entity {entity!r} has no run queue {name!r} (its queues: {known}); create it with "
            "Api().create_run_queue(name, type='local-process')"
        )
    return RunQueue(api, record)


class RunQueue:
    """A run queue (``Api().create_run_queue``/``run_queue``): ``name``, ``entity``, ``type`` (the resource
    type), ``prioritization_mode``, ``default_resource_config``, ``template_variables``, ``external_links``,
    ``items`` (the queued runs not done yet, in the order the agent takes them) and :meth:`delete`."""

    def __init__(self, api: Api, record: RunQueueRecord) -> None:
        self._api = api
        self._record = record

    name = property(lambda self: self._record.name)
    entity = property(lambda self: self._record.entity)
    type = property(lambda self: self._record.resource_type)
    prioritization_mode = property(lambda self: self._record.prioritization_mode)
    default_resource_config = property(lambda self: dict(self._record.config))
    template_variables = property(lambda self: dict(self._record.template_variables))
    external_links = property(lambda self: dict(self._record.external_links))
    id = property(lambda self: str(self._record.pk))
    access = property(lambda self: "project")

    @property
    def prioritized(self) -> bool:
        return self._record.prioritization_mode == "V0"

    @property
    def items(self) -> list[QueuedRun]:
        """The pending, leased and running items, in the order the agent takes them (priority first under
        ``V0``, then oldest first)."""
        records = self._api._store.queue_items(self._record.pk, ("pending", "leased", "running"))
        if self.prioritized:
            records.sort(key=lambda r: r.priority)  # stable: enqueue order within a priority
        return [QueuedRun(self._api, r) for r in records]

    def all_items(self) -> list[QueuedRun]:
        """Every item still recorded, done ones too, oldest first."""
        return [QueuedRun(self._api, r) for r in self._api._store.queue_items(self._record.pk)]

    def delete(self) -> None:
        """Delete the queue and its items (runs already launched in Dagster go on)."""
        self._api._store.delete_run_queue(self._record.pk)

    def __repr__(self) -> str:
        return f"<RunQueue {self.entity}/{self.name}>"


class QueuedRun:
    """One queued run (``launch_add``, ``Job.call``, ``Api().queued_run``): ``id`` (the Dagster run_key),
    ``queue_name``, ``state`` (pending, leased, running, finished, failed, cancelled; read fresh, following
    the Dagster run as the agent sees it), ``error`` (why it failed), ``dagster_run_id``, ``run`` (the W&B
    tracking run of the launched job, once there is one), :meth:`wait_until_running`,
    :meth:`wait_until_finished` and :meth:`delete`."""

    def __init__(self, api: Api, record: RunQueueItemRecord) -> None:
        self._api = api
        self._record = record

    id = property(lambda self: self._record.id)
    queue_name = property(lambda self: self._record.queue)
    entity = property(lambda self: self._record.entity)
    project = property(lambda self: self._record.project)
    priority = property(lambda self: self._record.priority)
    job = property(lambda self: self._record.job)
    template_variables = property(lambda self: dict(self._record.template_values))
    project_queue = LAUNCH_DEFAULT_PROJECT

    def _refresh(self) -> RunQueueItemRecord:
        fresh = self._api._store.get_queue_item(self._record.id)
        if fresh is None:
            raise ValueError(f"queued run {self._record.id} of queue {self.queue_name!r} was deleted")
        self._record = fresh
        return fresh

    @property
    def state(self) -> str:
        return self._refresh().state

    @property
    def error(self) -> str | None:
        return self._refresh().error

    @property
    def dagster_run_id(self) -> str | None:
        return self._refresh().dagster_run_id

    @property
    def run_config(self) -> dict[str, Any]:
        """The Dagster run config the agent launches: the queue's, with template variables put in, under
        the item's own."""
        return dict(self._record.launch.get("run_config") or {})

    @property
    def run(self) -> Run | None:
        """The W&B tracking run of the launched Dagster run (the first step's: its group is the Dagster run
        id), or None while there is none."""
        from wandb_dagster.api.objects import Run

        record = self._refresh()
        store = self._api._store
        if record.run_path:
            entity, project, run_id = record.run_path.split("/")
            found = store.get_run(entity, project, run_id)
            if found is not None:
                return Run(self._api._ws, found)
        if record.dagster_run_id is None:
            return None
        runs = self._api.runs(f"{record.entity}/{record.project}", filters={"group": record.dagster_run_id})
        first = next(iter(runs), None)
        return first

    def _wait(self, what: str, done: Any, timeout: float | None, poll_interval: float) -> Run:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            record = self._refresh()
            run = self.run
            if done(record.state, run):
                if run is None:
                    raise LaunchError(self._no_run(record))
                return run
            if record.state in ("failed", "cancelled"):
                raise LaunchError(self._no_run(record))
            if deadline is not None and time.monotonic() >= deadline:
                raise LaunchError(
                    f"queued run {record.id} of queue {record.queue!r} is still {record.state} after {timeout} s "
                    f"waiting for it to be {what}; is a wandb_launch_agent sensor of the queue running in Dagster?"
                )
            time.sleep(poll_interval)

    def _no_run(self, record: RunQueueItemRecord) -> str:
        where = f"queued run {record.id} of queue {record.queue!r}"
        if record.state == "failed":
            return f"{where} failed: {record.error or 'its Dagster run failed'}"
        if record.state == "cancelled":
            return f"{where} was cancelled (Dagster run {record.dagster_run_id})"
        return (
            f"{where} is {record.state} (Dagster run {record.dagster_run_id}) but its job logged no W&B tracking "
            f"run in {record.entity}/{record.project}; give the job's ops a WandbResource"
        )

    def wait_until_running(self, timeout: float | None = None, poll_interval: float = 1.0) -> Run:
        """Wait until the launched job has a W&B tracking run, and return it (as W&B's). A failed or
        cancelled item raises :class:`LaunchError` with the reason; so does ``timeout`` (seconds)."""
        return self._wait("running", lambda state, run: run is not None or state == "finished", timeout, poll_interval)

    def wait_until_finished(self, timeout: float | None = None, poll_interval: float = 1.0) -> Run:
        """Wait until the item's Dagster run succeeded, and return its tracking run (as W&B's)."""
        return self._wait("finished", lambda state, run: state == "finished", timeout, poll_interval)

    def delete(self, delete_artifacts: bool = False) -> None:
        """Remove the item from its queue. A pending item is then never launched; a launched one's Dagster
        run goes on (cancel it in Dagster). ``delete_artifacts`` is W&B's and unused (nothing to delete)."""
        self._api._store.delete_queue_item(self._record.id)

    def __repr__(self) -> str:
        return f"<QueuedRun {self.queue_name} ({self.id})>"


def _priority(value: int | str | None, queue: RunQueue) -> int:
    if value is None:
        return DEFAULT_PRIORITY
    if isinstance(value, str) and value.lower() in PRIORITIES:
        number = PRIORITIES[value.lower()]
    elif isinstance(value, int) and not isinstance(value, bool) and value in PRIORITIES.values():
        number = value
    else:
        raise ValueError(
            f"priority={value!r} is invalid: use 0-3 or one of {list(PRIORITIES)} (0, critical, goes first)"
        )
    if not queue.prioritized and number != DEFAULT_PRIORITY:
        raise ValueError(
            f"queue {queue.name!r} does not prioritize (prioritization_mode={queue.prioritization_mode!r}), so "
            f"priority={value!r} would be ignored; upsert it with prioritization_mode='V0' or leave priority out"
        )
    return number


def _deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _item_run_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The Dagster run config in W&B's launch config ``{"overrides": {"run_config": {...}}}``."""
    config = dict(config or {})
    unknown = sorted(set(config) - {"overrides"})
    if unknown:
        raise ValueError(
            f"launch config keys {unknown} are not supported: give the Dagster run config as "
            "config={'overrides': {'run_config': {...}}} (resource settings come from the queue's template "
            "variables)"
        )
    overrides = dict(config.get("overrides") or {})
    unknown = sorted(set(overrides) - {"run_config"})
    if unknown:
        raise ValueError(
            f"launch config overrides {unknown} are not supported: only 'run_config' (the Dagster job defines "
            "its entry point and arguments)"
        )
    run_config = overrides.get("run_config") or {}
    if not isinstance(run_config, Mapping):
        raise ValueError(f"overrides['run_config'] must be a dict (a Dagster run config), not {run_config!r}")
    return dict(run_config)


def launch_add(
    job: str,
    queue_name: str | None = None,
    config: Mapping[str, Any] | None = None,
    template_variables: Mapping[str, Any] | None = None,
    project: str | None = None,
    entity: str | None = None,
    resource: str | None = None,
    resource_args: Mapping[str, Any] | None = None,
    project_queue: str | None = None,
    priority: int | str | None = None,
    *,
    api: Api | None = None,
    **unsupported: Any,
) -> QueuedRun:
    """Enqueue a run of W&B job ``job`` (``[[entity/]project/]job-name[:alias]``) in queue ``queue_name``,
    as W&B's ``launch_add``. ``config`` is W&B's launch config, ``{"overrides": {"run_config": {...}}}``
    with the Dagster run config; ``template_variables`` the values of the queue's variables;
    ``priority`` 0-3 or critical/high/medium/low (queues with ``prioritization_mode="V0"``); ``project`` /
    ``entity`` where the launched run logs (default: the job's); the queue is ``entity``'s (default: the
    Api's), as in W&B.

    Everything is checked before anything is written: the job must exist, its run config fit the job, each
    template variable its schema (the error names the variable and its rule), the priority the queue. The
    job is pinned to the version ``job`` names now, so publishing again does not change a queued run.
    """
    from wandb_dagster.api.api import Api
    from wandb_dagster.launch.jobs import Job

    if unsupported:
        raise ValueError(
            f"launch_add arguments {sorted(unsupported)} are not supported here: a queued run names a W&B job "
            "(a Dagster job published with wandb_dagster.dagster.publish_jobs), not a URI or a docker image"
        )
    if queue_name is None:
        raise ValueError("launch_add: pass queue_name= the run queue a wandb_launch_agent sensor serves")
    if resource_args:
        raise ValueError(
            "launch_add: resource_args are not supported; declare template variables on the queue and pass "
            "template_variables= instead"
        )
    api = api or Api()
    queue = get_run_queue(api, entity, queue_name)  # as W&B's: the queue of the target entity
    if resource is not None:
        _check_resource_type(resource)
    job_obj = Job(api, api.artifact(job, type="job"))
    run_config = _item_run_config(config)
    job_obj.check_run_config(run_config)
    values = resolve_values(queue.template_variables, template_variables, queue=queue.name)
    queue_config = substitute(queue.default_resource_config, values)
    number = _priority(priority, queue)
    launch = {
        "code_location": job_obj.code_location,
        "dagster_job": job_obj.dagster_job,
        "run_config": _deep_merge(queue_config.get("run_config") or {}, run_config),
        "tags": {str(k): str(v) for k, v in (queue_config.get("tags") or {}).items()},
        "resource_type": queue.type,
    }
    record = api._store.enqueue_run(
        queue._record.pk, secrets.token_hex(8), entity=entity or job_obj.entity, project=project or job_obj.project,
        job=job_obj.artifact.source_qualified_name, launch=launch, template_values=values, priority=number,
    )  # fmt: skip
    return QueuedRun(api, record)


def get_queued_run(api: Api, entity: str | None, project: str | None, queue_name: str, item_id: str) -> QueuedRun:
    record = api._store.get_queue_item(item_id)
    if record is None or record.queue != queue_name:
        raise ValueError(f"queue {queue_name!r} has no queued run {item_id!r} (deleted, or another queue's?)")
    return QueuedRun(api, record)
