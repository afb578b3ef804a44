"""The ``wandb-dagster`` command line (also ``python -m wandb_dagster``), built with click.

Imported only by the console script: ``import wandb_dagster`` never imports click. Every command takes the
workspace options (``--database-url``, ``--storage``, ``--storage-options``; or the usual
``WANDB_DAGSTER_*`` environment), ``--json`` for machine-readable output, and fails with one line on
stderr and a non-zero exit code. The commands are listed in the README ("Command line").

Example::

    $ wandb-dagster artifact put ./data --name me/bikes/dataset --type dataset --alias best
    $ wandb-dagster --json gc --dry-run
"""

from __future__ import annotations

from wandb_dagster.cli import commands as _commands  # noqa: F401  (registers the commands on `cli`)
from wandb_dagster.cli import sweeps as _sweeps  # noqa: F401  (the sweep and agent commands)
from wandb_dagster.cli.main import cli, main

__all__ = ["cli", "main"]
