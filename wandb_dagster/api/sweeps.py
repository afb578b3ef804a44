"""``Api().sweep(path)``: a sweep as W&B's public API shows it, with its runs and its best run."""

from __future__ import annotations

from typing import Any

from wandb_dagster.sdk import sweep_config
from wandb_dagster.sdk.workspace import Workspace
from wandb_dagster.store.records import SweepRecord
from wandb_dagster.store.scope import Scope


class Sweep:
    """A sweep (``wandb.sweep``): ``id``, ``name``, ``config`` (the configuration as validated, every
    parameter with its distribution), ``state`` (RUNNING, PAUSED, FINISHED or CANCELED, as W&B's), ``runs``,
    :meth:`best_run`, ``expected_run_count`` and ``url``."""

    def __init__(self, ws: Workspace, record: SweepRecord) -> None:
        self._ws = ws
        self._record = record
        self.id: str = record.id
        self.entity: str = record.entity
        self.project: str = record.project
        self.config: dict[str, Any] = dict(record.config)
        self.state: str = record.state
        self.name: str = record.name or record.id

    @property
    def path(self) -> list[str]:
        return [self.entity, self.project, self.id]

    @property
    def url(self) -> str:
        """The sweep's page in the web app, ``<app>/<entity>/<project>/sweeps/<id>``, as ``run.url``."""
        return self._ws.page_url(self.entity, self.project, "sweeps", self.id)

    @property
    def runs(self) -> list[Any]:
        """The sweep's runs, oldest first (read when asked, so a running sweep shows its new trials)."""
        from wandb_dagster.api.objects import Run

        return [Run(self._ws, record) for record in self._ws.store.sweep_runs(self._record.pk)]

    @property
    def order(self) -> str | None:
        """The runs' order the metric implies (``-summary_metrics.<name>`` to maximize), or None."""
        metric = self.config.get("metric")
        if not metric:
            return None
        sign = "-" if metric.get("goal") == "maximize" else "+"
        return f"{sign}summary_metrics.{metric['name']}"

    @property
    def expected_run_count(self) -> int | None:
        """How many runs the sweep makes: the grid's size (at most ``run_cap``), ``run_cap``, or None when
        it has no end (random search without a cap), as W&B's."""
        cap = self.config.get("run_cap")
        if self.config.get("method") == "grid":
            size = len(sweep_config.grid_points(self.config))
            return size if cap is None else min(size, cap)
        return cap if isinstance(cap, int) else None

    def best_run(self, order: str | None = None) -> Any:
        """The first run in ``order`` (an ``Api.runs`` order such as ``"-summary_metrics.acc"``; default:
        the metric's goal, among the runs that logged the metric; without a metric, the newest run), or
        None when the sweep has no such run."""
        from wandb_dagster.api.objects import Run

        filters: dict[str, Any] = {"sweep": self.id}
        if order is None and self.order is not None:
            order = self.order
            # A run that never logged the metric is not a candidate (ascending order puts it first).
            filters = {"$and": [filters, {order[1:]: {"$exists": True}}]}
        store = self._ws.store
        query = store.query(
            "runs", Scope(entity=self.entity, project=self.project), [("run", filters)], order=order or "-created_at"
        )
        records, _ = store.page(query, after=None, limit=1)
        return Run(self._ws, records[0]) if records else None

    def __repr__(self) -> str:
        return f"<Sweep {'/'.join(self.path)} ({self.state})>"
