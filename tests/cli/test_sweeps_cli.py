"""``wandb-dagster sweep`` / ``agent`` as subprocesses: W&B's CLI output, program trials with W&B's macros and
environment, and the sweep states (pause, resume, stop, cancel) that agents honour."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import Cli

# W&B docs ("Define a sweep configuration"; "Sweep configuration options", command): a program with the
# default command, and a command with macros (${args_no_hyphens} is what Hydra programs take).
TRAIN = '''
import json, os, sys, time
import wandb_dagster as wandb

with wandb.init() as run:
    for i in range(3):
        run.log({"loss": run.config["learning_rate"] * (3 - i)})
    record = {"argv": sys.argv[1:], "env": {k: os.environ.get(k) for k in ("WANDB_SWEEP_ID", "WANDB_RUN_ID",
              "WANDB_PROJECT", "WANDB_SWEEP_PARAM_PATH")}, "config": dict(run.config), "sweep_id": run.sweep_id}
    open(f"trial-{run.id}.json", "w").write(json.dumps(record))
    if os.environ.get("SLEEP_AFTER"):
        open(f"started-{run.id}", "w").write("")
        time.sleep(float(os.environ["SLEEP_AFTER"]))
'''

SWEEP_YAML = """\
program: train.py
name: sweepdemo
method: grid
metric:
  goal: minimize
  name: loss
parameters:
  learning_rate:
    values: [0.1, 0.01]
  optimizer:
    value: adam
"""


def _write(cli: Cli, command: str | None = None) -> str:
    (cli.cwd / "train.py").write_text(TRAIN)
    text = SWEEP_YAML + (f"command: {command}\n" if command else "")
    (cli.cwd / "sweep.yaml").write_text(text)
    return "sweep.yaml"


def _trials(cli: Cli) -> dict[str, dict]:
    return {p.name[6:-5]: json.loads(p.read_text()) for p in cli.cwd.glob("trial-*.json")}


def test_sweep_prints_the_id_as_wandb_and_agent_runs_the_program_per_trial(cli: Cli) -> None:
    created = cli("sweep", _write(cli), "--project", "demo")
    sweep_id = created.out.strip()
    assert len(sweep_id) == 8 and sweep_id.isalnum()
    assert f"Creating sweep with ID: {sweep_id}" in created.err
    assert f"Run sweep agent with: wandb-dagster agent tester/demo/{sweep_id}" in created.err
    ran = cli("--json", "agent", f"tester/demo/{sweep_id}").json()
    assert ran["sweep"] == sweep_id and ran["state"] == "FINISHED"
    assert [(r["config"]["learning_rate"], r["state"]) for r in ran["runs"]] == [(0.1, "finished"), (0.01, "finished")]
    trials = _trials(cli)
    assert set(trials) == {r["run_id"] for r in ran["runs"]}
    for run_id, trial in trials.items():
        # W&B's default command ${env} ${interpreter} ${program} ${args}, and W&B's environment.
        assert trial["argv"] == [f"--learning_rate={trial['config']['learning_rate']}", "--optimizer=adam"]
        assert trial["env"]["WANDB_SWEEP_ID"] == sweep_id and trial["env"]["WANDB_RUN_ID"] == run_id
        assert trial["env"]["WANDB_PROJECT"] == "demo" and trial["sweep_id"] == sweep_id
        param_file = Path(trial["env"]["WANDB_SWEEP_PARAM_PATH"])
        assert param_file == cli.cwd / "wandb" / f"sweep-{sweep_id}" / f"config-{run_id}.yaml"
        assert "learning_rate:\n  value:" in param_file.read_text()
    # The runs are the sweep's, as the Public API shows them (another process reading the workspace).
    code = (
        f"import wandb_dagster as wandb, json; s = wandb.Api().sweep('tester/demo/{sweep_id}'); "
        "print(json.dumps([s.state, sorted(r.config['learning_rate'] for r in s.runs), s.best_run().config['learning_rate']]))"
    )
    env = {**cli.env, "WANDB_DAGSTER_DATABASE_URL": cli.database_url}
    shown = subprocess.run([sys.executable, "-c", code], env=env, cwd=cli.cwd, capture_output=True, text=True, check=True)
    assert json.loads(shown.stdout) == ["FINISHED", [0.01, 0.1], 0.01]


def test_command_macros_expand_as_wandb(cli: Cli) -> None:
    command = '["${env}", "${interpreter}", "${program}", "${args_no_hyphens}", "--", "${args_json}", "${args_json_file}", "x${envvar:MY_VAR}y", "${unknown}"]'
    sweep_id = cli("sweep", _write(cli, command), "--project", "demo").out.strip()
    cli.env["MY_VAR"] = "42"
    result = cli("--json", "agent", sweep_id, "--project", "demo", "--count", "1").json()
    assert len(result["runs"]) == 1
    (trial,) = _trials(cli).values()
    lr = trial["config"]["learning_rate"]
    json_file = str(cli.cwd / "wandb" / f"sweep-{sweep_id}" / f"config-{result['runs'][0]['run_id']}.json")
    assert trial["argv"] == [
        f"learning_rate={lr}", "optimizer=adam", "--", json.dumps({"learning_rate": lr, "optimizer": "adam"}), json_file,
        "x42y",
    ]
    assert json.loads(Path(json_file).read_text()) == {"learning_rate": lr, "optimizer": "adam"}


def test_pause_resume_stop_and_invalid_transitions(cli: Cli) -> None:
    sweep_id = cli("sweep", _write(cli), "--project", "demo").out.strip()
    path = f"tester/demo/{sweep_id}"
    paused = cli("--json", "sweep", "--pause", path).json()
    assert paused == {"id": sweep_id, "path": path, "state": "PAUSED"}
    again = cli("sweep", "--pause", path, check=False)
    assert again.code == 1 and "is PAUSED; --pause applies to a sweep that is RUNNING" in again.err
    assert cli("--json", "sweep", "--resume", sweep_id, "--project", "demo").json()["state"] == "RUNNING"
    assert cli("--json", "sweep", "--stop", path).json()["state"] == "FINISHED"
    # A FINISHED sweep gets no new trials: the agent returns at once.
    assert cli("--json", "agent", path).json()["runs"] == []
    missing = cli("agent", "tester/demo/nosuchid", check=False)
    assert missing.code == 1 and "sweep tester/demo/nosuchid does not exist" in missing.err


def _background_agent(cli: Cli, path: str, env: dict[str, str]) -> subprocess.Popen:
    ws = ["--database-url", cli.database_url, "--storage", str(cli.storage)]
    return subprocess.Popen(
        [sys.executable, "-m", "wandb_dagster", *ws, "--json", "agent", path], cwd=cli.cwd, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _wait_for(predicate, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_paused_sweep_waits_and_cancel_kills_the_running_trial(cli: Cli) -> None:
    sweep_id = cli("sweep", _write(cli), "--project", "demo").out.strip()
    path = f"tester/demo/{sweep_id}"
    cli("sweep", "--pause", path)
    env = {**cli.env, "SLEEP_AFTER": "600", "WANDB_DAGSTER_SWEEP_POLL_INTERVAL": "0.2"}
    agent = _background_agent(cli, path, env)
    try:
        time.sleep(2)
        assert agent.poll() is None and not list(cli.cwd.glob("started-*"))  # paused: waiting, no trial
        cli("sweep", "--resume", path)
        _wait_for(lambda: list(cli.cwd.glob("started-*")))  # the first trial runs (and sleeps)
        cli("sweep", "--cancel", path)
        out, err = agent.communicate(timeout=60)
    finally:
        if agent.poll() is None:
            agent.kill()
    assert agent.returncode == 0, err
    result = json.loads(out)
    assert result["state"] == "CANCELED"
    # W&B: cancelling kills the running runs; their state is killed. No second trial started.
    assert [(r["config"]["learning_rate"], r["state"]) for r in result["runs"]] == [(0.1, "killed")]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_hyperband_stops_a_program_trial_that_falls_behind(cli: Cli) -> None:
    # W&B docs' early_terminate example (min_iter 3, eta 3: bands 3, 9, 27...). The first trial reaches a low
    # loss; the second logs a worse value at band 3 and is stopped there: SIGTERM, its run killed.
    program = '''
import os, time
import wandb_dagster as wandb
with wandb.init() as run:
    for step in range(60):
        run.log({"loss": run.config["start"] + step})
        time.sleep(0.0 if run.config["start"] == 0 else 0.25)
'''
    (cli.cwd / "curve.py").write_text(program)
    (cli.cwd / "hb.yaml").write_text(
        "program: curve.py\nmethod: grid\nmetric: {name: loss, goal: minimize}\n"
        "early_terminate: {type: hyperband, min_iter: 3}\nparameters:\n  start: {values: [0, 100]}\n"
    )
    sweep_id = cli("sweep", "hb.yaml", "--project", "demo").out.strip()
    cli.env["WANDB_DAGSTER_SWEEP_POLL_INTERVAL"] = "0.2"
    result = cli("--json", "agent", f"tester/demo/{sweep_id}").json()
    assert [(r["config"]["start"], r["state"]) for r in result["runs"]] == [(0, "finished"), (100, "killed")]
