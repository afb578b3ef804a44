"""The app's skeleton: the routes it collects, static files, the access token, error pages, `wandb-dagster ui`
(SQLite and PostgreSQL through Starlette's TestClient)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

import wandb_dagster as wandb
from wandb_dagster.app.server import TOKEN_COOKIE, create_app, page_routes
from wandb_dagster.cli import cli


def test_the_projects_page_lists_projects_and_hides_the_database_password(app_env, client):
    with wandb.init(project="bikes") as run:
        run.log({"loss": 1.0})
    page = client.get("/")
    assert page.status_code == 200
    assert 'href="/tester/bikes"' in page.text
    assert "wandb-registry-" not in page.text  # registries are on their own pages
    assert page.headers["content-type"].startswith("text/html")


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
