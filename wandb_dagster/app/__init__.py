"""The web app (``wandb-dagster ui``): read-only pages of a workspace at W&B's URL paths.

Starlette serves server-side Jinja2 templates; charts are drawn in the browser by ``static/charts.js`` over
the vendored uPlot. The app reads through :class:`wandb_dagster.Api` only (the api layer), so it shows what
the Public API returns.

Example::

    >>> from wandb_dagster.app import create_app
    >>> app = create_app(database_url="sqlite:////tmp/ws/store.db")        # doctest: +SKIP
    >>> import uvicorn; uvicorn.run(app, host="127.0.0.1", port=8600)       # doctest: +SKIP

Each page module (``app/runs.py``, ``app/artifacts.py``, ...) exposes ``routes``, a list of
``starlette.routing.Route``; :mod:`wandb_dagster.app.server` collects them (``PAGE_MODULES``).
"""

from __future__ import annotations

from typing import Any


def create_app(**kwargs: Any) -> Any:
    """The Starlette application; see :func:`wandb_dagster.app.server.create_app`."""
    from wandb_dagster.app.server import create_app as _create

    return _create(**kwargs)


__all__ = ["create_app"]
