"""Run pages: the runs table of a project, the run page, comparing runs, and their JSON and file routes.

    /{entity}/{project}                          runs table (?filters=<Mongo JSON>&order=&columns=&cursor=)
    /{entity}/{project}/runs/{run_id}            run page
    /{entity}/{project}/compare?runs=a,b         the runs overlaid on each chart (also ?run=a&run=b)
    /{entity}/{project}/runs/{run_id}/files/{name}   a file the run saved (download)
    /{entity}/{project}/runs/{run_id}/media/{hex}    a media blob the run names (images inline)
    /api/runs/{entity}/{project}/{run_id}/history    downsampled history (?keys=&min_step=&max_step=&points=
                                                     &quick=1: evenly spaced rows, for a first drawing)
    /api/runs/{entity}/{project}/{run_id}/system     downsampled system metrics
"""

from __future__ import annotations

import json
import mimetypes
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wandb_dagster.api import history
from wandb_dagster.app.params import bad_request, digest, int_param, name, not_found, path_names
from wandb_dagster.app.templating import render

PER_PAGE = 50
MAX_PER_PAGE = 500
MAX_COMPARE = 20
# The console log shown on the run page: its last bytes (the whole file is a download away).
LOG_TAIL_BYTES = 256 * 1024
# Blobs served from memory, checked against their digest before a byte is sent.
MAX_SERVED_BYTES = 512 * 1024 * 1024
MEDIA_ROWS = 100
# Served inline (shown in an <img>): raster formats only. Anything else (HTML, SVG: script in our origin)
# is served as a download.
INLINE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp"}


def _run(request: Request, entity: str, project: str, run_id: str) -> Any:
    api = request.app.state.api
    run_id = name(run_id, "run id")
    try:
        return api.run(f"{entity}/{project}/{run_id}")
    except ValueError:
        raise not_found(f"no run {entity}/{project}/{run_id}") from None


def _run_url(run: Any) -> str:
    return f"/{quote(run.entity)}/{quote(run.project)}/runs/{quote(run.id)}"


def _version_url(art: Any) -> str:
    parts = (art.entity, art.project, "artifacts", art.type, art.collection_name, art.version)
    return "/" + "/".join(quote(str(p), safe="") for p in parts)


# ----------------------------------------------------------------------------------------------- runs table


def _columns(raw: str | None) -> list[str]:
    """``config.lr,summary.loss``: the extra columns asked for (each ``config.<key>`` or ``summary.<key>``)."""
    cols = [c.strip() for c in (raw or "").split(",") if c.strip()]
    for col in cols:
        where, _, key = col.partition(".")
        if where not in ("config", "summary") or not key or len(col) > 300:
            raise bad_request(f"column {col!r} is invalid: use config.<key> or summary.<key>, comma-separated")
    return cols[:50]


def _cell(run: Any, column: str) -> Any:
    where, _, key = column.partition(".")
    value: Any = run.config if where == "config" else run.summary_metrics
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return ""
        value = value[part]
    if isinstance(value, dict) and "value" in value and where == "config" and len(value) <= 2:
        value = value["value"]  # W&B's {"value": ..., "desc": ...} config form
    return value


def runs_table(request: Request) -> Response:
    entity, project = path_names(request, "entity", "project")
    api = request.app.state.api
    query = request.query_params
    raw_filters = query.get("filters", "").strip()
    order = query.get("order", "").strip() or "-created_at"
    per_page = int_param(request, "per_page", PER_PAGE, lo=1, hi=MAX_PER_PAGE) or PER_PAGE
    cursor = query.get("cursor") or None
    columns = _columns(query.get("columns"))
    context: dict[str, Any] = {
        "entity": entity, "project": project, "filters": raw_filters, "order": order, "columns": columns,
        "runs": [], "rows": [], "error": None, "total": None, "next_url": None, "per_page": per_page,
        "config_keys": [], "summary_keys": [], "first_url": None, "sort_urls": {},
    }
    if api.project(project, entity)._record is None:
        raise not_found(f"no project {entity}/{project}")
    try:
        filters = json.loads(raw_filters) if raw_filters else None
        if filters is not None and not isinstance(filters, dict):
            raise ValueError(f"filters must be a JSON object such as {{\"config.lr\": 0.1}}, got {raw_filters!r}")
        runs = api.runs(f"{entity}/{project}", filters=filters, order=order, per_page=per_page, start=cursor)
        page = runs[:per_page]  # one page: one keyset query, whatever the number of runs
        total = len(runs)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError: filter, order or cursor is wrong
        context["error"] = str(exc) if isinstance(exc, ValueError) else "filters are nested too deeply"
        return render(request, "runs_table.html", context, status_code=400)
    context.update(runs=page, total=total)
    context["rows"] = [(run, [_cell(run, c) for c in columns]) for run in page]
    context["config_keys"] = sorted({k for r in page for k in r.config if not k.startswith("_")})[:200]
    context["summary_keys"] = sorted({k for r in page for k in r.summary_metrics if not k.startswith("_")})[:200]
    keep = {k: v for k, v in (("filters", raw_filters), ("order", order), ("columns", ",".join(columns))) if v}
    if per_page != PER_PAGE:
        keep["per_page"] = str(per_page)
    context["sort_urls"] = {
        column: f"?{urlencode({**keep, 'order': _toggled(order, field)})}"
        for column, field in [("created", "created_at")]
        + [(c, c if c.startswith("config.") else "summary_metrics." + c.partition(".")[2]) for c in columns]
    }
    if len(page) == per_page and runs.cursor:
        context["next_url"] = f"?{urlencode({**keep, 'cursor': runs.cursor})}"
    if cursor:
        context["first_url"] = f"?{urlencode(keep)}"
    return render(request, "runs_table.html", context)


def _toggled(order: str, field: str) -> str:
    """The order a click on ``field``'s header asks for: descending first, then ascending."""
    return f"+{field}" if order == f"-{field}" else f"-{field}"


# ----------------------------------------------------------------------------------------------- run page


def _summary_rows(run: Any) -> list[tuple[str, Any]]:
    rows = []
    for key, value in sorted(run.summary_metrics.items()):
        if key.startswith("_"):
            continue
        if isinstance(value, dict) and "_type" in value:
            value = f"<{value['_type']}>"  # a media value: shown in the media section
        rows.append((key, value))
    return rows


def _console_log(run: Any, files: list[Any]) -> tuple[str | None, bool]:
    """The tail of output.log (text), whether it was cut; (None, False) when the run has none; "missing"
    text when its blob is gone."""
    log = next((f for f in files if f.name == "output.log"), None)
    if log is None:
        return None, False
    try:
        data = history.read_run_blob(run, log.digest, MAX_SERVED_BYTES)
    except (LookupError, ValueError):
        return None, True
    cut = len(data) > LOG_TAIL_BYTES
    return data[-LOG_TAIL_BYTES:].decode("utf-8", errors="replace"), cut


def run_page(request: Request) -> Response:
    entity, project = path_names(request, "entity", "project")
    run = _run(request, entity, project, request.path_params["run_id"])
    store_files = history.saved_files(run)
    rows = history.media_rows(run, MEDIA_ROWS)
    media = history.media_items(run, rows=rows)
    media_files = history.media_file_list(run, rows=rows)
    hexes = {m["hex"] for m in media} | {m["hex"] for m in media_files} | {f.digest for f in store_files}
    present = history.blobs_present(run, hexes)
    for item in [*media, *media_files]:
        item["missing"] = item["hex"] not in present
        item["url"] = f"{_run_url(run)}/media/{item['hex']}{_ext(item['name'])}"
    log_text, log_broken = _console_log(run, store_files)
    files = [
        {"name": f.name, "size": f.size, "url": f"{_run_url(run)}/files/{quote(f.name)}",
         "missing": f.digest not in present}
        for f in store_files
    ]
    files += [{"name": m["name"], "size": m["size"], "url": m["url"], "missing": m["missing"]} for m in media_files]
    context = {
        "run": run,
        "run_url": _run_url(run),
        "entity": entity,
        "project": project,
        "config": sorted((k, v) for k, v in run.config.items() if not k.startswith("_")),
        "summary": _summary_rows(run),
        "media": media,
        "files": files,
        "log_text": log_text,
        "log_broken": log_broken,
        "logged": [(a, _version_url(a)) for a in run.logged_artifacts()],
        "used": [(a, _version_url(a)) for a in run.used_artifacts()],
        "charts": {"runs": [_chart_run(run)], "system": True},
    }
    return render(request, "run.html", context)


def _chart_run(run: Any) -> dict[str, Any]:
    base = f"/api/runs/{quote(run.entity)}/{quote(run.project)}/{quote(run.id)}"
    return {"id": run.id, "name": run.display_name or run.id, "history": f"{base}/history", "system": f"{base}/system"}


def _ext(file_name: str) -> str:
    dot = file_name.rfind(".")
    ext = file_name[dot:].lower() if dot > 0 else ""
    return ext if ext in (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".html", ".json", ".txt") else ""


def compare_page(request: Request) -> Response:
    entity, project = path_names(request, "entity", "project")
    ids: list[str] = []
    for raw in [*request.query_params.get("runs", "").split(","), *request.query_params.getlist("run")]:
        if raw.strip() and raw.strip() not in ids:
            ids.append(raw.strip())
    if not ids:
        raise bad_request("compare needs runs: /{entity}/{project}/compare?runs=<id>,<id>")
    if len(ids) > MAX_COMPARE:
        raise bad_request(f"compare shows at most {MAX_COMPARE} runs; {len(ids)} were given")
    runs = [_run(request, entity, project, run_id) for run_id in ids]
    context = {
        "entity": entity, "project": project, "runs": [(r, _run_url(r)) for r in runs],
        "charts": {"runs": [_chart_run(r) for r in runs], "system": False},
    }
    return render(request, "compare.html", context)


# ----------------------------------------------------------------------------------------------- files


def _blob_response(run: Any, hexdigest: str, file_name: str, *, inline: bool) -> Response:
    try:
        data = history.read_run_blob(run, hexdigest, MAX_SERVED_BYTES)
    except LookupError:
        raise not_found(f"file {file_name!r} of run {'/'.join(run.path)} is missing") from None
    except ValueError:
        raise not_found(
            f"file {file_name!r} of run {'/'.join(run.path)} is missing (its stored bytes are damaged)"
        ) from None
    kind = mimetypes.guess_type(file_name)[0] or "application/octet-stream"
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=31536000, immutable"}
    if not (inline and kind in INLINE_TYPES):
        base = file_name.rsplit("/", 1)[-1]
        headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(base)}"
        if kind not in INLINE_TYPES and not kind.startswith("text/plain"):
            kind = "application/octet-stream"
    return Response(data, media_type=kind, headers=headers)


def run_file(request: Request) -> Response:
    entity, project = path_names(request, "entity", "project")
    run = _run(request, entity, project, request.path_params["run_id"])
    file_name = request.path_params["name"]
    if not isinstance(file_name, str) or "\x00" in file_name or any(p in ("", ".", "..") for p in file_name.split("/")):
        raise not_found(f"file name {file_name!r} is invalid")
    # Only a name the run recorded is served, by the digest recorded for it: the URL never builds a path.
    found = next((f for f in history.saved_files(run) if f.name == file_name), None)
    if found is None:
        raise not_found(f"run {'/'.join(run.path)} has no file {file_name!r}")
    return _blob_response(run, found.digest, file_name, inline=False)


def run_media(request: Request) -> Response:
    entity, project = path_names(request, "entity", "project")
    run = _run(request, entity, project, request.path_params["run_id"])
    raw = request.path_params["blob"]
    hexdigest, dot, ext = raw.partition(".")
    hexdigest = digest(hexdigest)
    if dot and ext not in ("png", "jpg", "jpeg", "gif", "webp", "bmp", "html", "json", "txt"):
        raise not_found(f"media {raw!r} is invalid")
    return _blob_response(run, hexdigest, f"media{dot}{ext}", inline=True)


# ----------------------------------------------------------------------------------------------- JSON


def _json(body: Any) -> Response:
    # A view of 20 keys is ~2 MB of numbers: orjson encodes it ten times faster than the json module.
    try:
        import orjson
    except ImportError:
        return JSONResponse(body)
    return Response(orjson.dumps(body), media_type="application/json")


def history_json(request: Request) -> Response:
    entity, project = path_names(request, "entity", "project")
    run = _run(request, entity, project, request.path_params["run_id"])
    raw_keys = request.query_params.get("keys")
    keys = None if raw_keys is None else [k for k in raw_keys.split(",") if k]
    try:
        body = history.sampled_history(
            run,
            keys,
            min_step=int_param(request, "min_step", lo=-(2**63), hi=2**63 - 1),
            max_step=int_param(request, "max_step", lo=-(2**63), hi=2**63 - 1),
            points=int_param(request, "points", history.DEFAULT_POINTS, lo=1, hi=history.MAX_POINTS)
            or history.DEFAULT_POINTS,
            quick=request.query_params.get("quick") == "1",
        )
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    return _json(body)


def system_json(request: Request) -> Response:
    entity, project = path_names(request, "entity", "project")
    run = _run(request, entity, project, request.path_params["run_id"])
    return _json(history.system_history(run))


routes = [
    Route("/api/runs/{entity}/{project}/{run_id}/history", history_json),
    Route("/api/runs/{entity}/{project}/{run_id}/system", system_json),
    Route("/{entity}/{project}", runs_table, name="runs_table"),
    Route("/{entity}/{project}/compare", compare_page, name="compare"),
    Route("/{entity}/{project}/runs/{run_id}", run_page, name="run"),
    Route("/{entity}/{project}/runs/{run_id}/files/{name:path}", run_file),
    Route("/{entity}/{project}/runs/{run_id}/media/{blob}", run_media),
]
