"""No database password or URL signature reaches Dagster's records or our own (docs/architecture.md invariant 7).

Pipelines run through ``dg.materialize`` on a real Dagster instance in a temp folder (SQLite run storage and
event log, compute log files), with PostgreSQL workspace URLs that carry a sentinel password (the test server
trusts loopback, so the sentinel is accepted wherever the database exists). Each failure mode that can be
provoked is run (wrong workspace, missing input version, unreachable server, unknown role, missing database,
an unreachable signed reference, a misspelled option, a storage root with credentials, the password as libpq's ``?password=``, a failing op with the failure hook, a
sensor tick); then every file of the instance and every row of our databases is searched for the
sentinel. The resources get their URL through ``dg.EnvVar`` (as the README recommends), so Dagster's own
config records hold no value: whatever is found was written by this package.

Before the fix, the wrong-workspace error (``... is not in this workspace ('postgresql://postgres:<password>@
...')``) put the password into the run storage, the event log and the compute log ``.err`` file.
"""

from __future__ import annotations

import secrets
import socket
import traceback
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from sqlalchemy.engine import make_url

from wandb_dagster.dagster import (
    Reference,
    WandbArtifactIOManager,
    WandbResource,
    wandb_artifact_sensor,
    wandb_failure_hook,
)
from wandb_dagster.sdk.workspace import Workspace

pytestmark = pytest.mark.postgres

# Made at import so the value never appears in source code (tracebacks print source lines).
SENTINEL = f"sentinelPW{secrets.token_hex(6)}"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _with_secret(url: str, **parts: Any) -> str:
    return make_url(url).set(password=SENTINEL, **parts).render_as_string(hide_password=False)


def _with_query_secret(url: str, **parts: Any) -> str:
    """The password as libpq's ``?password=`` parameter, which SQLAlchemy does not hide by itself."""
    return make_url(url).set(password=None, query={"password": SENTINEL}, **parts).render_as_string(
        hide_password=False)


@pytest.fixture
def second_postgres_url(postgres_admin: Any, postgres_url: str) -> Any:
    """Another fresh database: the "other workspace" of the wrong-workspace failure."""
    from psycopg import sql

    name = f"wdtest_{secrets.token_hex(6)}"
    postgres_admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    finally:
        postgres_admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


class _Workspaces:
    """WandbResource/IO manager pairs, each on a secret URL passed through its own environment variable."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        self._monkeypatch = monkeypatch
        self._tmp = tmp_path
        self._count = 0

    def resources(self, url: str, storage_root: str | None = None) -> dict[str, Any]:
        self._count += 1
        variable = f"TEST_SECRET_DATABASE_URL_{self._count}"
        self._monkeypatch.setenv(variable, url)
        self._monkeypatch.setenv(f"{variable}_STORAGE", storage_root or str(self._tmp / "blobs"))
        wandb = WandbResource(database_url=dg.EnvVar(variable), storage_root=dg.EnvVar(f"{variable}_STORAGE"),
                              entity="tester", project="secrets")
        io = WandbArtifactIOManager(wandb=wandb, download_dir=str(self._tmp / "inputs"))
        return {"wandb": wandb, "io_manager": io}


@dg.asset
def upstream() -> dict:
    return {"rows": [1, 2, 3]}


@dg.asset
def downstream(upstream: dict) -> int:
    return len(upstream["rows"])


@dg.asset(ins={"upstream": dg.AssetIn(metadata={"wandb": {"version": "v99"}})})
def pinned(upstream: dict) -> int:
    return len(upstream["rows"])


@dg.asset(metadata={"wandb": {"serialiser": "json"}})  # misspelled option key
def misspelled() -> dict:
    return {}


@dg.asset
def tracked(wandb: WandbResource) -> dict:
    wandb.run().log({"x": 1})  # the asset body opens the workspace itself
    return {"ok": True}


def _signed_reference_asset(port: int) -> Any:
    @dg.asset(name="signed")
    def signed() -> Reference:
        return Reference(f"http://127.0.0.1:{port}/data.csv?X-Amz-Credential=AKIA%2F1&X-Amz-Signature={SENTINEL}")

    return signed


def _failing_op_job(port: int) -> dg.JobDefinition:
    """An op (no IO manager involved) whose SDK call fails, with the failure hook marking its run failed."""

    @dg.op
    def log_signed(wandb: WandbResource) -> None:
        run = wandb.run()
        run.log({"step_started": 1})
        url = f"http://127.0.0.1:{port}/op.csv?X-Amz-Credential=AKIA%2F1&X-Amz-Signature={SENTINEL}"
        run.log_artifact(url, type="dataset")

    @dg.job(hooks={wandb_failure_hook})
    def failing_op() -> None:
        log_signed()

    return failing_op


def _failure_text(result: Any) -> str:
    """Every error Dagster recorded of the run (a step failure, or a resource's setup failing before any
    step ran: the workspace is checked there), message and the whole cause chain."""
    errors = [e.event_specific_data.error for e in result.all_events
              if getattr(e.event_specific_data, "error", None) is not None]
    assert errors and not result.success, "the run was expected to fail"
    return "\n".join(error.to_string() for error in errors)


def psycopg_connect(url: str) -> Any:
    import psycopg

    return psycopg.connect(make_url(url).set(password=None).render_as_string(hide_password=False))


def _database_dump(url: str) -> str:
    with psycopg_connect(url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'").fetchall()]
        return "".join(repr(conn.execute(f'SELECT t::text FROM "{t}" t').fetchall()) for t in tables)


def test_no_failure_mode_writes_the_database_password(postgres_url, second_postgres_url, tmp_path, monkeypatch):
    workspaces = _Workspaces(monkeypatch, tmp_path)
    home = tmp_path / "dagster"
    home.mkdir()
    ours = _with_secret(postgres_url)
    other = _with_secret(second_postgres_url)
    port = _closed_port()
    seen: dict[str, str] = {}
    try:
        with dg.instance_for_test(temp_dir=str(home)) as instance:

            def run(name: str, assets: list, url: str, selection: Any = None, storage_root: str | None = None
                    ) -> Any:
                result = dg.materialize(assets, selection=selection, instance=instance,
                                        resources=workspaces.resources(url, storage_root), raise_on_error=False)
                if name != "ok":
                    seen[name] = _failure_text(result)
                return result

            assert run("ok", [upstream], ours).success  # metadata, tags and the run itself
            run("wrong workspace", [upstream, downstream], other, selection=[downstream])
            run("missing version", [upstream, pinned], ours, selection=[pinned])
            run("unreachable server", [tracked], _with_secret(postgres_url, port=port))
            run("unknown role", [tracked], _with_secret(postgres_url, username=f"nosuch_{secrets.token_hex(3)}"))
            run("missing database", [upstream], _with_secret(postgres_url, database=f"nosuch_{secrets.token_hex(3)}"))
            run("signed reference", [_signed_reference_asset(port)], ours)
            # libpq's ?password= form: once working (metadata, run URL), once on a server that is down.
            assert run("ok", [upstream], _with_query_secret(postgres_url)).success
            run("query password, unreachable", [tracked], _with_query_secret(postgres_url, port=port))
            run("misspelled option", [misspelled], ours)
            run("storage root with credentials", [tracked], ours, storage_root=f"s3://AKIAKEY:{SENTINEL}@bucket")
            op_job = _failing_op_job(port).execute_in_process(
                instance=instance, resources={"wandb": workspaces.resources(ours)["wandb"]}, raise_on_error=False)
            seen["failing op"] = _failure_text(op_job)

            # A sensor tick that cannot reach its workspace: Dagster stores the tick's error as printed here.
            sensor = wandb_artifact_sensor(collection="secrets/upstream", job=dg.define_asset_job("j", [upstream]))
            down = workspaces.resources(_with_secret(postgres_url, port=port))["wandb"]
            with dg.build_sensor_context(instance=instance, resources={"wandb": down}) as context, \
                    pytest.raises(Exception) as tick:
                sensor(context)
            seen["sensor tick"] = "".join(traceback.format_exception(tick.value))
    finally:
        Workspace.close_all()

    assert [mode for mode, text in seen.items() if SENTINEL in text] == []

    # Dagster's run storage, event log and compute logs: every file of the instance.
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.suffix == ".err" for p in files) and any(p.suffix == ".db" for p in files)
    assert any(b"is not in this workspace" in p.read_bytes() for p in files)  # the search sees the messages
    leaked = [str(p.relative_to(home)) for p in files if SENTINEL.encode() in p.read_bytes()]
    assert leaked == []
    # Our own databases.
    for url in (postgres_url, second_postgres_url):
        dump = _database_dump(url)
        assert SENTINEL not in dump
    assert "upstream" in _database_dump(postgres_url)

    # Each failure happened for the reason it was set up for, and said so with the URL masked.
    assert "is not in this workspace ('postgresql://postgres:***@127.0.0.1" in seen["wrong workspace"]
    assert "v99" in seen["missing version"]
    assert f"cannot connect to the workspace database 'postgresql://postgres:***@127.0.0.1:{port}/" in (
        seen["unreachable server"])
    assert "does not exist" in seen["unknown role"] and "does not exist" in seen["missing database"]
    assert "data.csv" in seen["signed reference"] and "cannot reach" in seen["signed reference"]
    assert "cannot connect to the workspace database" in seen["sensor tick"]
    assert "serialiser" in seen["misspelled option"]
    assert "carries credentials" in seen["storage root with credentials"]
    assert "?password=***" in seen["query password, unreachable"]
    assert "op.csv" in seen["failing op"] and "cannot reach" in seen["failing op"]
    with psycopg_connect(postgres_url) as conn:  # the failure hook marked the op's tracking run failed
        assert ("failed",) in conn.execute("SELECT state FROM runs").fetchall()


def test_a_reference_that_is_not_a_uri_is_refused_with_its_credentials_masked():
    """Before: the error quoted the value as given, signature included."""
    with pytest.raises(ValueError) as err:
        Reference(f"host/data.csv?X-Amz-Signature={SENTINEL}")
    assert "host/data.csv?X-Amz-Signature=***" in str(err.value) and SENTINEL not in str(err.value)
