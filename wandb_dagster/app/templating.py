"""The app's Jinja2 templates (``app/templates/``), rendered on the server with autoescape on.

    >>> return render(request, "run.html", {"run": run})   # doctest: +SKIP   (in a page function)

Templates extend ``base.html`` and fill ``{% block title %}`` and ``{% block content %}`` (and ``{% block
head %}`` for page scripts). Available everywhere: ``request``, ``static(path)`` (a /static URL), the
filters ``when`` (a datetime or ISO text as UTC), ``value`` (a config/summary value as short text) and
``size`` (bytes with units), and ``tojson`` (JSON safe inside ``<script>``).
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

TEMPLATES = Path(__file__).resolve().parent / "templates"

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(TEMPLATES)),
    autoescape=True,  # every value is escaped unless a template says otherwise: names come from users
    undefined=jinja2.StrictUndefined,  # a typo in a template fails its test instead of showing nothing
    trim_blocks=True,
    lstrip_blocks=True,
)


def _when(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def _value(value: Any, limit: int = 80) -> str:
    if isinstance(value, float):
        text = repr(value) if not math.isfinite(value) else f"{value:.6g}"
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _size(n: Any) -> str:
    if not isinstance(n, (int, float)):
        return ""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


_env.filters.update(when=_when, value=_value, size=_size)
_env.globals.update(static=lambda path: f"/static/{path}")


def environment() -> jinja2.Environment:
    """The shared environment (to add a filter or global from a page module at import time)."""
    return _env


def render_text(name: str, context: dict[str, Any]) -> str:
    """Template ``name`` rendered with ``context`` (no request: e.g. for a file written to disk)."""
    return _env.get_template(name).render(**context)


def render(request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200) -> HTMLResponse:
    """Template ``name`` rendered with ``context`` (plus ``request``) as an HTML response."""
    base = {"request": request, "org": getattr(request.app.state, "org", None)}
    return HTMLResponse(render_text(name, {**base, **(context or {})}), status_code=status_code)
