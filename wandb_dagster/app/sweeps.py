"""The sweep pages, at W&B's paths: ``/{entity}/{project}/sweeps`` (the project's sweeps) and
``/{entity}/{project}/sweeps/{sweep_id}`` (a sweep's configuration, state, runs and best run)."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from wandb_dagster.app.artifacts import run_url, seg
from wandb_dagster.app.params import not_found, path_names
from wandb_dagster.app.templating import render

MAX_RUNS = 1000  # a sweep's runs shown on its page


def sweep_url(entity: str, project: str, sweep_id: str) -> str:
    return f"/{seg(entity)}/{seg(project)}/sweeps/{seg(sweep_id)}"


def sweeps_page(request: Request) -> Response:
    entity, project = path_names(request, "entity", "project")
    api = request.app.state.api
    found = api.project(project, entity)
    if found.created_at is None:
        raise not_found(f"no project {entity}/{project} in this workspace")
    context = {"entity": entity, "project": project, "sweeps": found.sweeps(), "sweep_url": sweep_url}
    return render(request, "sweeps.html", context)


def _lookup(summary: Any, dotted: str) -> Any:
    value = summary
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def sweep_page(request: Request) -> Response:
    entity, project, sweep_id = path_names(request, "entity", "project", "sweep_id")
    api = request.app.state.api
    try:
        sweep = api.sweep(f"{entity}/{project}/{sweep_id}")
    except (LookupError, ValueError):
        raise not_found(f"no sweep {entity}/{project}/{sweep_id}") from None
    metric = sweep.config.get("metric") or {}
    metric_name = metric.get("name") if isinstance(metric, dict) else None
    parameters = sorted((sweep.config.get("parameters") or {}).keys())
    runs = sweep.runs
    rows = [
        {
            "run": run, "url": run_url(run.entity, run.project, run.id),
            "params": [run.config.get(p) for p in parameters],
            "metric": None if metric_name is None else _lookup(run.summary_metrics, metric_name),
        }
        for run in runs[:MAX_RUNS]
    ]  # fmt: skip
    try:
        best = sweep.best_run()
    except ValueError:
        # A metric name the runs query cannot order by (the sweep config holds any string): no best run to
        # show, rather than no page.
        best = None
    context = {
        "entity": entity, "project": project, "sweep": sweep, "rows": rows, "total": len(runs), "limit": MAX_RUNS,
        "parameters": parameters, "metric_name": metric_name, "goal": metric.get("goal") if metric_name else None,
        "best": best, "best_url": None if best is None else run_url(best.entity, best.project, best.id),
        "best_metric": None if best is None or metric_name is None else _lookup(best.summary_metrics, metric_name),
        "config_json": json.dumps(sweep.config, indent=2, sort_keys=True, default=str),
        "expected": sweep.expected_run_count,
    }  # fmt: skip
    return render(request, "sweep.html", context)


routes = [
    Route("/{entity}/{project}/sweeps", sweeps_page, name="sweeps"),
    Route("/{entity}/{project}/sweeps/{sweep_id}", sweep_page, name="sweep"),
]
