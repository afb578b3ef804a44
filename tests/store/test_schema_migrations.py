from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from wandb_dagster.store import SchemaVersionError, Store, schema
from wandb_dagster.store.engine import create_engine, write_engine
from wandb_dagster.store.migrate import alembic_config as _alembic_config

from . import _helpers


def _revision(url: str) -> str | None:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def test_schema_revision_is_the_migrations_head() -> None:
    # Store.open's fast path trusts this constant; a new migration must bump it.
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head == schema.SCHEMA_REVISION


def test_fresh_open_migrates_to_head_and_records_storage_root(database_url: str) -> None:
    store = Store.open(database_url, storage_root="s3://bucket/root")
    try:
        assert store.storage_root == "s3://bucket/root"
        assert store.dialect == database_url.split(":")[0]
        tables = set(sa.inspect(store._engine).get_table_names())
        assert tables == set(schema.metadata.tables) | {"alembic_version"}
    finally:
        store.close()
    assert _revision(database_url) == schema.SCHEMA_REVISION


def test_storage_root_is_recorded_once(database_url: str) -> None:
    Store.open(database_url, storage_root="/first").close()
    again = Store.open(database_url, storage_root="/second")
    assert again.storage_root == "/first"
    again.close()


def test_migrated_schema_matches_schema_module(database_url: str) -> None:
    Store.open(database_url, storage_root="/r").close()
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, schema.metadata) == []
    finally:
        engine.dispose()


def test_downgrade_to_base_and_upgrade_again(database_url: str) -> None:
    Store.open(database_url, storage_root="/r").close()
    engine = create_engine(database_url)
    config = _alembic_config()
    try:
        with write_engine(engine).begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "base")
        assert set(sa.inspect(engine).get_table_names()) == {"alembic_version"}
        with write_engine(engine).begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), schema.metadata) == []
    finally:
        engine.dispose()


def test_reopen_does_not_import_alembic(database_url: str) -> None:
    Store.open(database_url, storage_root="/r").close()
    code = textwrap.dedent(
        f"""
        import sys
        from wandb_dagster.store import Store
        assert "alembic" not in sys.modules, "importing the store imported alembic"
        store = Store.open({database_url!r}, storage_root="/other")
        assert store.storage_root == "/r", store.storage_root
        assert "alembic" not in sys.modules, "reopening a current database imported alembic"
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_database_from_a_newer_version_is_refused(database_url: str) -> None:
    Store.open(database_url, storage_root="/r").close()
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = :v"), {"v": "9999_future"})
    engine.dispose()
    with pytest.raises(SchemaVersionError, match="9999_future.*upgrade wandb_dagster"):
        Store.open(database_url, storage_root="/r")


def test_concurrent_first_opens_all_succeed(database_url: str) -> None:
    roots = [f"/root{i}" for i in range(4)]
    recorded = _helpers.run_processes(_helpers.open_store, [(database_url, root) for root in roots])
    # Exactly one opener created the workspace; everyone else sees its root.
    assert len(set(recorded)) == 1 and recorded[0] in roots
    assert _revision(database_url) == schema.SCHEMA_REVISION


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_in_memory_sqlite_keeps_one_database(url: str) -> None:
    store = Store.open(url, storage_root="/mem")
    try:
        assert _helpers.commit(store, "d0").version.index == 0
        assert _helpers.commit(store, "d1").version.index == 1
        assert store.storage_root == "/mem"
    finally:
        store.close()


def test_offline_mode_renders_the_ddl(capsys) -> None:
    config = _alembic_config()
    config.set_main_option("sqlalchemy.url", "postgresql://user@host/db")
    command.upgrade(config, "head", sql=True)
    ddl = capsys.readouterr().out
    assert "CREATE TABLE versions" in ddl and "CONSTRAINT uq_memberships_collection_id_version_index" in ddl


def test_upgrading_a_0007_workspace_moves_registries_into_the_default_organization(database_url: str) -> None:
    # A 0007 workspace: registries were created under whatever entity linked first (alice, my-team), with a
    # collection name in both. Built at head, then taken down to 0007 and laid out as 0007 left it.
    store = Store.open(database_url, storage_root="/r")
    v0 = _helpers.commit(store, "d0").version
    v1 = _helpers.commit(store, "d1").version
    store.link_version(v0.pk, "alice", "wandb-registry-model", "DemoModels", aliases=["latest", "production"])
    store.link_version(v1.pk, "my-team", "wandb-registry-model", "DemoModels", aliases=["latest"])
    store.link_version(v1.pk, "my-team", "wandb-registry-model", "Other", aliases=["latest", "staging"])
    store.close()
    engine = create_engine(database_url)
    config = _alembic_config()
    try:
        with write_engine(engine).begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0007")
            conn.execute(sa.text("DELETE FROM entities WHERE name = 'default'"))  # 0007 had no organization
    finally:
        engine.dispose()
    assert _revision(database_url) == "0007"

    upgraded = Store.open(database_url, storage_root="/ignored")
    try:
        assert upgraded.default_organization == "default"
        org = upgraded.organization("default")
        assert org is not None and org.entity == "default"
        assert upgraded.registry_names("default") == ["model"]
        assert upgraded.registry_names("alice") == upgraded.registry_names("my-team") == []
        production = upgraded.resolve("default", "wandb-registry-model", "DemoModels", "production")
        assert production is not None and production.id == v0.id and production.index == 0
        # my-team's DemoModels met alice's: renamed, with its indices and aliases.
        renamed = upgraded.resolve("default", "wandb-registry-model", "DemoModels-my-team", "v0")
        assert renamed is not None and renamed.id == v1.id and renamed.aliases == ["latest"]
        other = upgraded.resolve("default", "wandb-registry-model", "Other", "staging")
        assert other is not None and other.id == v1.id
        # Every entity belongs to the default organization.
        for entity in ("alice", "my-team", _helpers.ENTITY):
            belongs = upgraded.entity_organization(entity)
            assert belongs is not None and belongs.name == "default"
    finally:
        upgraded.close()
    assert _revision(database_url) == schema.SCHEMA_REVISION


def test_upgrade_from_0008_adds_run_files_and_keeps_runs(database_url: str) -> None:
    # A workspace written before run files (revision 0008) opens at head with its runs intact and files usable.
    store = Store.open(database_url, storage_root="/r")
    run = store.create_run("e", "p", "old-run")
    store.close()
    engine = create_engine(database_url)
    config = _alembic_config()
    try:
        with write_engine(engine).begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0008")
        assert not {"run_files", "run_system_metrics"} & set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert _revision(database_url) == "0008"
    store = Store.open(database_url, storage_root="/r")
    try:
        assert store.get_run("e", "p", "old-run") == run
        store.put_run_files(run.pk, [("output.log", "f" * 32, 4)])
        assert [f.name for f in store.run_files(run.pk)] == ["output.log"]
        assert store.run_file_digests() == {"f" * 32}
    finally:
        store.close()
    assert _revision(database_url) == schema.SCHEMA_REVISION


def test_0011_adds_sweeps_and_keeps_the_runs_of_an_0010_database(database_url: str) -> None:
    # A workspace from before sweeps: its runs come through the upgrade as runs of no sweep, and a run can
    # then be a trial of a sweep; downgrading drops the sweeps again and keeps the run.
    Store.open(database_url, storage_root="/r").close()
    engine = create_engine(database_url)
    config = _alembic_config()
    try:
        with write_engine(engine).begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0010")
        assert not {"sweeps", "sweep_trials"} & set(sa.inspect(engine).get_table_names())
        assert "sweep_pk" not in {c["name"] for c in sa.inspect(engine).get_columns("runs")}
    finally:
        engine.dispose()
    # Store.open migrates 0010 -> head.
    store = Store.open(database_url, storage_root="/r")
    try:
        old = store.create_run("e", "p", "old-run")
        sweep = store.create_sweep("e", "p", "sw1", name="s", method="grid", config={"method": "grid"})
        new = store.create_run("e", "p", "trial-run", sweep_pk=sweep.pk)
        assert (store.get_run("e", "p", "old-run").sweep, new.sweep) == (None, "sw1")  # type: ignore[union-attr]
        assert [r.id for r in store.sweep_runs(sweep.pk)] == ["trial-run"]
        assert old.sweep is None
    finally:
        store.close()
    engine = create_engine(database_url)
    try:
        with write_engine(engine).begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0010")
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM runs")).scalar_one() == 2
        with write_engine(engine).begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), schema.metadata) == []
    finally:
        engine.dispose()


def test_0014_adds_trial_values_and_keeps_the_trials_of_an_0011_database(database_url: str) -> None:
    # Trials claimed before 0014 come through the upgrade with no value; a trial ended after it records one;
    # downgrading drops the column and keeps the trials.
    store = Store.open(database_url, storage_root="/r")
    try:
        sweep = store.create_sweep("e", "p", "sw1", name="s", method="random", config={"method": "random"})
        store.claim_sweep_trial(sweep.pk, lambda trials: (None, {"x": 1}), run_cap=None, run_id="t-old")
    finally:
        store.close()
    engine = create_engine(database_url)
    config = _alembic_config()
    try:
        with write_engine(engine).begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0011")
        assert "value" not in {c["name"] for c in sa.inspect(engine).get_columns("sweep_trials")}
    finally:
        engine.dispose()
    store = Store.open(database_url, storage_root="/r")
    try:
        (old,) = store.sweep_trials(sweep.pk)
        assert (old.run_id, old.value, old.params) == ("t-old", None, {"x": 1})
        new = store.claim_sweep_trial(sweep.pk, lambda trials: (None, {"x": 2}), run_cap=None, run_id="t-new")
        run = store.create_run("e", "p", "t-new", sweep_pk=sweep.pk)
        store.append_history(run.pk, [{"_step": 0, "loss": 3.0}, {"_step": 1, "loss": 2.0}])
        store.update_run(run.pk, summary={"loss": 2.5})
        store.end_sweep_trial(new.pk, metric=("loss", "minimize"))  # type: ignore[union-attr]
        assert [t.value for t in store.sweep_trials(sweep.pk)] == [None, 2.0]
    finally:
        store.close()
    engine = create_engine(database_url)
    try:
        with write_engine(engine).begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0011")
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM sweep_trials")).scalar_one() == 2
        with write_engine(engine).begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), schema.metadata) == []
    finally:
        engine.dispose()


def test_upgrade_from_0009_records_the_media_existing_runs_name_for_gc(database_url: str) -> None:
    # Runs logged before gc's tables (0009): the media their history rows and summary name must count as in
    # use after the upgrade, or the first gc deletes them.
    import base64

    def b64(h: str) -> str:
        return base64.b64encode(bytes.fromhex(h)).decode()

    image, listed, table, best, other = ("a" * 32, "b" * 32, "c" * 32, "d" * 32, "e" * 32)
    store = Store.open(database_url, storage_root="/r")
    run = store.create_run("e", "p", "old-run")
    history = [
        {"_step": 0, "img": {"_type": "image-file", "path": "media/images/img_0.png", "digest": b64(image)}},
        {"_step": 1, "imgs": {"_type": "images/separated", "filenames": ["media/images/a.png"],
                              "digests": [b64(listed)], "sizes": [3]},
         "nested": {"t": {"_type": "table-file", "path": "media/table/t_1.table.json", "digest": b64(table)}}},
        {"_step": 2, "loss": 0.5, "text": "not media", "bad": {"_type": "image-file", "digest": "not base64!"}},
    ]  # fmt: skip
    summary = {"best": {"_type": "image-file", "path": "media/images/best_summary.png", "digest": b64(best)}}
    store.update_run(run.pk, history=history, summary=summary)
    store.create_run("e", "p", "no-media")
    store.put_run_files(run.pk, [("output.log", other, 4)])
    store.close()
    engine = create_engine(database_url)
    config = _alembic_config()
    try:
        with write_engine(engine).begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0009")
        assert "run_blobs" not in set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    store = Store.open(database_url, storage_root="/r")
    try:
        referenced, _, _, _ = store.gc_scan()
        assert referenced == {image, listed, table, best, other}
        store.delete_run(run.pk)
        assert store.gc_scan()[0] == set()  # the run's rows went with it
    finally:
        store.close()
    assert _revision(database_url) == schema.SCHEMA_REVISION


def test_0012_adds_reports_and_keeps_the_runs_of_an_0011_database(database_url: str) -> None:
    # A workspace from before reports: its runs come through the upgrade, a report can then be saved in one of
    # its projects, and downgrading drops the reports again and keeps the runs.
    store = Store.open(database_url, storage_root="/r")
    store.create_run("e", "p", "old-run")
    store.close()
    engine = create_engine(database_url)
    config = _alembic_config()
    try:
        with write_engine(engine).begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0011")
        assert "reports" not in set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    store = Store.open(database_url, storage_root="/r")  # migrates 0011 -> head
    try:
        report = store.create_report("e", "p", title="T", description="", width="readable", spec={"blocks": []})
        assert report.id == "Vmlldzox" and store.get_report(report.id) == report  # base64("View:1")
        assert store.get_run("e", "p", "old-run") is not None
    finally:
        store.close()
    engine = create_engine(database_url)
    try:
        with write_engine(engine).begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0011")
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM runs")).scalar_one() == 1
        with write_engine(engine).begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), schema.metadata) == []
    finally:
        engine.dispose()


def test_0013_adds_run_queues_and_keeps_an_0011_database(database_url: str) -> None:
    # A workspace from before Launch: its runs come through the upgrade; queues and items can then be
    # written; downgrading drops both tables again and keeps the runs.
    store = Store.open(database_url, storage_root="/r")
    store.create_run("e", "p", "old-run")
    store.close()
    engine = create_engine(database_url)
    config = _alembic_config()
    try:
        with write_engine(engine).begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0011")
        assert not {"run_queues", "run_queue_items"} & set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    store = Store.open(database_url, storage_root="/r")  # migrates 0011 -> head
    try:
        queue = store.put_run_queue(
            "e", "q", resource_type="local-process", prioritization_mode="V0", config={}, template_variables={},
            external_links={}, create=True,
        )
        item = store.enqueue_run(
            queue.pk, "item-1", entity="e", project="p", job="e/p/job-j:v0", launch={}, template_values={},
            priority=2,
        )
        assert store.get_queue_item("item-1") == item and item.state == "pending"
        assert store.get_run("e", "p", "old-run") is not None
    finally:
        store.close()
    engine = create_engine(database_url)
    try:
        with write_engine(engine).begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0011")
        assert not {"run_queues", "run_queue_items"} & set(sa.inspect(engine).get_table_names())
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM runs")).scalar_one() == 1
        with write_engine(engine).begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), schema.metadata) == []
    finally:
        engine.dispose()

