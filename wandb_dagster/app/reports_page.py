"""The reports pages: ``/{entity}/{project}/reports`` lists a project's saved reports, and
``/{entity}/{project}/reports/{Title}--{id}`` shows one (W&B's URL form; the id decides, so a link with an
old title still opens the report); ``.../{Title}--{id}/html`` downloads it as one self-contained file, and
``/api/reports/{entity}/{project}/{Title}--{id}/charts/{chart}?min=&max=`` gives a line plot's data for an x range
(the page fetches it when an x range is selected on a chart: the finer data, as W&B's charts do).

A report is rendered by ``wandb_dagster.reports.render`` (the same HTML that ``report.to_html`` writes into a
file); its line plots are drawn in the browser by ``WDCharts.line`` from the data embedded as JSON.
"""

from __future__ import annotations

import math
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from wandb_dagster.app.params import bad_request, not_found, path_names
from wandb_dagster.app.templating import render
from wandb_dagster.reports.render import render as render_report
from wandb_dagster.reports.render import standalone_html, zoomed_chart
from wandb_dagster.reports.report import from_record, report_id_from_url, slug


def _report(request: Request) -> tuple[Any, str, str]:
    entity, project = path_names(request, "entity", "project")
    api = request.app.state.api
    wanted = request.path_params["report"]
    try:
        report_id = report_id_from_url(f"{entity}/{project}/reports/{wanted}")
    except ValueError:
        raise not_found(f"{wanted!r} names no report: a report's path ends in <Title>--<id>") from None
    record = api._store.get_report(report_id)
    if record is None or (record.entity, record.project) != (entity, project):
        raise not_found(f"no report {report_id!r} in {entity}/{project}")
    return from_record(api, record), entity, project


def report_page(request: Request) -> Response:
    report, entity, project = _report(request)
    rendered = render_report(report, request.app.state.api, run_url=_run_url)
    data = {**rendered.data, "zoom": "/api/reports/" + report.path.replace("/reports/", "/", 1) + "/charts"}
    return render(request, "report.html", {
        "report": report, "body": rendered.body, "data": data,
        "entity": entity, "project": project, "export": f"/{report.path}/html",
    })  # fmt: skip


def report_file(request: Request) -> Response:
    """The report as ``report.to_html(path)`` writes it: one file that opens with no network."""
    report, _, _ = _report(request)
    page = standalone_html(report, request.app.state.api)
    filename = re.sub(r"[^A-Za-z0-9_.-]+", "-", report.title).strip("-") or "report"
    return HTMLResponse(page, headers={"Content-Disposition": f'attachment; filename="{filename}.html"'})


def reports_page(request: Request) -> Response:
    entity, project = path_names(request, "entity", "project")
    api = request.app.state.api
    reports = [
        {"title": r.title, "description": r.description, "updated_at": r.updated_at, "username": r.username,
         "href": f"/{entity}/{project}/reports/{slug(r.title)}--{r.id}"}
        for r in api._store.project_reports(entity, project)
    ]  # fmt: skip
    return render(request, "reports.html", {"reports": reports, "entity": entity, "project": project})


def chart_data(request: Request) -> Response:
    """A line plot of a report again, with only the points of ``min <= x <= max`` (a zoomed view)."""
    report, _, _ = _report(request)
    bounds = []
    for key in ("min", "max"):
        raw = request.query_params.get(key)
        try:
            value = None if raw in (None, "") else float(raw)
        except ValueError:
            raise bad_request(f"{key}={raw!r} is not a number") from None
        if value is not None and not math.isfinite(value):
            raise bad_request(f"{key}={raw!r} is not a finite number")
        bounds.append(value)
    try:
        spec = zoomed_chart(report, request.app.state.api, request.path_params["chart"], bounds[0], bounds[1])
    except ValueError as exc:
        raise not_found(str(exc)) from None
    return JSONResponse(spec)


def _run_url(run: Any) -> str:
    return f"/{run.entity}/{run.project}/runs/{run.id}"


routes = [
    Route("/{entity}/{project}/reports", reports_page, name="reports"),
    Route("/{entity}/{project}/reports/{report}", report_page, name="report"),
    Route("/{entity}/{project}/reports/{report}/html", report_file, name="report_file"),
    Route("/api/reports/{entity}/{project}/{report}/charts/{chart}", chart_data, name="report_chart"),
]
