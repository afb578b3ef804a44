"""``wandb.sweep`` and ``wandb.agent``: hyperparameter search over the workspace's store.

A sweep is a row of the store with its validated configuration (sdk/sweep_config.py). An agent runs trials
in its own process: it claims a suggestion (store ``claim_sweep_trial``: the next grid point no trial has
taken, or a random sample, recorded in the same transaction that finds it, so agents in other processes
or machines never get the same grid point and ``run_cap`` holds exactly), then calls ``function``, whose
``wandb.init()`` joins the trial's run: the sweep's entity and project, the claimed run id, and a config
holding the suggested values (over what ``init`` is given, as in W&B). A trial that raises is recorded as
failed and the agent goes on with the next one.

Without ``function`` (``wandb.agent(sweep_id)``, ``wandb-dagster agent SWEEP_ID``) each trial runs the
configuration's ``program`` as a subprocess, through its ``command`` with W&B's macros (sdk/sweep_command.py)
and the environment W&B's agent sets (``WANDB_SWEEP_ID``, ``WANDB_RUN_ID``...), so that ``wandb.init()`` in
the program joins the trial (:func:`trial_from_env`).

While a trial runs, a monitor thread renews its heartbeat, applies hyperband early termination (the
decision recorded in the store under the sweep's lock, sdk/sweep_hyperband.py) and watches the sweep's
state: a trial to stop, or any trial of a CANCELED sweep, is stopped (a program gets SIGTERM, then SIGKILL
after ``WANDB_AGENT_KILL_DELAY`` seconds, 30 by default, as W&B's agent; a canceled sweep's at once; a
function's next ``run.log`` raises :class:`TrialStopped`) and its run ends ``killed``, W&B's state for a run
forcibly stopped. A PAUSED sweep gets no new trials until it is resumed; a FINISHED (``--stop``) one lets
running trials end and then the agents return.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from wandb_dagster.sdk import init_args, sweep_config, wandb_setup
from wandb_dagster.sdk.workspace import Workspace

_log = logging.getLogger(__name__)
HEARTBEAT_TIMEOUT_ENV = "WANDB_DAGSTER_SWEEP_HEARTBEAT_TIMEOUT"
POLL_INTERVAL_ENV = "WANDB_DAGSTER_SWEEP_POLL_INTERVAL"
KILL_DELAY_ENV = "WANDB_AGENT_KILL_DELAY"  # W&B's name and default (30 s)
_HYPERBAND_EVERY_S = 2.0


class TrialStopped(BaseException):
    """Raised by ``run.log`` in a trial that early termination stopped or whose sweep was canceled. A
    BaseException, as W&B's shutdown signal, so that a training loop's ``except Exception`` lets it through."""


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


def _prior_configs(ws: Workspace, sweep_pk: int) -> list[dict[str, Any]]:
    """The configs of the sweep's runs that are not its trials' (``prior_runs``)."""
    trial_runs = {trial.run_id for trial in ws.store.sweep_trials(sweep_pk)}
    return [run.config for run in ws.store.sweep_runs(sweep_pk) if run.id not in trial_runs]


def _suggest(
    config: dict[str, Any], rng: random.Random, prior: list[dict[str, Any]] | None = None, seed: int | None = None
) -> Callable[[list[Any]], tuple[int | None, dict] | None]:
    """The store claim's ``suggest`` for a validated configuration: the next grid point no trial and no
    prior run took, a random sample, or (bayes) Optuna's suggestion from the trials the claim reads.
    With ``metric.target``, nothing once an ended trial reached it (W&B: no new runs; running ones end)."""
    search = _search(config, rng, prior, seed)
    metric = config.get("metric") or {}
    if "target" not in metric:
        return search
    target, maximize = metric["target"], metric.get("goal") == "maximize"

    def until_target(trials: list[Any]) -> tuple[int | None, dict] | None:
        for trial in trials:
            if trial.value is not None and (trial.value >= target if maximize else trial.value <= target):
                return None
        return search(trials)

    return until_target


def _search(
    config: dict[str, Any], rng: random.Random, prior: list[dict[str, Any]] | None, seed: int | None
) -> Callable[[list[Any]], tuple[int | None, dict] | None]:
    if config["method"] == "grid":
        points = sweep_config.grid_points(config)
        # W&B's grid search skips the points a prior run already tried (it compares values).
        covered = sweep_config.grid_indices_covered(config, prior or [])

        def next_grid_point(trials: list[Any]) -> tuple[int | None, dict] | None:
            taken = {trial.grid_index for trial in trials} | covered
            for index, point in enumerate(points):
                if index not in taken:
                    return index, point
            return None

        return next_grid_point
    if config["method"] == "bayes":
        from wandb_dagster.sdk import sweep_bayes

        return sweep_bayes.suggester(config, seed=seed)
    return lambda trials: (None, sweep_config.sample(config, rng))


def _positive_float_env(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f"{name}={raw!r} must be a positive number of seconds")
    return value


def agent(
    sweep_id: str,
    function: Callable[[], Any] | None = None,
    entity: str | None = None,
    project: str | None = None,
    count: int | None = None,
    settings: Any = None,
) -> None:
    """Run trials of sweep ``sweep_id`` in this process until the search is done (grid), ``run_cap`` is
    reached, the sweep is FINISHED or CANCELED, or ``count`` trials have run (a PAUSED sweep is waited
    for). Each trial calls ``function``, whose ``wandb.init()`` starts the trial's run, or, without
    ``function``, runs the configuration's ``program`` as a subprocess (module docstring). While a trial runs
    the agent renews its heartbeat; the trial of an agent that died is crashed by the next claim after
    :func:`heartbeat_timeout_s`, and its grid point (or its place under run_cap) is handed out again.
    ``settings`` (as ``wandb.init``'s; not in W&B's signature) names the workspace, as for :func:`sweep`;
    ``function`` then passes the same settings to its ``wandb.init``.

        >>> wandb.agent(sweep_id, function=train, count=5)   # doctest: +SKIP
    """
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
        raise ValueError(f"count={count!r} must be a positive integer, or None for no limit")
    if current_trial is not None:
        raise RuntimeError("wandb.agent() was called inside a trial of another agent; run agents one at a time")
    sweep_id, entity, project = _parse_sweep_id(sweep_id, entity, project)
    ws, entity, project = _workspace(entity, project, settings)
    record = ws.store.get_sweep(entity, project, sweep_id)
    if record is None:
        raise ValueError(f"sweep {entity}/{project}/{sweep_id} does not exist; create it with wandb.sweep() first")
    if function is None and not record.config.get("program") and not record.config.get("command"):
        raise ValueError(
            f"sweep {sweep_id} has no 'program' to run; pass the training function, wandb.agent(sweep_id, "
            "function=train), or create the sweep with 'program: train.py'"
        )
    suggest = _suggest(record.config, random.Random(), _prior_configs(ws, record.pk))
    timeout = heartbeat_timeout_s()
    poll_s = _positive_float_env(POLL_INTERVAL_ENV, min(1.0, timeout / 4))
    declared = record.config.get("metric")
    metric = (declared["name"], declared["goal"]) if declared else None  # value and SWEEP_BEST_RUN
    done = 0
    while count is None or done < count:
        trial = ws.store.claim_sweep_trial(
            record.pk, suggest, run_cap=record.config.get("run_cap"), run_id=init_args.new_run_id(),
            heartbeat_timeout_s=timeout,
        )
        if trial is None:
            current = ws.store.get_sweep(entity, project, sweep_id)
            if current is None or current.state not in ("RUNNING", "PAUSED"):
                return
            # Paused, or nothing free now while another agent's trial runs (if its agent dies, its point
            # comes back after the heartbeat timeout): wait and claim again.
            time.sleep(poll_s)
            continue
        done += 1
        monitor = _Monitor(ws, record, trial.pk, trial.run_id, timeout / 4, poll_s)
        end_state: str | None = "failed"  # if the agent itself fails (Ctrl-C, a bug): the trial is not left running
        try:
            if function is not None:
                joined = Trial(record.pk, sweep_id, entity, project, trial.run_id, trial.params)
                stopped = _run_function_trial(function, joined, monitor)
                end_state = "killed" if stopped else None
            else:
                end_state = _run_program_trial(ws, record, trial, entity, project, monitor)
        finally:
            monitor.stop()
            ws.store.end_sweep_trial(trial.pk, metric=metric, run_state=end_state)
        if monitor.canceled:
            return


class _Monitor:
    """A daemon thread beside a running trial: renews its heartbeat every ``beat_s``, and every ``poll_s``
    applies hyperband (when configured) and reads whether the trial is to stop (``stop_requested``) or the
    sweep was canceled (``canceled``)."""

    def __init__(self, ws: Workspace, sweep: Any, trial_pk: int, run_id: str, beat_s: float, poll_s: float) -> None:
        self.stop_requested = threading.Event()
        self.canceled = False
        self._ws, self._sweep, self._trial_pk, self._run_id = ws, sweep, trial_pk, run_id
        self._beat_s, self._poll_s = beat_s, poll_s
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wandb-dagster-sweep-monitor", daemon=True)
        self._thread.start()

    def _hyperband(self) -> None:
        config = self._sweep.config
        if "early_terminate" not in config:
            return
        from wandb_dagster.sdk import sweep_hyperband

        store, name = self._ws.store, config["metric"]["name"]
        # A read first: the sweep's lock is taken only when some running trial is to stop (W&B's rule is
        # evaluated again under the lock, on what is committed then).
        running = {t.run_id for t in store.sweep_trials(self._sweep.pk) if t.state == "running"}
        if running and sweep_hyperband.to_stop(config, store.sweep_metric_histories(self._sweep.pk, name), running):
            store.stop_sweep_trials(
                self._sweep.pk, name, lambda histories, live: sweep_hyperband.to_stop(config, histories, live)
            )

    def _run(self) -> None:
        last_beat = last_hyperband = time.monotonic()
        while not self._stopped.wait(self._poll_s):
            try:
                if time.monotonic() - last_beat >= self._beat_s:
                    last_beat = time.monotonic()
                    if not self._ws.store.beat_sweep_trial(self._trial_pk):
                        return  # crashed by another agent (this one was too slow): nothing left to renew
                # Hyperband reads every run's history: not more often than runs flush theirs (every 2 s).
                if time.monotonic() - last_hyperband >= min(_HYPERBAND_EVERY_S, 4 * self._poll_s):
                    last_hyperband = time.monotonic()
                    self._hyperband()
                state, sweep_state = self._ws.store.poll_sweep_trial(self._trial_pk)
                if sweep_state == "CANCELED":
                    self.canceled = True
                if state == "stopping" or self.canceled:
                    self.stop_requested.set()
            except Exception:
                # A missed beat or poll (database busy or briefly unreachable) is retried at the next one.
                _log.warning("could not check on sweep trial %s", self._trial_pk, exc_info=True)

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()


def heartbeat_timeout_s() -> float:
    """Seconds without a heartbeat after which another agent marks a trial crashed (its agent died):
    ``WANDB_DAGSTER_SWEEP_HEARTBEAT_TIMEOUT``, default 120. Agents beat four times per timeout."""
    return _positive_float_env(HEARTBEAT_TIMEOUT_ENV, 120.0)


# The monitor of the trial running in this process (read by Run.log to raise TrialStopped).
_current_monitor: _Monitor | None = None


def check_stop(run_id: str) -> None:
    """Called by ``run.log`` of the trial's run: raise :class:`TrialStopped` when its trial is to stop."""
    monitor = _current_monitor
    if monitor is not None and monitor._run_id == run_id and monitor.stop_requested.is_set():
        reason = "its sweep was canceled" if monitor.canceled else "hyperband early termination stopped it"
        raise TrialStopped(f"run {run_id} is stopped: {reason}")


def _run_function_trial(function: Callable[[], Any], trial: Trial, monitor: _Monitor) -> bool:
    """Run one trial's function in this process; True when it was stopped (early termination, cancel)."""
    global current_trial, _current_monitor
    from wandb_dagster.sdk.run import current_run

    current_trial, _current_monitor = trial, monitor
    stopped = failed = False
    try:
        function()
    except TrialStopped:
        stopped = True
    except Exception:
        # W&B's agent logs the trial's exception and goes on with the next trial.
        _log.exception("a trial of the sweep raised; its run is marked failed and the agent goes on")
        failed = True
    finally:
        current_trial, _current_monitor = None, None
    stopped = stopped or monitor.stop_requested.is_set() and failed
    run = current_run()
    # The trial's run, if the function started it and left it open (an exception, or no finish()).
    if run is not None and run.id == trial.run_id:
        run.finish(exit_code=1 if failed or stopped else 0)
    return stopped


def _run_program_trial(ws: Workspace, sweep: Any, trial: Any, entity: str, project: str, monitor: _Monitor) -> str:
    """Run one trial's program as a subprocess (W&B's agent: the command with its macros expanded, the
    environment naming the sweep and the run); the state its run ends in if the program left it running:
    finished (exit 0), failed, or killed when it was stopped."""
    from wandb_dagster.sdk import sweep_command

    env = dict(os.environ)
    base_dir = env.get("WANDB_DIR") or os.getcwd()
    command, files = sweep_command.build(
        sweep.config, trial.params, sweep_id=sweep.id, run_id=trial.run_id, base_dir=base_dir
    )
    env.update(
        WANDB_SWEEP_ID=sweep.id, WANDB_RUN_ID=trial.run_id, WANDB_ENTITY=entity, WANDB_PROJECT=project,
        WANDB_DIR=base_dir, WANDB_SWEEP_PARAM_PATH=files["param_path"],
    )
    # The program joins this workspace whichever way the agent found it.
    env.setdefault("WANDB_DAGSTER_DATABASE_URL", ws.url)
    # What W&B's agent says before each run (on stderr, as its log handler writes).
    lines = "".join(f"\n\t{k}: {v}" for k, v in trial.params.items())
    print(f"wandb-dagster: Agent Starting Run: {trial.run_id} with config:{lines}", file=sys.stderr, flush=True)
    _log.info("sweep %s: running trial %s: %s", sweep.id, trial.run_id, " ".join(command))
    try:
        proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, start_new_session=True)
    except OSError as error:
        _log.error("sweep %s: could not start %s: %s", sweep.id, command, error)
        return "failed"
    kill_delay = _positive_float_env(KILL_DELAY_ENV, 30.0)
    terminated_at: float | None = None
    while True:
        try:
            code = proc.wait(timeout=monitor._poll_s)
            break
        except subprocess.TimeoutExpired:
            pass
        if monitor.stop_requested.is_set():
            if monitor.canceled:  # W&B: cancel kills the runs at once
                _signal(proc, signal.SIGKILL)
            elif terminated_at is None:
                terminated_at = time.monotonic()
                _signal(proc, signal.SIGTERM)
            elif time.monotonic() - terminated_at > kill_delay:
                _signal(proc, signal.SIGKILL)
    if monitor.stop_requested.is_set():
        return "killed"
    return "finished" if code == 0 else "failed"


def _signal(proc: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(proc.pid, signum)  # the program's children too (it runs in its own session)
    except (ProcessLookupError, PermissionError):
        pass


def trial_from_env() -> Trial | None:
    """The trial a program started by an agent belongs to: ``WANDB_SWEEP_ID`` and ``WANDB_RUN_ID`` set (as
    W&B's agent sets them) name a claimed trial of this workspace. None outside sweeps."""
    sweep_id, run_id = os.environ.get("WANDB_SWEEP_ID"), os.environ.get("WANDB_RUN_ID")
    if not sweep_id or not run_id:
        return None
    ws, entity, project = _workspace(None, None)
    record = ws.store.get_sweep(entity, project, sweep_id)
    trial = None
    if record is not None:
        trial = next((t for t in ws.store.sweep_trials(record.pk) if t.run_id == run_id), None)
    if record is None or trial is None:
        warnings.warn(
            f"WANDB_SWEEP_ID={sweep_id!r} names no trial of run {run_id!r} in {entity}/{project}; the run is "
            "started outside the sweep (start programs with wandb-dagster agent)",
            stacklevel=3,
        )
        return None
    return Trial(record.pk, sweep_id, entity, project, run_id, trial.params)
