"""``wandb.sweep`` and ``wandb.agent``: hyperparameter search over the workspace's store.

A sweep is a row of the store with its validated configuration (sdk/sweep_config.py). An agent runs trials
in its own process: it claims a suggestion (store ``claim_sweep_trial``: the next grid point no trial has
taken, or a random sample, recorded in the same transaction that finds it, so agents in other processes
or machines never get the same grid point and ``run_cap`` holds exactly), then calls ``function``, whose
``wandb.init()`` joins the trial's run: the sweep's entity and project, the claimed run id, and a config
holding the suggested values (over what ``init`` is given, as in W&B). A trial that raises is recorded as
failed and the agent goes on with the next one.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from wandb_dagster.sdk import init_args, sweep_config, wandb_setup
from wandb_dagster.sdk.workspace import Workspace

_log = logging.getLogger(__name__)
HEARTBEAT_TIMEOUT_ENV = "WANDB_DAGSTER_SWEEP_HEARTBEAT_TIMEOUT"


@dataclasses.dataclass(frozen=True)
class Trial:
    """The trial an agent is running in this process: what ``wandb.init()`` inside it joins."""

    sweep_pk: int
    sweep_id: str
    entity: str
    project: str
    run_id: str
    params: dict[str, Any]


# Set by agent() around each call of its function; read by init() (sdk/run.py).
current_trial: Trial | None = None


def _workspace(entity: str | None, project: str | None, settings: Any = None) -> tuple[Workspace, str, str]:
    defaults, settings = wandb_setup.for_init(settings)
    resolved = init_args.resolve_settings(
        settings, entity or defaults.get("entity"), project or defaults.get("project")
    )
    return Workspace.for_settings(resolved), resolved.entity, resolved.project


def sweep(
    sweep: Mapping[str, Any] | str | Path,
    entity: str | None = None,
    project: str | None = None,
    prior_runs: list[str] | None = None,
    settings: Any = None,
) -> str:
    """Create a sweep from a W&B sweep configuration (a dict, or a YAML file's path); returns its id.

    ``entity``/``project``: the arguments, else the configuration's ``entity``/``project`` keys, else the
    defaults (as for ``wandb.init``). ``prior_runs``: ids of existing runs of that project to count as runs
    of the sweep (they appear in ``Sweep.runs``; grid search still tries every point). An invalid
    configuration raises ValueError naming the key and the rule. ``settings`` (as ``wandb.init``'s; not in
    W&B's signature) names the workspace, for callers that hold their own (the Dagster integration).
    """
    config = sweep_config.validate(sweep_config.load(sweep))
    ws, entity, project = _workspace(entity or config.get("entity"), project or config.get("project"), settings)
    runs = []
    for run_id in prior_runs or []:
        record = ws.store.get_run(entity, project, run_id)
        if record is None:
            raise ValueError(
                f"prior_runs: run {entity}/{project}/{run_id} does not exist; pass ids of runs of {project!r}"
            )
        runs.append(record)
    sweep_id = init_args.new_run_id()
    created = ws.store.create_sweep(
        entity, project, sweep_id, name=config.get("name") or sweep_id, method=config["method"], config=config
    )
    if runs:
        ws.store.add_runs_to_sweep(created.pk, [run.pk for run in runs])
    return sweep_id


def _parse_sweep_id(sweep_id: str, entity: str | None, project: str | None) -> tuple[str, str | None, str | None]:
    # W&B accepts "id", "project/id" and "entity/project/id".
    if not isinstance(sweep_id, str) or not sweep_id.strip("/"):
        raise ValueError(f"sweep_id {sweep_id!r} is invalid: pass the id wandb.sweep() returned")
    parts = sweep_id.strip("/").split("/")
    if len(parts) == 1:
        return parts[0], entity, project
    if len(parts) == 2:
        return parts[1], entity, parts[0]
    if len(parts) == 3:
        return parts[2], parts[0], parts[1]
    raise ValueError(f"sweep_id {sweep_id!r} is invalid: use 'id', 'project/id' or 'entity/project/id'")


def _suggest(config: dict[str, Any], rng: random.Random) -> Callable[[list[Any]], tuple[int | None, dict] | None]:
    if config["method"] == "grid":
        points = sweep_config.grid_points(config)

        def next_grid_point(trials: list[Any]) -> tuple[int | None, dict] | None:
            taken = {trial.grid_index for trial in trials}
            for index, point in enumerate(points):
                if index not in taken:
                    return index, point
            return None

        return next_grid_point
    return lambda trials: (None, sweep_config.sample(config, rng))


def agent(
    sweep_id: str,
    function: Callable[[], Any] | None = None,
    entity: str | None = None,
    project: str | None = None,
    count: int | None = None,
    settings: Any = None,
) -> None:
    """Run trials of sweep ``sweep_id`` in this process until the search is done (grid), ``run_cap`` is
    reached, the sweep is no longer RUNNING, or ``count`` trials have run. Each trial calls ``function``,
    whose ``wandb.init()`` starts the trial's run (module docstring). While a trial runs the agent renews its
    heartbeat; the trial of an agent that died is crashed by the next claim after
    :func:`heartbeat_timeout_s`, and its grid point (or its place under run_cap) is handed out again.
    ``settings`` (as ``wandb.init``'s; not in W&B's signature) names the workspace, as for :func:`sweep`;
    ``function`` then passes the same settings to its ``wandb.init``."""
    global current_trial
    if function is None:
        raise ValueError(
            "agent(function=None) would run the sweep's 'program', which wandb_dagster does not run yet; pass the "
            "training function: wandb.agent(sweep_id, function=train)"
        )
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
        raise ValueError(f"count={count!r} must be a positive integer, or None for no limit")
    if current_trial is not None:
        raise RuntimeError("wandb.agent() was called inside a trial of another agent; run agents one at a time")
    sweep_id, entity, project = _parse_sweep_id(sweep_id, entity, project)
    ws, entity, project = _workspace(entity, project, settings)
    record = ws.store.get_sweep(entity, project, sweep_id)
    if record is None:
        raise ValueError(f"sweep {entity}/{project}/{sweep_id} does not exist; create it with wandb.sweep() first")
    suggest = _suggest(record.config, random.Random())
    timeout = heartbeat_timeout_s()
    declared = record.config.get("metric")
    metric = (declared["name"], declared["goal"]) if declared else None  # for the SWEEP_BEST_RUN event
    done = 0
    while count is None or done < count:
        trial = ws.store.claim_sweep_trial(
            record.pk, suggest, run_cap=record.config.get("run_cap"), run_id=init_args.new_run_id(),
            heartbeat_timeout_s=timeout,
        )
        if trial is None:
            current = ws.store.get_sweep(entity, project, sweep_id)
            if current is None or current.state != "RUNNING":
                return
            # Nothing free now, but another agent's trial is running: if its agent dies, its point comes
            # back after the heartbeat timeout, so wait and claim again (the sweep ends when none is left).
            time.sleep(min(1.0, timeout / 4))
            continue
        done += 1
        current_trial = Trial(record.pk, sweep_id, entity, project, trial.run_id, trial.params)
        beating = _Heartbeat(ws, trial.pk, timeout / 4)
        try:
            _run_trial(function, trial.run_id)
        finally:
            current_trial = None
            beating.stop()
            ws.store.end_sweep_trial(trial.pk, metric=metric)


def heartbeat_timeout_s() -> float:
    """Seconds without a heartbeat after which another agent marks a trial crashed (its agent died):
    ``WANDB_DAGSTER_SWEEP_HEARTBEAT_TIMEOUT``, default 120. Agents beat four times per timeout."""
    raw = os.environ.get(HEARTBEAT_TIMEOUT_ENV, "120")
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f"{HEARTBEAT_TIMEOUT_ENV}={raw!r} must be a positive number of seconds")
    return value


class _Heartbeat:
    """Renews a trial's heartbeat from a daemon thread while the trial's function runs."""

    def __init__(self, ws: Workspace, trial_pk: int, interval_s: float) -> None:
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ws, trial_pk, interval_s), name="wandb-dagster-sweep-heartbeat", daemon=True
        )
        self._thread.start()

    def _run(self, ws: Workspace, trial_pk: int, interval_s: float) -> None:
        while not self._stopped.wait(interval_s):
            try:
                if not ws.store.beat_sweep_trial(trial_pk):
                    return  # crashed by another agent (this one was too slow): nothing left to renew
            except Exception:
                # A missed beat (database busy or briefly unreachable) is retried at the next interval.
                _log.warning("could not renew the heartbeat of sweep trial %s", trial_pk, exc_info=True)

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()


def _run_trial(function: Callable[[], Any], run_id: str) -> None:
    from wandb_dagster.sdk.run import current_run

    try:
        function()
        failed = False
    except Exception:
        # W&B's agent logs the trial's exception and goes on with the next trial.
        _log.exception("a trial of the sweep raised; its run is marked failed and the agent goes on")
        failed = True
    run = current_run()
    # The trial's run, if the function started it and left it open (an exception, or no finish()).
    if run is not None and run.id == run_id:
        run.finish(exit_code=1 if failed else 0)
