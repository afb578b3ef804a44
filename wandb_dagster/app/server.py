"""The Starlette application of ``wandb-dagster ui``: the workspace, the routes, access and error pages.

    >>> from wandb_dagster.app.server import create_app
    >>> app = create_app(database_url="sqlite:////tmp/ws/store.db", token="s3cret")   # doctest: +SKIP
    >>> app.state.api.projects()                                                        # doctest: +SKIP

Page modules: each module named in ``PAGE_MODULES`` that exists exposes ``routes`` (a list of
``starlette.routing.Route``); their routes are collected in that order, with paths that begin with a
literal segment (``/api/...``, ``/orgs/...``) ahead of those that begin with a parameter
(``/{entity}/{project}``), so that a fixed path is never taken for an entity name.
"""

from __future__ import annotations

import hmac
import importlib
import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from wandb_dagster.api import Api
from wandb_dagster.app.templating import render

STATIC = Path(__file__).resolve().parents[1] / "static"
# The page modules, in route order; those not written yet are skipped (helpers add them in parallel).
PAGE_MODULES = ("projects", "runs", "media", "artifacts", "registries", "sweeps", "reports_page")
TOKEN_COOKIE = "wandb_dagster_ui_token"
_log = logging.getLogger(__name__)


def page_routes(modules: tuple[str, ...] = PAGE_MODULES) -> list[BaseRoute]:
    """The routes of every page module that exists, literal paths first (see the module docstring)."""
    found: list[BaseRoute] = []
    for module in modules:
        try:
            loaded = importlib.import_module(f"wandb_dagster.app.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"wandb_dagster.app.{module}":
                raise  # the module exists but imports something missing: a real error
            continue
        found.extend(loaded.routes)
    return sorted(found, key=lambda r: isinstance(r, Route) and r.path.startswith("/{"))


def create_app(
    *,
    database_url: str | None = None,
    storage: str | None = None,
    token: str | None = None,
    api: Api | None = None,
    organization: str | None = None,
) -> Starlette:
    """The app over the workspace of ``database_url`` (default: the configured one; see Settings) whose
    blob storage root is ``storage`` (used only when the workspace is new). ``token``: when set, every
    request must carry it (``Authorization: Bearer <token>``, or ``?token=<token>`` once, which sets a
    cookie). ``api``: an :class:`~wandb_dagster.Api` to use instead of opening one."""
    if api is None:
        overrides: dict[str, Any] = {}
        if database_url is not None:
            overrides["base_url"] = database_url
        if storage is not None:
            overrides["storage_root"] = storage
        if organization is not None:
            overrides["organization"] = organization
        api = Api(overrides)
    app = Starlette(
        routes=[Mount("/static", app=StaticFiles(directory=str(STATIC)), name="static"), *page_routes()],
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )
    app.state.api = api
    # The organization whose registries the navigation links to (W&B's /orgs/{org}/registry/...).
    app.state.org = api.settings.organization or api._store.default_organization
    if token:
        app.add_middleware(TokenMiddleware, token=token)
    app.add_middleware(SafetyHeaders)  # outermost: on every answer, the token's 401s and redirects too
    return app


class SafetyHeaders:
    """Headers on every response: no framing by other sites (clickjacking), no MIME sniffing (a media file
    is what its type says), no referrer sent elsewhere (a page URL may name private projects)."""

    HEADERS = [(b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"),
               (b"referrer-policy", b"same-origin")]  # fmt: skip

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in self.HEADERS if n not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)


def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if request.url.path.startswith("/api/"):
        return PlainTextResponse(str(exc.detail), status_code=exc.status_code)
    reason = {400: "Bad request", 401: "Unauthorized", 404: "Not found"}.get(exc.status_code, "Error")
    context = {"status": exc.status_code, "reason": reason, "detail": exc.detail}
    return render(request, "error.html", context, status_code=exc.status_code)


def _server_error(request: Request, exc: Exception) -> Response:
    # Logged for the operator; the page says nothing of the exception, which may name the database URL.
    _log.error("error serving %s", request.url.path, exc_info=exc)  # not in an except block: pass the exception
    context = {"status": 500, "reason": "Server error", "detail": "The page failed; the server log says why."}
    return render(request, "error.html", context, status_code=500)


class TokenMiddleware:
    """Refuse (401) every request that does not carry the access token.

    The token comes as ``Authorization: Bearer <token>`` (scripts), or as ``?token=<token>`` in a link
    (a browser): that answer is a redirect to the same URL without the token, setting an HttpOnly cookie
    that later requests carry, so the token does not stay in the address bar or the history.
    """

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._token = token.encode()

    def _ok(self, candidate: str | None) -> bool:
        return candidate is not None and hmac.compare_digest(candidate.encode(), self._token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        header = request.headers.get("authorization", "")
        bearer = header[7:].strip() if header[:7].lower() == "bearer " else None
        if self._ok(bearer) or self._ok(request.cookies.get(TOKEN_COOKIE)):
            await self.app(scope, receive, send)
            return
        if self._ok(request.query_params.get("token")):
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            # One leading slash: "//host/" would make the redirect leave this server.
            target = "/" + request.url.path.lstrip("/") + (f"?{urlencode(rest)}" if rest else "")
            response: Response = RedirectResponse(target, status_code=303)
            response.set_cookie(TOKEN_COOKIE, self._token.decode(), httponly=True, samesite="strict")
        else:
            response = PlainTextResponse(
                "401 Unauthorized: this app needs its access token (Authorization: Bearer <token>, or open "
                "the URL with ?token=<token> once).",
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        await response(scope, receive, send)

