"""Opening a workspace database: the fast check that its schema is current, and the Alembic upgrade.

Alembic is imported only when a database needs migrating, so opening a current database costs two SELECTs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from wandb_dagster.store import schema as db
from wandb_dagster.store.engine import write_engine
from wandb_dagster.store.errors import SchemaVersionError
from wandb_dagster.store.sql import display_url, insert, now

# pg_advisory_xact_lock key serialising migrations of one database ("wdmigr" in ASCII). Advisory locks
# are per database, so workspaces sharing a server do not wait for each other.
_MIGRATION_LOCK_KEY = 0x77646D69677200
_alembic_version = sa.table("alembic_version", sa.column("version_num", sa.String()))


def recorded_storage_root(engine: sa.Engine) -> str | None:
    """The recorded storage root if the schema is current; None if the database needs migrating.

    This is the path of every open but the first, so it stays at two SELECTs and does not import Alembic.
    """
    with engine.connect() as conn:
        try:
            revision = conn.execute(sa.select(_alembic_version.c.version_num)).scalar()
        except sa.exc.DBAPIError:  # no alembic_version table: a new database
            return None
        if revision != db.SCHEMA_REVISION:
            return None
        return conn.execute(sa.select(db.workspace.c.value).where(db.workspace.c.key == "storage_root")).scalar()


def current_revision(url: str) -> str | None:
    """The schema revision of the database at ``url`` without changing it (None: no schema yet, or no
    database file)."""
    from wandb_dagster.store.engine import create_engine, make_url, sqlite_path

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_path(parsed)
        if path is not None and not path.exists():
            return None  # connecting would create the file
    engine = create_engine(parsed)
    try:
        with engine.connect() as conn:
            try:
                revision: str | None = conn.execute(sa.select(_alembic_version.c.version_num)).scalar()
            except sa.exc.DBAPIError:
                return None
            return revision
    finally:
        engine.dispose()


def migrate(engine: sa.Engine, storage_root: str, organization: str | None = None) -> str:
    """Bring the schema to head and record ``storage_root`` if none is; returns the recorded root.

    ``organization`` names the default organization when migration 0008 creates it (default ``default``).

    One write transaction, serialised across processes and machines (SQLite: BEGIN IMMEDIATE holds the
    database write lock; PostgreSQL: a transaction-scoped advisory lock), and transactional DDL on both
    backends: concurrent openers wait for the first, then find nothing to do; a crash leaves no half schema.
    """
    with write_engine(engine).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK_KEY)))
        _upgrade_schema(conn, organization)
        conn.execute(
            insert(conn, db.workspace)
            .values(
                [
                    {"key": "storage_root", "value": storage_root},
                    {"key": "created_at", "value": now().isoformat()},
                ]
            )
            .on_conflict_do_nothing()
        )
        root: str = conn.execute(
            sa.select(db.workspace.c.value).where(db.workspace.c.key == "storage_root")
        ).scalar_one()
        return root


def alembic_config() -> Any:
    """The Alembic configuration of the store's migrations (no ini file)."""
    from alembic.config import Config

    config = Config()
    # The ini-style config interpolates '%'; escape it in case the install path has one.
    config.set_main_option("script_location", str(Path(__file__).with_name("migrations")).replace("%", "%%"))
    return config


def _upgrade_schema(conn: sa.Connection, organization: str | None) -> None:
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    current = MigrationContext.configure(conn).get_current_revision()
    if current == db.SCHEMA_REVISION:
        return
    config = alembic_config()
    if current is not None:
        try:
            ScriptDirectory.from_config(config).get_revision(current)
        except CommandError:
            raise SchemaVersionError(
                f"the database {display_url(conn.engine.url)!r} has schema revision "
                f"{current!r}, which this wandb_dagster does not know (its newest is {db.SCHEMA_REVISION!r}): "
                "a newer wandb_dagster created it; upgrade wandb_dagster on this machine"
            ) from None
    config.attributes["connection"] = conn
    config.attributes["organization"] = organization
    command.upgrade(config, "head")
