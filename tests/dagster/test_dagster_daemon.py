"""wandb_run_sensor under the real Dagster daemon: `dagster-daemon run` in a subprocess (its own Dagster
home, the code location loaded from a file, runs launched by the run queue) ticks the sensor every few
seconds. A finished run matching the filter launches exactly one Dagster run; the daemon is killed, the
sensor's cursor is wound back as if that tick's result had been lost, and the restarted daemon replays the
event without launching it again; a new matching run still launches one more.

A real asset backfill with ``BackfillPolicy.single_run()``, run by the same daemon's backfill loop, writes one
version per partition from one Dagster run.

One backend (SQLite): the feed and the run keys are the same code on both, and the daemon is slow to start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster._core.scheduler.instigation import InstigatorType

import wandb_dagster as wandb
from wandb_dagster.dagster import WandbResource
from wandb_dagster.sdk.workspace import Workspace

_SENSOR = "accurate_runs"

_DEFS = '''
import dagster as dg
from wandb_dagster.dagster import WandbResource, wandb_run_sensor


@dg.op
def noop() -> None:
    pass


@dg.job
def promote() -> None:
    noop()


defs = dg.Definitions(
    jobs=[promote],
    sensors=[wandb_run_sensor(
        name={sensor!r}, filters={{"summary_metrics.accuracy": {{"$gte": 0.9}}}}, job=promote, start="beginning",
        minimum_interval_seconds=1, default_status=dg.DefaultSensorStatus.RUNNING,
    )],
    resources={{"wandb": WandbResource(
        database_url={database_url!r}, storage_root={storage_root!r}, entity="tester", project="pipelines",
    )}},
)
'''


def _wait(what: str, condition: Callable[[], Any], daemon: subprocess.Popen, log: Path, timeout: float = 240) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if daemon.poll() is not None:
            pytest.fail(f"dagster-daemon exited ({daemon.returncode}) while waiting for {what}:\n{log.read_text()[-4000:]}")
        time.sleep(1)
    pytest.fail(f"timed out after {timeout}s waiting for {what}; daemon log:\n{log.read_text()[-4000:]}")


class _Daemon:
    """`dagster-daemon run` in its own process group, so that killing it also kills its code server."""

    def __init__(self, home: Path, defs: Path) -> None:
        self.home, self.defs, self.log = home, defs, home / "daemon.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> subprocess.Popen:
        env = {**os.environ, "DAGSTER_HOME": str(self.home)}
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-f", str(self.defs)],
                cwd=self.home, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        return self.proc

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # no clean shutdown: what a crash or an OOM kill does
            self.proc.wait(timeout=30)
        self.proc = None


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[_Daemon]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    d = _Daemon(home, tmp_path / "defs.py")
    yield d
    d.kill()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_run_sensor_under_the_daemon_launches_once_across_a_kill(database_url, tmp_path, daemon):
    storage_root = str(tmp_path / "blobs")
    daemon.defs.write_text(textwrap.dedent(_DEFS).format(
        sensor=_SENSOR, database_url=database_url, storage_root=storage_root
    ))
    resource = WandbResource(database_url=database_url, storage_root=storage_root, entity="tester", project="pipelines")

    def train(accuracy: float) -> str:
        run = wandb.init(settings=resource._settings(), job_type="train", reinit="create_new")
        run.log({"accuracy": accuracy})
        run.finish()
        return run.id

    good = train(0.95)
    train(0.5)  # below the threshold: never launches anything

    instance = dg.DagsterInstance.from_config(str(daemon.home))

    def runs() -> list[Any]:
        return list(instance.get_runs(filters=dg.RunsFilter(tags={"dagster/sensor_name": _SENSOR})))

    def state() -> Any:
        found = [s for s in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR) if s.name == _SENSOR]
        return found[0] if found else None

    def ticks() -> int:
        s = state()
        return len(instance.get_ticks(s.instigator_origin_id, s.selector_id)) if s else 0

    try:
        proc = daemon.start()
        [first] = _wait("the first run", runs, proc, daemon.log)
        assert first.tags["wandb/run_id"] == good and first.tags["wandb/run_state"] == "finished"
        assert first.tags["dagster/run_key"] == first.tags["wandb/event_id"]
        _wait("the run to succeed", lambda: instance.get_run_by_id(first.run_id).status == dg.DagsterRunStatus.SUCCESS,
              proc, daemon.log)
        seen = ticks()
        _wait("two more ticks", lambda: ticks() >= seen + 2, proc, daemon.log)
        assert len(runs()) == 1

        # Kill the daemon, and lose the sensor's cursor (a tick that launched its runs but whose cursor was
        # never saved): the restarted daemon reads the feed from the beginning again.
        daemon.kill()
        old = state()
        instance.update_instigator_state(old.with_data(old.instigator_data._replace(cursor=None)))
        proc = daemon.start()
        seen = ticks()
        _wait("ticks after the restart", lambda: ticks() >= seen + 3, proc, daemon.log)
        assert [r.run_id for r in runs()] == [first.run_id]  # the replayed event's run_key was not launched again
        assert state().instigator_data.cursor  # the replay saved a cursor again

        # The restarted daemon still fires for new matching runs: once each.
        second = train(0.99)
        _wait("the second run", lambda: len(runs()) >= 2, proc, daemon.log)
        seen = ticks()
        _wait("two more ticks", lambda: ticks() >= seen + 2, proc, daemon.log)
        assert sorted(r.tags["wandb/run_id"] for r in runs()) == sorted([good, second])
    finally:
        daemon.kill()
        instance.dispose()
        Workspace.close_all()


_BACKFILL_DEFS = '''
import dagster as dg
from wandb_dagster.dagster import WandbArtifactIOManager, WandbResource


@dg.asset(partitions_def=dg.StaticPartitionsDefinition(["east", "north", "south"]),
          backfill_policy=dg.BackfillPolicy.single_run())
def counts(context: dg.AssetExecutionContext) -> dict:
    return {{key: len(key) for key in context.partition_keys}}


wandb = WandbResource(database_url={database_url!r}, storage_root={storage_root!r}, entity="tester", project="pipelines")
defs = dg.Definitions(assets=[counts], resources={{"wandb": wandb, "io_manager": WandbArtifactIOManager(wandb=wandb)}})
'''


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_single_run_backfill_under_the_daemon_writes_one_version_per_partition(database_url, tmp_path, daemon):
    import importlib.util

    from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
    from dagster._core.utils import make_new_backfill_id

    storage_root = str(tmp_path / "blobs")
    daemon.defs.write_text(textwrap.dedent(_BACKFILL_DEFS).format(database_url=database_url, storage_root=storage_root))
    spec = importlib.util.spec_from_file_location("backfill_defs", daemon.defs)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    instance = dg.DagsterInstance.from_config(str(daemon.home))
    try:
        backfill = PartitionBackfill.from_asset_partitions(
            backfill_id=make_new_backfill_id(), asset_graph=module.defs.resolve_asset_graph(),
            partition_names=["east", "north", "south"], asset_selection=[dg.AssetKey("counts")],
            backfill_timestamp=time.time(), tags={}, dynamic_partitions_store=instance, all_partitions=False,
            title=None, description=None, run_config=None,
        )
        instance.add_backfill(backfill)
        proc = daemon.start()
        done = (BulkActionStatus.COMPLETED_SUCCESS, BulkActionStatus.COMPLETED_FAILED, BulkActionStatus.FAILED)
        status = _wait("the backfill to complete", lambda: (s := instance.get_backfill(backfill.backfill_id).status)
                       in done and s, proc, daemon.log, timeout=300)
        runs = list(instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill.backfill_id})))
        assert status == BulkActionStatus.COMPLETED_SUCCESS, [r.status for r in runs]
        assert len(runs) == 1  # one run for the three partitions
        records = instance.fetch_materializations(dg.AssetKey("counts"), limit=10).records
        named = {r.asset_materialization.partition: r.asset_materialization.metadata["wandb/artifact"].value
                 for r in records}
        assert sorted(named) == ["east", "north", "south"] and len(set(named.values())) == 3
        resource = module.wandb
        for partition, name in named.items():
            art = resource.artifact(name)
            assert art.metadata["dagster"]["partition"] == partition
            assert art.logged_by().group == runs[0].run_id  # the one Dagster run's tracking run
    finally:
        daemon.kill()
        instance.dispose()
        Workspace.close_all()
