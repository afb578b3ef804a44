"""The app's skeleton: the routes it collects, static files, the access token, error pages, `wandb-dagster ui`
(SQLite and PostgreSQL through Starlette's TestClient)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

import wandb_dagster as wandb
from wandb_dagster.app.server import TOKEN_COOKIE, create_app, page_routes
from wandb_dagster.cli import cli

from .conftest import _free_port, sqlite_only


def test_the_projects_page_lists_projects_and_hides_the_database_password(app_env, client):
    with wandb.init(project="bikes") as run:
        run.log({"loss": 1.0})
    page = client.get("/")
    assert page.status_code == 200
    assert 'href="/tester/bikes"' in page.text
    assert "wandb-registry-" not in page.text  # registries are on their own pages
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"


def test_static_files_are_served_and_nothing_outside_the_folder(app_env, client):
    assert "WDCharts" in client.get("/static/charts.js").text
    assert client.get("/static/vendor/uplot/uPlot.iife.min.js").status_code == 200
    for path in ("/static/../app/server.py", "/static/%2e%2e/app/server.py", "/static/..%2fapp%2fserver.py",
                 "/static/%2e%2e%2f%2e%2e%2fpyproject.toml"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "create_app" not in response.text


def test_an_unknown_path_is_a_404_page(app_env, client):
    response = client.get("/a/b/c/d/e/f/g/h")
    assert response.status_code == 404
    assert "Not found" in response.text


def test_literal_routes_come_before_parameter_routes():
    paths = [getattr(r, "path", "") for r in page_routes()]
    first_parameter = next((i for i, p in enumerate(paths) if p.startswith("/{")), len(paths))
    assert all(p.startswith("/{") for p in paths[first_parameter:]), paths


def test_the_token_is_required_on_every_request_and_a_link_sets_a_cookie(app_env):
    with wandb.init(project="bikes"):
        pass
    app = create_app(token="s3cret-token")
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/").status_code == 401
        assert client.get("/").headers["x-frame-options"] == "DENY"
        assert client.get("/static/charts.js").status_code == 401
        assert client.get("/", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
        assert client.get("/?token=wrong").status_code == 401
        first = client.get("/tester/bikes?token=s3cret-token&x=1", follow_redirects=False)
        assert first.status_code == 303
        assert first.headers["location"] == "/tester/bikes?x=1"  # the token leaves the address bar
        assert "httponly" in first.headers["set-cookie"].lower()
        assert client.cookies.get(TOKEN_COOKIE) == "s3cret-token"
        assert client.get("/").status_code == 200  # the cookie carries it from now on


def test_ui_refuses_a_non_loopback_host_without_a_token(monkeypatch):
    monkeypatch.delenv("WANDB_DAGSTER_UI_TOKEN", raising=False)
    result = CliRunner().invoke(cli, ["ui", "--host", "0.0.0.0"])
    assert result.exit_code == 1
    assert "reachable from other machines" in result.output and "--token" in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_ui_starts_uvicorn_on_loopback_without_a_token(app_env, monkeypatch, host):
    import uvicorn

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(kw, app=app))
    result = CliRunner().invoke(cli, ["ui", "--host", host, "--port", "8611"])
    assert result.exit_code == 0, result.output
    assert (seen["host"], seen["port"]) == (host, 8611)
    assert seen["app"].state.api is not None


@sqlite_only  # the command is the same on both databases; the pages' tests cover PostgreSQL
def test_python_m_wandb_dagster_ui_serves_the_workspace_with_its_token(app_env):
    # The real command in a process of its own: uvicorn listening, the token checked on every request.
    import os
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    with wandb.init(project="served"):
        pass
    port = _free_port()
    env = {**os.environ, "WANDB_DAGSTER_UI_TOKEN": "tok-123"}
    server = subprocess.Popen([sys.executable, "-m", "wandb_dagster", "ui", "--port", str(port)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"Authorization": "Bearer tok-123"})
                body = urllib.request.urlopen(request, timeout=5).read().decode()
                break
            except (ConnectionError, urllib.error.URLError):
                assert server.poll() is None and time.monotonic() < deadline, server.stdout.read().decode()
                time.sleep(0.2)
        assert 'href="/tester/served"' in body
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
        assert refused.value.code == 401
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_import_wandb_dagster_does_not_import_the_web_app_libraries():
    # Training scripts import wandb_dagster; the app's libraries load only with the app (`wandb-dagster ui`).
    import subprocess
    import sys

    code = ("import sys, wandb_dagster, wandb_dagster.api; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('starlette', 'uvicorn', 'jinja2', 'orjson')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.postgres
@pytest.mark.parametrize("password", ["correct horse battery", "it's-secret", "2024/Spring"])
def test_the_projects_page_masks_any_password_the_database_url_holds(app_env, postgres_url, tmp_path, password):
    # Found by review: the page masked the URL with the free-text redactor, which stops at a blank or a quote
    # and takes "2024/..." for a port; SQLAlchemy reads all three as passwords. The store's display_url masks
    # by parsing. (The test server trusts loopback, so the password is sent and ignored.)
    from urllib.parse import quote

    from sqlalchemy.engine import make_url

    url = make_url(postgres_url).set(password=password).render_as_string(hide_password=False)
    assert quote(password, safe="") in url or password in url
    app = create_app(database_url=url, storage=str(tmp_path / "blobs"))
    with TestClient(app, raise_server_exceptions=False) as client:
        page = client.get("/")
    assert page.status_code == 200
    text = page.text
    for shown in (password, quote(password, safe=""), quote(password), "horse", "Spring", "secret"):
        assert shown not in text


def test_a_token_link_never_redirects_off_the_server(app_env):
    # Found by review: "//evil.example/?token=..." redirected to //evil.example/ (another host).
    app = create_app(token="s3cret-token")
    with TestClient(app, raise_server_exceptions=False) as client:
        got = client.get("http://testserver//evil.example/?token=s3cret-token", follow_redirects=False)
    assert got.status_code == 303 and got.headers["location"] == "/evil.example/"
