"""wandb_run_sensor: a request per tracking run that finishes with matching summary metrics, evaluated with
build_sensor_context on a real Dagster instance and workspace (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import dagster as dg
import pytest

import wandb_dagster as wandb
from wandb_dagster.dagster import WandbResource, wandb_run_sensor


@dg.op
def _noop() -> None:
    pass


@dg.job
def promote() -> None:
    _noop()


def _tick(sensor: dg.SensorDefinition, resource: WandbResource, instance: Any, cursor: str | None) -> Any:
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources={"wandb": resource}) as context:
        return sensor(context)


def _train(resource: WandbResource, accuracy: float, *, finish: bool = True, job_type: str = "train") -> Any:
    run = wandb.init(settings=resource._settings(), job_type=job_type, reinit="create_new")
    run.log({"accuracy": accuracy})
    if finish:
        run.finish()
    return run


def test_one_request_per_matching_finished_run_never_twice(wandb_resource, instance):
    sensor = wandb_run_sensor(
        filters={"summary_metrics.accuracy": {"$gte": 0.9}, "jobType": "train"}, job=promote
    )
    first = _tick(sensor, wandb_resource, instance, None)
    assert first.run_requests == [] and first.cursor  # starts at the head of the feed

    good = _train(wandb_resource, 0.95)
    _train(wandb_resource, 0.5)  # finished, but below the threshold
    _train(wandb_resource, 0.99, job_type="eval")  # above, but not a training run
    running = _train(wandb_resource, 0.97, finish=False)  # matching metrics, not finished yet

    second = _tick(sensor, wandb_resource, instance, first.cursor)
    [request] = second.run_requests
    assert request.tags["wandb/run_id"] == good.id and request.tags["wandb/run_state"] == "finished"
    assert request.tags["wandb/run"] == f"tester/pipelines/{good.id}"
    assert request.run_key == request.tags["wandb/event_id"]

    # Launch it as the daemon would; the next tick (saved cursor) requests nothing, and a replay from the old
    # cursor requests only the run key Dagster already launched (so it launches nothing).
    promote.execute_in_process(
        instance=instance,
        tags={"dagster/run_key": request.run_key, "dagster/sensor_name": sensor.name, **request.tags},
    )
    assert _tick(sensor, wandb_resource, instance, second.cursor).run_requests == []
    launched = {r.tags["dagster/run_key"] for r in instance.get_runs(dg.RunsFilter(tags={
        "dagster/sensor_name": sensor.name}))}
    replay = _tick(sensor, wandb_resource, instance, first.cursor)
    assert [r.run_key for r in replay.run_requests] == [request.run_key]
    assert [r.run_key for r in replay.run_requests if r.run_key not in launched] == []

    # The running run finishes: now it fires, once.
    running.finish()
    third = _tick(sensor, wandb_resource, instance, second.cursor)
    assert [r.tags["wandb/run_id"] for r in third.run_requests] == [running.id]
    assert _tick(sensor, wandb_resource, instance, third.cursor).run_requests == []


def test_states_project_and_definition_errors(wandb_resource, instance):
    failed = wandb_run_sensor(project="tester/pipelines", state=["failed"], name="on_failure", job=promote)
    start = _tick(failed, wandb_resource, instance, None).cursor
    run = wandb.init(settings=wandb_resource._settings(), reinit="create_new")
    run.finish(exit_code=1)
    _train(wandb_resource, 1.0)
    [request] = _tick(failed, wandb_resource, instance, start).run_requests
    assert request.tags["wandb/run_id"] == run.id and request.tags["wandb/run_state"] == "failed"

    other = wandb_run_sensor(project="elsewhere", job=promote, start="beginning")
    assert _tick(other, wandb_resource, instance, None).run_requests == []

    with pytest.raises(ValueError, match="filters of sensor"):
        wandb_run_sensor(filters={"summary_metrics.acc": {"$nope": 1}}, job=promote)
    with pytest.raises(ValueError, match="state="):
        wandb_run_sensor(state="done", job=promote)
