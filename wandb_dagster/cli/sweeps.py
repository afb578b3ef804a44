"""``wandb-dagster sweep`` and ``wandb-dagster agent``: W&B's ``wandb sweep`` / ``wandb agent`` commands.

- ``wandb-dagster sweep config.yaml [--project P] [--entity E] [--name N]`` creates the sweep and says, as
  W&B's CLI does (on stderr), where it was created from, its id and the agent command to run; ``--json``
  prints ``{id, entity, project, path, state, url, agent_command}``.
- ``wandb-dagster sweep --pause|--resume|--stop|--cancel ID`` (``ID``, ``project/ID`` or
  ``entity/project/ID``) sets W&B's states: PAUSED (agents start no new trial), RUNNING, FINISHED (no new
  trials; running ones end), CANCELED (agents kill their running trials, which end ``killed``).
- ``wandb-dagster agent ID [--count N]`` runs trials of the sweep's ``program`` as subprocesses
  (sdk/sweeps.py), until the sweep ends or N trials ran; ``--json`` prints the trials it ran.
"""

from __future__ import annotations

from typing import Any

import click

from wandb_dagster.cli.commands import pass_out
from wandb_dagster.cli.main import Output, cli

# flag -> (allowed from, new state, what W&B's CLI says)
_TRANSITIONS = {
    "pause": (("RUNNING",), "PAUSED", "Pausing"),
    "resume": (("PAUSED",), "RUNNING", "Resuming"),
    "stop": (("RUNNING", "PAUSED"), "FINISHED", "Stopping"),
    "cancel": (("RUNNING", "PAUSED"), "CANCELED", "Cancelling"),
}


def _say(out: Output, line: str) -> None:
    # W&B's CLI writes these lines to stderr (wandb.termlog), keeping stdout for --json.
    if not out.as_json:
        click.echo(f"wandb-dagster: {line}", err=True)


def _find(sweep_path: str, entity: str | None, project: str | None) -> tuple[Any, Any]:
    from wandb_dagster.sdk import sweeps

    sweep_id, entity, project = sweeps._parse_sweep_id(sweep_path, entity, project)
    ws, entity, project = sweeps._workspace(entity, project)
    record = ws.store.get_sweep(entity, project, sweep_id)
    if record is None:
        raise ValueError(
            f"sweep {entity}/{project}/{sweep_id} does not exist; pass its id as 'wandb-dagster sweep' printed it, "
            "with --project (or entity/project/id)"
        )
    return ws, record


@cli.command("sweep")
@click.argument("config_or_sweep_id")
@click.option("--project", "-p", default=None, help="The project of the sweep. [env: WANDB_PROJECT]")
@click.option("--entity", "-e", default=None, help="The entity of the sweep. [env: WANDB_ENTITY]")
@click.option("--name", default=None, help="The sweep's name (overrides the configuration's).")
@click.option("--pause", "action", flag_value="pause", help="Pause the sweep ID: agents start no new runs.")
@click.option("--resume", "action", flag_value="resume", help="Resume the paused sweep ID.")
@click.option("--stop", "action", flag_value="stop", help="Stop the sweep ID: no new runs, running ones finish.")
@click.option("--cancel", "action", flag_value="cancel", help="Cancel the sweep ID: agents kill its running runs.")
@pass_out
def sweep_command(
    out: Output, config_or_sweep_id: str, project: str | None, entity: str | None, name: str | None,
    action: str | None,
) -> None:
    """Create a sweep from a YAML configuration, or change the state of sweep ID (W&B's ``wandb sweep``)."""
    from wandb_dagster.sdk import sweep_config, sweeps

    if action is not None:
        ws, record = _find(config_or_sweep_id, entity, project)
        allowed, state, verb = _TRANSITIONS[action]
        path = f"{record.entity}/{record.project}/{record.id}"
        if record.state not in allowed:
            raise ValueError(
                f"sweep {path} is {record.state}; --{action} applies to a sweep that is {' or '.join(allowed)}"
            )
        _say(out, f"{verb} sweep {path}")
        ws.store.set_sweep_state(record.pk, state)
        _say(out, "Done.")
        out.emit({"id": record.id, "path": path, "state": state}, f"{path} {state}")
        return
    config = sweep_config.load(config_or_sweep_id)
    if name:
        config["name"] = name
    _say(out, f"Creating sweep from: {config_or_sweep_id}")
    sweep_id = sweeps.sweep(config, entity=entity, project=project)
    ws, record = _find(sweep_id, entity or config.get("entity"), project or config.get("project"))
    path = f"{record.entity}/{record.project}/{record.id}"
    url = f"{ws.display_url}#/{record.entity}/{record.project}/sweeps/{record.id}"
    agent_command = f"wandb-dagster agent {path}"
    _say(out, f"Creating sweep with ID: {record.id}")
    _say(out, f"View sweep at: {url}")
    _say(out, f"Run sweep agent with: {agent_command}")
    out.emit(
        {"id": record.id, "entity": record.entity, "project": record.project, "path": path, "state": record.state,
         "url": url, "agent_command": agent_command},
        record.id,
    )  # fmt: skip


@cli.command("agent")
@click.argument("sweep_id")
@click.option("--project", "-p", default=None, help="The project of the sweep. [env: WANDB_PROJECT]")
@click.option("--entity", "-e", default=None, help="The entity of the sweep. [env: WANDB_ENTITY]")
@click.option("--count", default=None, type=click.IntRange(min=1), help="The most runs this agent starts.")
@pass_out
def agent_command(out: Output, sweep_id: str, project: str | None, entity: str | None, count: int | None) -> None:
    """Run trials of sweep SWEEP_ID: its program, once per suggestion (W&B's ``wandb agent``)."""
    from wandb_dagster.sdk import sweeps

    ws, record = _find(sweep_id, entity, project)
    before = {t.pk for t in ws.store.sweep_trials(record.pk)}
    _say(out, f"Starting wandb-dagster agent on sweep {record.entity}/{record.project}/{record.id}")
    sweeps.agent(f"{record.entity}/{record.project}/{record.id}", count=count)
    runs = {r.id: r for r in ws.store.sweep_runs(record.pk)}
    mine = []
    for trial in ws.store.sweep_trials(record.pk):
        if trial.pk in before:
            continue
        run = runs.get(trial.run_id)
        mine.append({"run_id": trial.run_id, "config": trial.params, "state": None if run is None else run.state})
    final = ws.store.get_sweep(record.entity, record.project, record.id)
    out.emit(
        {"sweep": record.id, "state": final.state if final else None, "runs": mine},
        lambda: "\n".join(f"{m['run_id']} {m['state']}" for m in mine) or "no runs",
    )
