"""W&B Launch at the api level (wandb_dagster.launch and Api's queue and job calls) on a real workspace,
SQLite and PostgreSQL: queues and their resource types, template variables validated at enqueue (type,
minimum, maximum, enum, default) with messages naming the variable and the rule, V0 priorities, jobs that
version like any artifact, queued runs, and the store's lease (max_concurrent across agents, expiry and
retry, no item leased twice under concurrent agents). The Dagster agent is tested in
tests/dagster/test_dagster_launch.py."""

from __future__ import annotations

import threading
import time

import pytest

import wandb_dagster as wandb
from wandb_dagster.launch import LaunchError, TemplateVariableError, launch_add, publish_job
from wandb_dagster.launch.queues import QueuedRun

from .conftest import train_spec

_EPOCHS = {"epochs": {"schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10}}}
_QUEUE_CONFIG = {"run_config": {"ops": {"train": {"config": {"epochs": "{{epochs}}"}}}}, "tags": {"size": "{{size}}"}}
_VARIABLES = {
    **_EPOCHS,
    "size": {"schema": {"type": "string", "enum": ["small", "large"], "default": "small"}},
    "lr_cap": {"schema": {"type": "number", "minimum": 0, "maximum": 1}},
}


def _queue(api: wandb.Api, name: str = "training", **kwargs):
    settings = {"type": "local-process", "prioritization_mode": "V0", "config": _QUEUE_CONFIG,
                "template_variables": _VARIABLES, **kwargs}
    return api.create_run_queue(name, **settings)


def test_a_queue_round_trips_create_refuses_a_duplicate_and_upsert_replaces_settings(api):
    queue = _queue(api)
    found = api.run_queue("tester", "training")
    assert (found.name, found.entity, found.type, found.prioritization_mode) == (
        "training", "tester", "local-process", "V0"
    )
    assert found.default_resource_config == _QUEUE_CONFIG and found.template_variables == _VARIABLES
    with pytest.raises(ValueError, match="already has a run queue named 'training'.*upsert_run_queue"):
        _queue(api)
    api.upsert_run_queue("training", resource_config={}, resource_type="local-container", external_links={"a": "b"})
    again = api.run_queue(None, "training")
    assert (again.type, again.default_resource_config, again.prioritization_mode, again.external_links) == (
        "local-container", {}, None, {"a": "b"}
    )
    assert queue.id == again.id
    with pytest.raises(ValueError, match=r"no run queue 'nope' \(its queues: \['training'\]\)"):
        api.run_queue(None, "nope")


@pytest.mark.parametrize("resource", ["kubernetes", "sagemaker", "gcp-vertex"])
def test_resource_types_other_than_local_are_refused_with_the_reason(api, resource):
    with pytest.raises(ValueError, match=f"resource type '{resource}' is not supported.*Dagster.*local-process"):
        api.create_run_queue("q", type=resource)
    with pytest.raises(ValueError, match="not one of W&B's"):
        api.create_run_queue("q", type="slurm")
    assert api.create_run_queue("q", type="local-container").type == "local-container"


@pytest.mark.parametrize(
    ("variables", "config", "message"),
    [
        ({"n": {"schema": {"type": "float"}}}, {}, "'n': type 'float' is not one of"),
        ({"n": {"schema": {"type": "integer", "minimum": 5, "maximum": 1}}}, {}, "'n': minimum 5 is above maximum 1"),
        ({"n": {"schema": {"type": "string", "minimum": 1}}}, {}, "'n': minimum applies to numbers"),
        ({"n": {"schema": {"type": "integer", "enum": [1, "x"]}}}, {}, "'n': enum option 'x' is not of type"),
        ({"n": {"schema": {"type": "integer", "maximum": 3, "default": 9}}}, {},
         "'n': default 9 breaks its rule maximum 3"),
        ({"n": {"schema": {"type": "integer", "minimun": 1}}}, {}, r"'n': unknown schema keys \['minimun'\]"),
        ({"n": {"type": "integer"}}, {}, "'n' must be declared as"),
        ({}, {"run_config": {"ops": {"x": "{{gpus}}"}}}, r"uses template variables \['gpus'\] that"),
        ({}, {"resources": {}}, r"queue config keys \['resources'\] are not understood"),
    ],
)  # fmt: skip
def test_template_variable_declarations_are_checked_when_the_queue_is_created(api, variables, config, message):
    with pytest.raises(ValueError, match=message):
        api.create_run_queue("q", type="local-process", config=config, template_variables=variables)
    with pytest.raises(ValueError, match="no run queue"):
        api.run_queue(None, "q")  # nothing was created


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"epochs": 0}, "'epochs': value 0 breaks its rule minimum 1"),
        ({"epochs": 101}, "'epochs': value 101 breaks its rule maximum 100"),
        ({"epochs": 2.5}, "'epochs': value 2.5 breaks its rule type 'integer'"),
        ({"epochs": True}, "'epochs': value True breaks its rule type 'integer'"),
        ({"size": "medium"}, r"'size': value 'medium' breaks its rule enum \['small', 'large'\]"),
        ({"lr_cap": "0.1"}, "'lr_cap': value '0.1' breaks its rule type 'number'"),
        ({"lr_cap": 0.5, "gpus": 2}, r"queue 'training' has no template variables \['gpus'\]"),
        ({}, "template variable 'lr_cap' of queue 'training' has no default"),
    ],
)
def test_a_bad_template_variable_is_refused_at_enqueue_naming_the_variable_and_the_rule(
    api, train_job, values, message
):
    queue = _queue(api)
    with pytest.raises(TemplateVariableError, match=message):
        launch_add(job="job-train:latest", queue_name="training", template_variables=values, api=api)
    with pytest.raises(TemplateVariableError, match=message):
        api.job("job-train").call(config={"ops": {"train": {"config": {"lr": 0.1}}}}, queue="training",
                                  template_variables=values)
    assert queue.all_items() == []  # nothing was enqueued


def test_values_and_defaults_are_put_into_the_queue_config_under_the_items_run_config(api, train_job):
    _queue(api)
    queued = launch_add(
        job="job-train:latest", queue_name="training", template_variables={"lr_cap": 0.5, "epochs": 3},
        config={"overrides": {"run_config": {"ops": {"train": {"config": {"lr": 0.1}}}}}}, api=api,
    )
    # "{{epochs}}" alone became the integer 3; the item's own config merged over the queue's.
    assert queued.run_config == {"ops": {"train": {"config": {"epochs": 3, "lr": 0.1}}}}
    assert queued.template_variables == {"epochs": 3, "size": "small", "lr_cap": 0.5}
    assert queued._record.launch["tags"] == {"size": "small"}
    assert (queued.state, queued.job, queued.entity, queued.project) == (
        "pending", "tester/pipelines/job-train:v0", "tester", "pipelines"
    )
    # The item is pinned to the version named at enqueue: a new version later does not change it.
    publish_job(api._ws, entity="tester", project="pipelines", spec=train_spec(git={"commit": "def"}))
    assert api.queued_run("tester", "pipelines", "training", queued.id).job == "tester/pipelines/job-train:v0"


def test_launch_config_and_run_config_are_checked_against_the_job(api, train_job):
    _queue(api)
    job = api.job("job-train:latest")
    with pytest.raises(ValueError, match=r"configures ops \['trian'\] that Dagster job 'train' does not have"):
        job.call(config={"ops": {"trian": {"config": {}}}}, queue="training", template_variables={"lr_cap": 0.1})
    with pytest.raises(ValueError, match=r"has keys \['solids'\] that a Dagster run config does not"):
        job.call(config={"solids": {}}, queue="training", template_variables={"lr_cap": 0.1})
    with pytest.raises(ValueError, match="pass queue="):
        job.call(config={})
    with pytest.raises(ValueError, match=r"launch config keys \['resource_args'\] are not supported"):
        launch_add(job="job-train", queue_name="training", config={"resource_args": {}}, api=api)
    with pytest.raises(ValueError, match=r"launch_add arguments \['uri'\] are not supported"):
        launch_add(job="job-train", queue_name="training", uri="https://github.com/x/y", api=api)
    with pytest.raises(ValueError, match="no run queue 'missing'"):
        launch_add(job="job-train", queue_name="missing", api=api)


def test_v0_priorities_order_the_queue_and_a_queue_without_v0_refuses_them(api, train_job):
    queue = _queue(api)
    values = {"lr_cap": 0.1}
    order = [("low", 3), (None, 2), ("critical", 0), (1, 1), ("medium", 2), ("high", 1)]
    ids = [launch_add(job="job-train", queue_name="training", priority=p, template_variables=values, api=api).id
           for p, _ in order]  # fmt: skip
    expected = [ids[i] for i in sorted(range(len(order)), key=lambda i: (order[i][1], i))]
    assert [item.id for item in queue.items] == expected
    assert [item.priority for item in queue.items] == [0, 1, 1, 2, 2, 3]
    with pytest.raises(ValueError, match="priority='urgent' is invalid"):
        launch_add(job="job-train", queue_name="training", priority="urgent", template_variables=values, api=api)
    api.create_run_queue("fifo", type="local-process")
    with pytest.raises(ValueError, match="queue 'fifo' does not prioritize.*prioritization_mode='V0'"):
        launch_add(job="job-train", queue_name="fifo", priority="high", api=api)
    # The store's lease takes them in that order too, and FIFO on a queue without V0.
    leased = api._store.lease_queue_items(
        queue._record.pk, "a", max_concurrent=10, lease_seconds=60, max_attempts=3, prioritized=True
    )
    assert [item.id for item in leased] == expected


def test_jobs_version_like_artifacts_republishing_unchanged_makes_no_new_version(api):
    first = publish_job(api._ws, entity="tester", project="pipelines", spec=train_spec())
    again = publish_job(api._ws, entity="tester", project="pipelines", spec=train_spec())
    assert (first.name, again.name, again.id) == ("job-train:v0", "job-train:v0", first.id)
    changed = publish_job(api._ws, entity="tester", project="pipelines", spec=train_spec(git={"commit": "def"}))
    assert changed.name == "job-train:v1" and changed.type == "job"
    job = api.job("tester/pipelines/job-train:latest")
    assert (job.name, job.dagster_job, job.code_location, job.source["git"]) == (
        "tester/pipelines/job-train:v1", "train", "bikes", {"commit": "def"}
    )
    assert "train" in job.run_config_schema["ops"]
    listed = api.list_jobs("tester", "pipelines")
    assert len(listed) == 1 and [e["node"]["artifactSequence"]["name"] for e in listed[0]["edges"]] == [
        "job-train", "job-train"
    ]
    assert sorted(a["alias"] for e in listed[0]["edges"] for a in e["node"]["aliases"]) == ["latest"]
    assert api.artifact("job-train:v0").download(root=str(api.settings.root_dir))  # a plain artifact too
    with pytest.raises(ValueError, match="has type 'job', not 'dataset'"):
        api.artifact("job-train:v0", type="dataset")


def test_a_queued_run_deletes_waits_with_a_reason_and_reaches_its_tracking_run(api, train_job):
    queue = _queue(api)
    store = api._store
    values = {"lr_cap": 0.1}
    gone = launch_add(job="job-train", queue_name="training", template_variables=values, api=api)
    gone.delete()
    assert queue.items == []
    with pytest.raises(ValueError, match="was deleted"):
        _ = gone.state
    pending = launch_add(job="job-train", queue_name="training", template_variables=values, api=api)
    with pytest.raises(LaunchError, match="still pending after 0.2 s.*wandb_launch_agent"):
        pending.wait_until_running(timeout=0.2, poll_interval=0.05)
    # What the agent records: the Dagster run, then the run's state; the tracking run is the Dagster run's
    # group (WandbResource), found in the item's project.
    store.update_queue_item(pending.id, state="running", dagster_run_id="dagster-run-1")
    assert pending.run is None
    tracking = wandb.init(settings={"database_url": api.settings.database_url, "storage_root": api.settings.storage_root},
                          entity="tester", project="pipelines", group="dagster-run-1", reinit="create_new")
    tracking.finish()
    assert pending.wait_until_running(timeout=5).id == tracking.id
    store.update_queue_item(pending.id, state="finished")
    assert pending.wait_until_finished(timeout=5).id == tracking.id
    assert store.update_queue_item(pending.id, state="failed") is False  # a done item stays done
    failing = launch_add(job="job-train", queue_name="training", template_variables=values, api=api)
    store.update_queue_item(failing.id, state="failed", error="its run config does not fit")
    with pytest.raises(LaunchError, match=f"queued run {failing.id} of queue 'training' failed: its run config"):
        failing.wait_until_finished(timeout=5)
    assert isinstance(api.queued_run(None, None, "training", failing.id), QueuedRun)


def test_leases_hold_max_concurrent_across_agents_expire_and_are_retried(api, train_job):
    queue = _queue(api)
    store = api._store
    ids = [launch_add(job="job-train", queue_name="training", template_variables={"lr_cap": 0.1}, api=api).id
           for _ in range(4)]  # fmt: skip

    def lease(owner: str, seconds: float = 60, attempts: int = 3):
        return [i.id for i in store.lease_queue_items(
            queue._record.pk, owner, max_concurrent=2, lease_seconds=seconds, max_attempts=attempts, prioritized=True
        )]  # fmt: skip

    assert lease("agent-a", seconds=0.3) == ids[:1] + ids[1:2]
    assert lease("agent-b") == []  # two active across agents: no room
    time.sleep(0.5)  # agent-a's launches never happened: its leases expire, and agent-b leases them again
    assert lease("agent-b") == ids[:2]
    assert [store.get_queue_item(i).attempts for i in ids[:2]] == [2, 2]  # type: ignore[union-attr]
    store.update_queue_item(ids[0], state="running", dagster_run_id="r0")
    store.update_queue_item(ids[1], state="finished", dagster_run_id="r1")
    assert lease("agent-a", seconds=0.2) == ids[2:3]  # one room left: the next in order
    time.sleep(0.4)
    # An agent allowing one attempt: the expired lease had used it, so the item fails instead of a retry.
    assert lease("agent-a", attempts=1) == ids[3:4]
    failed = store.get_queue_item(ids[2])
    assert failed is not None and failed.state == "failed" and "leased 1 times" in (failed.error or "")


def test_concurrent_agents_never_lease_an_item_twice_or_exceed_max_concurrent(api, train_job):
    queue = _queue(api, prioritization_mode=None)
    store = api._store
    ids = {launch_add(job="job-train", queue_name="training", template_variables={"lr_cap": 0.1}, api=api).id
           for _ in range(24)}  # fmt: skip
    leased: list[str] = []
    peaks: list[int] = []
    errors: list[BaseException] = []

    def agent(owner: str) -> None:
        try:
            while True:
                got = store.lease_queue_items(
                    queue._record.pk, owner, max_concurrent=3, lease_seconds=60, max_attempts=3, prioritized=False
                )
                peaks.append(len(store.queue_items(queue._record.pk, ("leased", "running"))))
                if not got and not store.queue_items(queue._record.pk, ("pending",)):
                    return
                for item in got:
                    leased.append(item.id)
                    store.update_queue_item(item.id, state="finished", dagster_run_id=f"run-{item.id}")
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=agent, args=(f"agent-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert sorted(leased) == sorted(ids)  # every item leased exactly once
    assert max(peaks) <= 3


@pytest.mark.parametrize(
    "name", ["create_run_queue", "upsert_run_queue", "run_queue", "queued_run", "job", "list_jobs"]
)
def test_seed_001s_launch_calls_exist_on_the_api_with_w_and_bs_parameters(name):
    import inspect
    import re

    from sdk._seeds import seed_path  # tests/sdk: the seeds' locator (skips outside CI without them)

    text = seed_path("001").read_text(encoding="utf-8")
    documented = re.search(rf"^{name}\(\n?(.*?)\n?\)", text, flags=re.S | re.M)
    assert documented, f"seed 001 documents no {name}(...)"
    params = [p.split(":")[0].split("=")[0].strip() for p in documented.group(1).replace("\n", " ").split(",")]
    ours = list(inspect.signature(getattr(wandb.Api, name)).parameters)[1:]  # without self
    assert [p for p in params if p] == ours
