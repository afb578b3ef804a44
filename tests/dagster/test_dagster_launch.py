"""W&B Launch on Dagster, end to end on a real workspace (SQLite and PostgreSQL) and a real Dagster instance:
Dagster jobs published as W&B jobs, and the wandb_launch_agent sensor, ticked with build_sensor_context /
evaluate_tick (runs executed in process, as the daemon would launch them, a run_key at most once) and under
the real `dagster-daemon` started here on loopback, killed mid-way and restarted.

The contract: 5 items in a queue with max_concurrent=2 all run, each once, in priority order, never more than
2 at a time; a tick whose run requests were lost (the daemon died before launching them) is recovered when
the leases expire, with the same run_keys, so nothing runs twice; a bad template variable is refused at
enqueue; a failed launch fails its item with the reason and the queue goes on; QueuedRun.state follows the
Dagster run and the tracking run is reachable."""

from __future__ import annotations

import os
import signal
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from test_dagster_daemon import _Daemon, _wait  # the daemon runner of the run sensor's test

from wandb_dagster.dagster import WandbResource, publish_jobs, wandb_launch_agent
from wandb_dagster.launch import LaunchError, TemplateVariableError, launch_add
from wandb_dagster.sdk.workspace import Workspace

_QUEUE = "training"
_VARIABLES = {"epochs": {"schema": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1}}}
_QUEUE_CONFIG = {"run_config": {"ops": {"train": {"config": {"epochs": "{{epochs}}"}}}}, "tags": {"team": "ml"}}
# (priority, lr) of the five items, in enqueue order; V0 takes the lowest priority first, then the oldest.
_ITEMS = [(3, 0.3), (1, 0.1), (2, 0.2), (0, 0.0), (1, 0.15)]
_EXPECTED_ORDER = sorted(range(len(_ITEMS)), key=lambda i: (_ITEMS[i][0], i))


@dg.op(config_schema={"lr": float, "epochs": int}, required_resource_keys={"wandb"})
def train(context) -> None:  # noqa: ANN001 - Dagster reads the annotation, a string here
    run = context.resources.wandb.run()
    run.log({"lr": context.op_config["lr"], "epochs": context.op_config["epochs"]})
    if context.op_config["lr"] < 0:
        raise RuntimeError(f"lr {context.op_config['lr']} diverged")


@dg.job
def train_job() -> None:
    train()


@dg.op
def other() -> None:
    pass


@dg.job
def other_job() -> None:
    other()


def _defs(resource: WandbResource, **agent: Any) -> tuple[dg.Definitions, dg.SensorDefinition]:
    sensor = wandb_launch_agent(queue=_QUEUE, jobs=[train_job], **{"max_concurrent": 2, **agent})
    return dg.Definitions(jobs=[train_job, other_job], sensors=[sensor], resources={"wandb": resource}), sensor


def _setup_queue(api: Any) -> None:
    api.create_run_queue(_QUEUE, type="local-process", prioritization_mode="V0", config=_QUEUE_CONFIG,
                         template_variables=_VARIABLES)


def _enqueue(api: Any, lr: float, priority: int, **kwargs: Any) -> Any:
    config = {"overrides": {"run_config": {"ops": {"train": {"config": {"lr": lr}}}}}}
    return launch_add(job="job-train_job:latest", queue_name=_QUEUE, config=config, priority=priority, api=api,
                      template_variables={"epochs": 2}, **kwargs)


class _InProcessDaemon:
    """What the daemon does with a sensor's result: keep its cursor, and launch each run request whose
    run_key this sensor has not launched before (Dagster's rule), here in process."""

    def __init__(self, defs: dg.Definitions, sensor: dg.SensorDefinition, resource: WandbResource,
                 instance: Any) -> None:
        self.defs, self.sensor, self.resource, self.instance = defs, sensor, resource, instance
        self.cursor: str | None = None
        self.launched: list[str] = []

    def tick(self) -> list[dg.RunRequest]:
        with dg.build_sensor_context(instance=self.instance, cursor=self.cursor, definitions=self.defs,
                                     resources={"wandb": self.resource}) as context:
            result = self.sensor.evaluate_tick(context)
        self.cursor = result.cursor
        return list(result.run_requests or [])

    def launch(self, requests: list[dg.RunRequest]) -> None:
        for request in requests:
            if request.run_key in self.launched:
                continue
            self.launched.append(request.run_key)
            job = self.defs.get_job_def(request.job_name)
            job.execute_in_process(
                run_config=request.run_config, instance=self.instance, raise_on_error=False,
                tags={**request.tags, "dagster/run_key": request.run_key, "dagster/sensor_name": self.sensor.name},
            )


def test_the_agent_runs_five_items_once_each_in_priority_order_two_at_a_time(wandb_resource, instance):
    resource = WandbResource(**{**wandb_resource.model_dump(), "publish_jobs": True})
    defs, sensor = _defs(resource, lease_seconds=1.0)
    [job] = publish_jobs(defs, jobs=["train_job"])
    assert job.name == "job-train_job:v0"
    assert [a.name for a in publish_jobs(defs, jobs=["train_job"])] == ["job-train_job:v0"]  # unchanged: no v1
    api = resource.api()
    _setup_queue(api)
    items = [_enqueue(api, lr, priority) for priority, lr in _ITEMS]
    with pytest.raises(TemplateVariableError, match="'epochs': value 11 breaks its rule maximum 10"):
        launch_add(job="job-train_job", queue_name=_QUEUE, template_variables={"epochs": 11}, api=api)
    daemon = _InProcessDaemon(defs, sensor, resource, instance)

    first = daemon.tick()
    # The agent published the jobs too (WandbResource(publish_jobs=True)): unchanged, so still v0.
    assert api.job("job-train_job:latest").name == "tester/pipelines/job-train_job:v0"
    expected_ids = [items[i].id for i in _EXPECTED_ORDER]
    assert [r.run_key for r in first] == expected_ids[:2]
    assert first[0].run_config == {"ops": {"train": {"config": {"epochs": 2, "lr": 0.0}}}}
    assert first[0].tags["team"] == "ml" and first[0].tags["wandb/queue_item"] == expected_ids[0]
    assert [items[i].state for i in _EXPECTED_ORDER[:2]] == ["leased", "leased"]
    assert daemon.tick() == []  # two leased: max_concurrent holds while their runs have not started

    # The daemon died before launching them: the leases expire and the same items come again, same run_keys.
    time.sleep(1.2)
    again = daemon.tick()
    assert [r.run_key for r in again] == expected_ids[:2]
    daemon.launch(again)
    daemon.launch(first)  # a stale copy of the same requests: Dagster skips run_keys already launched
    while len(daemon.launched) < len(items):
        requests = daemon.tick()
        assert 1 <= len(requests) <= 2
        daemon.launch(requests)
    assert daemon.tick() == []
    assert daemon.launched == expected_ids  # each once, in priority order

    runs = instance.get_runs(filters=dg.RunsFilter(tags={"wandb/queue": _QUEUE}))
    assert len(runs) == 5 and {r.tags["wandb/queue_item"] for r in runs} == set(expected_ids)
    for item, (_, lr) in zip(items, _ITEMS, strict=True):
        assert item.state == "finished"
        run = item.wait_until_finished(timeout=5)
        assert run.summary["lr"] == lr and run.group == item.dagster_run_id
        assert item.run is not None and item.run.id == run.id


def test_a_failed_launch_fails_its_item_with_the_reason_and_the_queue_goes_on(wandb_resource, instance):
    defs, sensor = _defs(wandb_resource, max_concurrent=1)
    publish_jobs(defs)
    api = wandb_resource.api()
    _setup_queue(api)
    # Fits the job's ops (checked at enqueue), not its config schema (Dagster checks that at launch).
    bad_config = launch_add(job="job-train_job", queue_name=_QUEUE, api=api,
                            config={"overrides": {"run_config": {"ops": {"train": {"config": {"lr": "fast"}}}}}})
    not_served = launch_add(job="job-other_job", queue_name=_QUEUE, api=api)
    failing_run = _enqueue(api, -1.0, 2)
    good = _enqueue(api, 0.5, 2)
    daemon = _InProcessDaemon(defs, sensor, wandb_resource, instance)
    requests = daemon.tick()
    assert [r.run_key for r in requests] == [failing_run.id]  # the first two failed without taking the slot
    assert bad_config.state == "failed" and "does not fit Dagster job 'train_job'" in (bad_config.error or "")
    assert 'config:lr. Value "fast"' in (bad_config.error or "")  # Dagster's own words, naming the field
    assert not_served.state == "failed" and "which agent" in (not_served.error or "")
    assert "does not launch (its jobs: ['train_job'])" in (not_served.error or "")
    with pytest.raises(LaunchError, match="failed: its run config does not fit"):
        bad_config.wait_until_running(timeout=1)

    # A Dagster run that fails (its op raises) marks its item failed; the next item then runs.
    daemon.launch(requests)
    requests = daemon.tick()
    assert failing_run.state == "failed" and "ended FAILURE" in (failing_run.error or "")
    assert [r.run_key for r in requests] == [good.id]
    daemon.launch(requests)
    daemon.tick()
    assert good.state == "finished"


def test_two_agents_of_one_queue_share_max_concurrent_and_never_launch_an_item_twice(wandb_resource, instance):
    agent_a = wandb_launch_agent(name="agent_a", queue=_QUEUE, jobs=[train_job], max_concurrent=2)
    agent_b = wandb_launch_agent(name="agent_b", queue=_QUEUE, jobs=[train_job], max_concurrent=2)
    defs = dg.Definitions(jobs=[train_job], sensors=[agent_a, agent_b], resources={"wandb": wandb_resource})
    publish_jobs(defs)
    api = wandb_resource.api()
    _setup_queue(api)
    items = [_enqueue(api, 0.1 * n, 2) for n in range(4)]
    a = _InProcessDaemon(defs, agent_a, wandb_resource, instance)
    b = _InProcessDaemon(defs, agent_b, wandb_resource, instance)
    from_a = a.tick()
    assert [r.run_key for r in from_a] == [items[0].id, items[1].id]
    assert b.tick() == []  # the queue's two slots are agent a's
    a.launch(from_a)
    from_b = b.tick()  # b sees a's runs finish (the item states follow them), then leases the next two
    assert [items[0].state, items[1].state] == ["finished", "finished"]
    assert [r.run_key for r in from_b] == [items[2].id, items[3].id]
    assert a.tick() == []
    b.launch(from_b)
    assert a.tick() == [] and b.tick() == []
    assert sorted(a.launched + b.launched) == sorted(i.id for i in items)  # each item once, by one agent
    assert len(instance.get_runs(filters=dg.RunsFilter(tags={"wandb/queue": _QUEUE}))) == 4
    assert all(item.state == "finished" for item in items)

    # A cancelled Dagster run cancels its item.
    cancelled = _enqueue(api, 0.5, 2)
    [request] = a.tick()
    run = instance.create_run_for_job(job_def=train_job, run_config=request.run_config, tags=request.tags)
    assert a.tick() == [] and cancelled.state == "running" and cancelled.dagster_run_id == run.run_id
    instance.report_run_canceled(run)
    a.tick()
    assert cancelled.state == "cancelled"
    with pytest.raises(LaunchError, match=f"queued run {cancelled.id} of queue 'training' was cancelled"):
        cancelled.wait_until_finished(timeout=5)


# ---------------------------------------------------------------------------------------------- the daemon

_DAEMON_DEFS = '''
import time

import dagster as dg
from wandb_dagster.dagster import WandbResource, wandb_launch_agent


@dg.op(config_schema={{"lr": float, "epochs": int}}, required_resource_keys={{"wandb"}})
def train(context):
    run = context.resources.wandb.run()
    run.log({{"lr": context.op_config["lr"], "epochs": context.op_config["epochs"]}})
    time.sleep(2)  # long enough for the runs to overlap, and for the daemon to be killed mid-way


@dg.job
def train_job():
    train()


wandb = WandbResource(database_url={database_url!r}, storage_root={storage_root!r}, entity="tester",
                      project="pipelines")
defs = dg.Definitions(
    jobs=[train_job],
    sensors=[wandb_launch_agent(queue={queue!r}, jobs=[train_job], max_concurrent=2, lease_seconds=30,
                                minimum_interval_seconds=1, default_status=dg.DefaultSensorStatus.RUNNING)],
    resources={{"wandb": wandb}},
)
'''


@pytest.fixture
def launch_daemon(tmp_path: Path) -> Iterator[_Daemon]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    d = _Daemon(home, tmp_path / "defs.py")
    yield d
    _kill_group(d)


def _kill_group(d: _Daemon) -> None:
    """Kill the daemon's whole process group (its code servers and run workers too), if anything is left."""
    if d.proc is not None:
        try:
            os.killpg(d.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        d.proc.wait(timeout=30)
    d.proc = None


def test_under_the_daemon_five_items_run_once_in_priority_order_across_a_kill(database_url, tmp_path, launch_daemon):
    """The real daemon, killed (SIGKILL, no clean shutdown) once two items have finished, then restarted;
    before it first starts, a crashed agent holds leases on the first two items."""
    import importlib.util

    storage_root = str(tmp_path / "blobs")
    launch_daemon.defs.write_text(textwrap.dedent(_DAEMON_DEFS).format(
        database_url=database_url, storage_root=storage_root, queue=_QUEUE
    ))
    spec = importlib.util.spec_from_file_location("launch_defs", launch_daemon.defs)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    resource = module.wandb
    publish_jobs(module.defs)
    api = resource.api()
    _setup_queue(api)
    items = [_enqueue(api, lr, priority) for priority, lr in _ITEMS]
    with pytest.raises(TemplateVariableError, match="'epochs': value 0 breaks its rule minimum 1"):
        launch_add(job="job-train_job", queue_name=_QUEUE, template_variables={"epochs": 0}, api=api)
    expected_ids = [items[i].id for i in _EXPECTED_ORDER]
    # An agent that leased the first two items and died before its run requests were launched: the daemon's
    # agent waits for those leases to expire (they hold both slots), then launches them, same run_keys.
    queue_pk = api.run_queue(None, _QUEUE)._record.pk
    crashed = api._store.lease_queue_items(queue_pk, "crashed-agent", max_concurrent=2, lease_seconds=5,
                                           max_attempts=3, prioritized=True)
    assert [item.id for item in crashed] == expected_ids[:2]

    instance = dg.DagsterInstance.from_config(str(launch_daemon.home))

    def runs() -> list[Any]:
        records = instance.get_run_records(filters=dg.RunsFilter(tags={"wandb/queue": _QUEUE}))
        return sorted(records, key=lambda r: r.create_timestamp)

    def states() -> list[str]:
        return [item.state for item in items]

    try:
        proc = launch_daemon.start()
        _wait("two items to finish", lambda: states().count("finished") >= 2, proc, launch_daemon.log)
        # Kill the daemon mid-way, without a clean shutdown (its run workers go on; the restarted daemon
        # follows their runs), then start it again.
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert states().count("finished") < len(items)
        proc = launch_daemon.start()
        _wait("every item to finish", lambda: states() == ["finished"] * len(items), proc, launch_daemon.log,
              timeout=400)
        seen = len(runs())
        time.sleep(5)  # a few more ticks: nothing launches again
        records = runs()
        assert len(records) == seen == len(items)
        assert [r.dagster_run.tags["wandb/queue_item"] for r in records] == expected_ids  # once each, in order
        assert all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in records)
        spans = [(r.start_time, r.end_time) for r in records]
        for start, _ in spans:
            overlapping = sum(1 for s, e in spans if s is not None and e is not None and s <= start < e)
            assert overlapping <= 2, spans  # max_concurrent=2
        for item, (_, lr) in zip(items, _ITEMS, strict=True):
            run = item.wait_until_finished(timeout=30)
            assert run.summary["lr"] == lr and run.group == item.dagster_run_id
        attempts = {item.id: item._record.attempts for item in items}
        assert [attempts[i] for i in expected_ids] == [2, 2, 1, 1, 1]  # the crashed agent's two were leased again
    finally:
        _kill_group(launch_daemon)
        instance.dispose()
        Workspace.close_all()


# ---------------------------------------------------------------------------------------------- the README


def test_the_launch_section_of_the_readme_runs_as_written(database_url, tmp_path, monkeypatch, instance, capsys):
    import re

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Launch\n(.*?)(?=^## )", readme, flags=re.S | re.M)
    assert section, "README has no section '## Launch'"
    blocks = re.findall(r"^```python\n(.*?)^```", section.group(1), flags=re.S | re.M)
    assert len(blocks) == 2
    monkeypatch.setenv("WANDB_DAGSTER_DATABASE_URL", database_url)
    monkeypatch.setenv("WANDB_DAGSTER_STORAGE", str(tmp_path / "blobs"))
    monkeypatch.setenv("WANDB_DAGSTER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("WANDB_ENTITY", "tester")
    try:
        namespace: dict[str, Any] = {}
        exec(compile(blocks[0], "README.md#launch-1", "exec", dont_inherit=True), namespace)  # noqa: S102 - the README, as written
        assert "template variable 'epochs': value 500 breaks its rule maximum 50" in capsys.readouterr().out
        # What the daemon does with the agent between the two blocks.
        daemon = _InProcessDaemon(namespace["defs"], namespace["agent"], namespace["defs"].resources["wandb"],
                                  instance)
        first = daemon.tick()
        assert [r.run_key for r in first] == [namespace["queued"].id, namespace["later"].id]
        daemon.launch(first)
        assert daemon.tick() == []
        exec(compile(blocks[1], "README.md#launch-2", "exec", dont_inherit=True), namespace)  # noqa: S102
        out = capsys.readouterr().out.splitlines()
        assert out[0].startswith("finished ") and out[0].endswith(" 0.03333333333333333") and out[1] == "finished"
        assert namespace["api"].job("job-train_job:latest").name == "tester/bikes/job-train_job:v0"
    finally:
        Workspace.close_all()
