"""Imports into a workspace from W&B's and TensorBoard's own files: ``wandb-dagster sync``.

    >>> from wandb_dagster.sdk.imports import sync_wandb_runs, sync_tensorboard
    >>> sync_wandb_runs(["wandb/"])                                  # doctest: +SKIP
    >>> sync_tensorboard("runs/exp1", project="bikes")               # doctest: +SKIP

Each importer reads its source with that tool's own reader (the wandb package's transaction-log reader,
TensorBoard's event accumulator), both optional (the ``wandb-import`` extra) and imported only when used.
Importing the same source again creates nothing new.
"""

from __future__ import annotations

from wandb_dagster.sdk.imports._writer import ImportReport, SourceError
from wandb_dagster.sdk.imports.tensorboard import sync_tensorboard
from wandb_dagster.sdk.imports.wandb_offline import find_run_folders, sync_wandb_runs

__all__ = ["ImportReport", "SourceError", "find_run_folders", "sync_tensorboard", "sync_wandb_runs"]
