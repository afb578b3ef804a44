"""Shared fixtures. Each section serves one layer; add yours under its own heading.

Databases: ``database_url`` runs a test once on SQLite and once on PostgreSQL, each time with a fresh,
empty database. PostgreSQL is expected at 127.0.0.1:5432 (override with WANDB_DAGSTER_TEST_POSTGRES_URL,
a URL of a maintenance database such as ``postgres``). When it cannot be reached those tests skip, except
in CI (CI=true) or with WANDB_DAGSTER_REQUIRE_POSTGRES=1, where they fail.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest

# ---------------------------------------------------------------------------------------------- isolation


@pytest.fixture(autouse=True, scope="session")
def _no_real_workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Nothing a test does may touch the user's real workspace or cache: point the defaults elsewhere."""
    saved = {k: os.environ.get(k) for k in ("WANDB_DAGSTER_DIR", "WANDB_DAGSTER_CACHE_DIR", "WANDB_DAGSTER_DATABASE_URL")}
    base = tmp_path_factory.mktemp("default-workspace")
    os.environ["WANDB_DAGSTER_DIR"] = str(base / "workspace")
    os.environ["WANDB_DAGSTER_CACHE_DIR"] = str(base / "cache")
    os.environ.pop("WANDB_DAGSTER_DATABASE_URL", None)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


# ---------------------------------------------------------------------------------------------- databases

POSTGRES_ADMIN_URL = os.environ.get(
    "WANDB_DAGSTER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _postgres_required() -> bool:
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("WANDB_DAGSTER_REQUIRE_POSTGRES") == "1"


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[object]:
    """An autocommit psycopg connection to the maintenance database (skips/fails when unreachable)."""
    try:
        import psycopg

        conn = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5)
    except Exception as exc:  # ImportError or any connection failure: same decision
        reason = f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL} ({type(exc).__name__}: {exc})".strip()
        if _postgres_required():
            pytest.fail(
                f"{reason}; it is required here (CI=true or WANDB_DAGSTER_REQUIRE_POSTGRES=1): start it, or "
                "point WANDB_DAGSTER_TEST_POSTGRES_URL at one",
                pytrace=False,
            )
        pytest.skip(reason)
    with conn:
        yield conn


@pytest.fixture
def postgres_url(postgres_admin: object) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped (with its connections) after the test."""
    from psycopg import sql
    from sqlalchemy import make_url

    name = f"wdtest_{secrets.token_hex(6)}"
    postgres_admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))  # type: ignore[attr-defined]
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        postgres_admin.execute(  # type: ignore[attr-defined]
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A fresh database per test: an SQLite file under tmp_path, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db' / 'store.db'}"
    return request.getfixturevalue("postgres_url")
