"""Fixtures for the web app's tests: a workspace (SQLite, then PostgreSQL) as the default one, a Starlette
TestClient over it, a live uvicorn server on a free loopback port, and a headless Chromium page
(Debian's /usr/bin/chromium driven by Playwright; .ci/run installs the package when it is missing).

    def test_x(app_env, client):
        with wandb.init(project="p") as run: run.log({"loss": 1.0})
        assert client.get(f"/tester/p/runs/{run.id}").status_code == 200

Browser tests use ``live_server`` and ``page``; they run on SQLite only (``sqlite_only``), the HTTP tests
on both databases.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
# Browser tests run on one database: what they check is drawn in the browser, and the HTTP tests cover
# both databases. Use as @sqlite_only on a test (it narrows the parametrised database_url fixture).
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def app_env(api_env, monkeypatch):
    """``api_env``'s fresh workspace (SQLite, then PostgreSQL; entity ``tester``; cwd empty), with no UI token
    in the environment and the SDK's background work off: it is not what these tests look at, and the console
    capture would swallow pytest's output."""
    monkeypatch.delenv("WANDB_DAGSTER_UI_TOKEN", raising=False)
    monkeypatch.setenv("WANDB_X_DISABLE_STATS", "true")
    monkeypatch.setenv("WANDB_CONSOLE", "off")
    return api_env


@pytest.fixture
def app(app_env) -> Any:
    """The app over the test's workspace."""
    from wandb_dagster.app.server import create_app

    return create_app()


@pytest.fixture
def client(app) -> Iterator[Any]:
    """A Starlette TestClient over :func:`app`; server errors come back as 500 pages, not exceptions."""
    from starlette.testclient import TestClient

    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """uvicorn serving ``app`` on a free loopback port, in a thread; ``url`` is its base address."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="live-app-server", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"the app server did not start on {self.url}")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live_server(app) -> Iterator[LiveServer]:
    server = LiveServer(app)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's package), one per session. Missing: in CI (``CI=true``, as .ci/run runs) the
    test FAILS, so a missing install cannot turn the browser tests green; elsewhere it is skipped with the
    reason, as the PostgreSQL tests are on a machine without PostgreSQL."""
    if not os.access(CHROMIUM, os.X_OK):
        missing = f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium; .ci/run does)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(missing, pytrace=False)
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser) -> Iterator[Any]:
    """A fresh page (1280x900); JavaScript errors on it fail the test at teardown."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    yield opened
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


# The README's screenshots (docs/images/*.png) are made by the browser tests. They are written into the
# repository only when asked (WANDB_DAGSTER_SCREENSHOTS=1 python3 dev.py test tests/app), so that a test run
# leaves the work tree clean; otherwise into a temporary folder, and checked there all the same.
SCREENSHOT_ENV = "WANDB_DAGSTER_SCREENSHOTS"
_DOCS_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


def screenshot_path(name: str, tmp_path: Path) -> Path:
    """Where the screenshot ``name`` goes: docs/images/ when WANDB_DAGSTER_SCREENSHOTS=1, else tmp_path."""
    folder = _DOCS_IMAGES if os.environ.get(SCREENSHOT_ENV) == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def check_screenshot(path: Path) -> None:
    """A screenshot is a PNG with something in it (not an empty page)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert len(data) > 5_000, f"{path} is {len(data)} bytes: the page looks empty"
