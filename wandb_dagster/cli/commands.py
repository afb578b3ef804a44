"""The commands of ``wandb-dagster`` (W&B's names where W&B has the command)."""

from __future__ import annotations

import json
import os
from typing import Any

import click

from wandb_dagster.cli.main import Output, cli, human_size, parse_duration, workspace

pass_out = click.make_pass_decorator(Output)


def _entity_project(path: str) -> tuple[str, str]:
    parts = [p for p in path.strip("/").split("/") if p]
    if len(parts) != 2:
        raise click.BadParameter(f"{path!r} is not entity/project", param_hint="PATH")
    return parts[0], parts[1]


# --------------------------------------------------------------------------------------------- artifacts


@cli.group()
def artifact() -> None:
    """Log, download and list artifacts; manage the download cache."""


@artifact.command("put")
@click.argument("path")
@click.option("--name", "-n", required=True, help="entity/project/name (or project/name) of the collection.")
@click.option("--type", "-t", "type_", default="dataset", show_default=True, help="The artifact type.")
@click.option("--alias", "-a", "aliases", multiple=True, help="An alias to add (repeatable); 'latest' always is.")
@click.option("--description", "-d", default=None, help="The version's description.")
@click.option("--metadata", default=None, help="A JSON object of metadata.")
@click.option("--ttl", default=None, help="Time to live from now, e.g. '30d', '12h' (artifact.ttl); default none.")
@pass_out
def artifact_put(
    out: Output, path: str, name: str, type_: str, aliases: tuple[str, ...], description: str | None,
    metadata: str | None, ttl: str | None,
) -> None:  # fmt: skip
    """Log PATH (a file, a folder, or a URI to reference) as a new version of --name."""
    from wandb_dagster.sdk.artifact import Artifact
    from wandb_dagster.sdk.run import init
    from wandb_dagster.storage.progress import report_progress

    parts = [p for p in name.split("/") if p]
    if not 2 <= len(parts) <= 3:
        raise click.BadParameter(f"{name!r} is not entity/project/name or project/name", param_hint="--name")
    entity = parts[0] if len(parts) == 3 else None
    project, collection = parts[-2], parts[-1]
    meta = json.loads(metadata) if metadata else None
    if meta is not None and not isinstance(meta, dict):
        raise click.BadParameter(f"{metadata!r} is not a JSON object", param_hint="--metadata")
    bar = out.progress()
    with report_progress(bar), init(entity=entity, project=project, job_type="auto", reinit="create_new") as run:
        art = Artifact(collection, type=type_, description=description, metadata=meta)
        if ttl is not None:
            from datetime import timedelta

            art.ttl = timedelta(seconds=parse_duration(ttl))
        if "://" in path:
            art.add_reference(path)
        elif os.path.isdir(path):
            art.add_dir(path)
        elif os.path.isfile(path):
            art.add_file(path)
        else:
            raise click.BadParameter(f"{path!r} is neither a file, a folder nor a URI", param_hint="PATH")
        logged = run.log_artifact(art, aliases=list(aliases))
    data: dict[str, Any] = {
        "artifact": logged.qualified_name, "id": logged.id, "digest": logged.digest, "size": logged.size,
        "files": len(logged.manifest), "aliases": sorted(set(logged.aliases)), "run": run.id,
    }  # fmt: skip
    out.emit(data, f"{data['artifact']} ({data['files']} files, {human_size(logged.size)}) logged by run {run.id}")


@artifact.command("get")
@click.argument("name")
@click.option("--root", default=None, help="Folder to download into (default ./artifacts/<name>:<version>).")
@click.option("--type", "type_", default=None, help="Refuse an artifact of another type.")
@pass_out
def artifact_get(out: Output, name: str, root: str | None, type_: str | None) -> None:
    """Download NAME ([entity/]project/name[:version|alias], default :latest) and print where."""
    from wandb_dagster.api import Api
    from wandb_dagster.storage.progress import report_progress

    art = Api().artifact(name, type=type_)
    with report_progress(out.progress()):
        where = art.download(root)
    data = {"artifact": art.qualified_name, "root": os.path.abspath(where), "files": len(art.manifest)}
    out.emit(data, os.path.abspath(where))


@artifact.command("ls")
@click.argument("path")
@click.option("--type", "-t", "type_", default=None, help="Only collections of this type.")
@pass_out
def artifact_ls(out: Output, path: str, type_: str | None) -> None:
    """List the artifact collections of PATH (entity/project) with their latest version."""
    from wandb_dagster.api import Api
    from wandb_dagster.sdk.artifact import ArtifactNotFoundError

    entity, project = _entity_project(path)
    api = Api()
    rows: list[dict[str, Any]] = []
    for t in api.artifact_types(project=f"{entity}/{project}"):
        if type_ is not None and t.type != type_:
            continue
        for coll in t.collections():
            try:
                latest = api.artifact(f"{entity}/{project}/{coll.name}:latest")
            except ArtifactNotFoundError:
                rows.append({"type": t.type, "name": coll.name, "latest": None})
                continue
            rows.append({
                "type": t.type, "name": coll.name, "latest": latest.version, "aliases": sorted(latest.aliases),
                "size": latest.size, "files": len(latest.manifest), "updated_at": latest.updated_at,
            })  # fmt: skip

    def text() -> str:
        lines = [f"{'TYPE':<16} {'NAME':<32} {'LATEST':<8} {'SIZE':>10}  ALIASES"]
        for r in rows:
            size = human_size(r["size"]) if r.get("size") is not None else "-"
            aliases = ",".join(r.get("aliases", []))
            lines.append(f"{r['type']:<16} {r['name']:<32} {r['latest'] or '-':<8} {size:>10}  {aliases}")
        return "\n".join(lines)

    out.emit(rows, text)


@artifact.command("expire")
@click.option("--dry-run", is_flag=True, help="Change nothing; list what would be deleted.")
@pass_out
def artifact_expire(out: Output, dry_run: bool) -> None:
    """Delete the versions whose TTL is up (those holding an alias or linked to a registry are kept)."""
    from wandb_dagster.sdk.gc import expire_versions

    report = expire_versions(workspace(), dry_run=dry_run)

    def text() -> str:
        verb = "Would delete" if dry_run else "Deleted"
        lines = [f"{verb} {len(report.deleted)} expired version(s)"] + [f"  {v}" for v in report.deleted]
        lines += [f"Kept {k['version']}: {k['reason']}" for k in report.kept]
        return "\n".join(lines)

    out.emit(report.to_json(), text)


@artifact.group("cache")
def artifact_cache() -> None:
    """This machine's download cache."""


@artifact_cache.command("cleanup")
@click.argument("target_size")
@pass_out
def artifact_cache_cleanup(out: Output, target_size: str) -> None:
    """Evict least recently used entries until the cache holds at most TARGET_SIZE (e.g. 10GB)."""
    from wandb_dagster.settings import Settings, parse_size
    from wandb_dagster.storage.cache import DownloadCache

    try:
        target = parse_size(target_size, "TARGET_SIZE")
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="TARGET_SIZE") from None
    settings = Settings.resolve()
    cache = DownloadCache(settings.cache_dir, target)
    freed = cache.evict()
    data = {"cache_dir": str(settings.cache_dir), "target": target, "freed": freed}
    out.emit(data, f"Freed {human_size(freed)} from {settings.cache_dir} (target {human_size(target)})")


# --------------------------------------------------------------------------------------------- runs


@cli.group()
def runs() -> None:
    """Query runs."""


@runs.command("ls")
@click.argument("path")
@click.option("--filter", "filter_", default=None, help='A MongoDB-style JSON filter, e.g. \'{"state": "finished"}\'.')
@click.option("--order", default="+created_at", show_default=True, help="Sort order, as Api.runs.")
@click.option("--limit", default=None, type=int, help="At most this many runs.")
@pass_out
def runs_ls(out: Output, path: str, filter_: str | None, order: str, limit: int | None) -> None:
    """List the runs of PATH (entity/project) that match --filter."""
    from wandb_dagster.api import Api

    entity, project = _entity_project(path)
    try:
        filters = json.loads(filter_) if filter_ else None
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"{filter_!r} is not JSON ({exc})", param_hint="--filter") from None
    rows = []
    for i, run in enumerate(Api().runs(f"{entity}/{project}", filters=filters, order=order)):
        if limit is not None and i >= limit:
            break
        rows.append({
            "id": run.id, "name": run.name, "state": run.state, "created_at": run.created_at, "tags": run.tags,
            "group": run.group, "job_type": run.job_type,
        })  # fmt: skip

    def text() -> str:
        lines = [f"{'ID':<12} {'STATE':<10} {'CREATED':<26} NAME"]
        lines += [f"{r['id']:<12} {r['state']:<10} {str(r['created_at']):<26} {r['name'] or ''}" for r in rows]
        return "\n".join(lines)

    out.emit(rows, text)


# --------------------------------------------------------------------------------------------- workspace


@cli.group("workspace")
def workspace_group() -> None:
    """The workspace as a whole."""


@workspace_group.command("info")
@click.option("--no-blobs", is_flag=True, help="Do not list the blob storage (slow for very large buckets).")
@pass_out
def workspace_info(out: Output, no_blobs: bool) -> None:
    """Database, storage root, sizes and schema revision."""
    from wandb_dagster.store import Store

    ws = workspace()
    data: dict[str, Any] = {
        "database": ws.display_url, "dialect": ws.store.dialect, "storage_root": ws.store.storage_root,
        "schema_revision": Store.schema_revision(ws.url), "schema_head": Store.HEAD_REVISION,
        "cache_dir": str(ws.settings.cache_dir), "cache_size_limit": ws.settings.cache_size,
        **ws.store.counts(),
    }  # fmt: skip
    if not no_blobs:
        sizes = [size for _, size in ws.blobs.iter_blobs()]
        data["blobs"], data["blob_bytes"] = len(sizes), sum(sizes)

    def text() -> str:
        lines = [f"{k}: {data[k]}" for k in ("database", "storage_root", "schema_revision", "cache_dir")]
        lines.append(
            f"projects: {data['projects']}, runs: {data['runs']}, collections: {data['collections']}, "
            f"versions: {data['versions']} ({human_size(data['version_bytes'])})"
        )
        if "blobs" in data:
            lines.append(f"blobs: {data['blobs']} ({human_size(data['blob_bytes'])})")
        return "\n".join(lines)

    out.emit(data, text)


# --------------------------------------------------------------------------------------------- database


@cli.group()
def db() -> None:
    """The workspace database's schema (Alembic)."""


def _database_url() -> str:
    from wandb_dagster.settings import Settings

    return Settings.resolve().database_url


def _shown(url: str) -> str:
    from wandb_dagster.store import Store

    return Store.shown_url(url)


@db.command("current")
@pass_out
def db_current(out: Output) -> None:
    """The database's schema revision and this wandb_dagster's newest (changes nothing)."""
    from wandb_dagster.store import Store

    SCHEMA_REVISION = Store.HEAD_REVISION
    url = _database_url()
    current = Store.schema_revision(url)
    current_is_head = current == SCHEMA_REVISION
    data = {"database": _shown(url), "current": current, "head": SCHEMA_REVISION, "up_to_date": current_is_head}
    out.emit(data, f"{current or '(none)'}{' (head)' if current_is_head else f' (head is {SCHEMA_REVISION})'}")


@db.command("upgrade")
@pass_out
def db_upgrade(out: Output) -> None:
    """Create or upgrade the database's schema to this wandb_dagster's newest revision."""
    from wandb_dagster.settings import Settings
    from wandb_dagster.store import Store

    SCHEMA_REVISION = Store.HEAD_REVISION
    settings = Settings.resolve()
    before = Store.schema_revision(settings.database_url)
    Store.open(settings.database_url, storage_root=settings.storage_root).close()
    data = {"database": _shown(settings.database_url), "from": before, "to": SCHEMA_REVISION}
    out.emit(data, f"{before or '(none)'} -> {SCHEMA_REVISION}")


# --------------------------------------------------------------------------------------------- maintenance


@cli.command()
@click.option("--sample", type=int, default=None, help="Check only N versions, chosen at random.")
@click.option("--seed", type=int, default=None, help="Seed of the --sample choice.")
@click.option("--repair", is_flag=True, help="Replace missing or corrupt blobs from a good copy where one exists.")
@click.option(
    "--from", "sources", multiple=True, type=click.Path(exists=True),
    help="A file or folder holding good copies for --repair (repeatable).",
)  # fmt: skip
@pass_out
def verify(out: Output, sample: int | None, seed: int | None, repair: bool, sources: tuple[str, ...]) -> None:
    """Check every version's blobs (present, size, MD5) and the database's consistency; exit 1 on a problem."""
    from wandb_dagster.sdk.verify import verify_workspace

    ws = workspace()
    bar = out.progress()
    report = verify_workspace(
        ws, sample=sample, seed=seed, repair=repair, sources=sources,
        on_bytes=None if bar is None else _ByteCounter(bar),
    )  # fmt: skip
    if bar is not None:
        bar.done()

    def text() -> str:
        lines = [f"Checked {report.versions} versions, {report.blobs} blobs ({human_size(report.bytes)})"]
        for p in report.problems:
            state = " [repaired]" if p.get("repaired") else ""
            lines.append(f"{p['kind']}: {p.get('detail', '')}{state}")
            lines += [f"  {e['version']} {e['path']}" for e in p.get("entries", [])]
        return "\n".join(lines)

    out.emit(report.to_json(), text)
    if not report.ok:
        left = [p for p in report.problems if not p.get("repaired")]
        raise click.ClickException(f"{len(left)} problem(s) found" + ("" if repair else "; see above, or try --repair"))


class _ByteCounter:
    def __init__(self, bar: Any) -> None:
        self.bar, self.done = bar, 0

    def __call__(self, n: int) -> None:
        self.done += n
        self.bar(self.done, 0, 0, 0)


@cli.command()
@click.option("--dry-run", is_flag=True, help="Change nothing; report what would be deleted.")
@click.option(
    "--grace", default="1h", show_default=True,
    help="Delete a blob only once a gc found it unused at least this long ago (database clock); '0' deletes "
    "unused blobs at once (safe for committed versions, but a writer still adding files may have to retry).",
)  # fmt: skip
@pass_out
def gc(out: Output, dry_run: bool, grace: str) -> None:
    """Delete blobs no committed version names, leftover temp files and unfinished uploads."""
    from wandb_dagster.sdk.gc import collect_garbage

    ws = workspace()
    report = collect_garbage(ws, grace_s=parse_duration(grace), dry_run=dry_run)
    r = report

    def text() -> str:
        verb = "Would delete" if r.dry_run else "Deleted"
        line = (
            f"{verb} {r.deleted} blobs ({human_size(r.bytes_freed)}) of {r.blobs} ({human_size(r.bytes)}); "
            f"{r.unused} unused, {r.waiting} waiting for the grace period ({grace}); "
            f"{r.temps_removed} temp files/uploads removed"
        )
        if r.expired is not None and (r.expired.deleted or r.expired.kept):
            line += f"; {len(r.expired.deleted)} expired version(s) deleted, {len(r.expired.kept)} kept"
        return line

    out.emit(report.to_json(), text)


# --------------------------------------------------------------------------------------------- web app


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything: treat it as reachable


@cli.command("ui")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="The address to listen on; anything but loopback requires --token.")
@click.option("--port", default=8600, show_default=True, type=click.IntRange(0, 65535), help="The port to listen on.")
@click.option("--token", default=None, envvar="WANDB_DAGSTER_UI_TOKEN",
              help="An access token every request must carry (Authorization: Bearer, or ?token= once). "
                   "[env: WANDB_DAGSTER_UI_TOKEN]")
def ui(host: str, port: int, token: str | None) -> None:
    """Serve the web app (read-only pages of the workspace: runs, charts, artifacts, registries, reports)."""
    if not _is_loopback(host) and not token:
        raise click.ClickException(
            f"--host {host} is reachable from other machines; give an access token with --token or "
            "WANDB_DAGSTER_UI_TOKEN (or listen on 127.0.0.1)"
        )
    import uvicorn

    from wandb_dagster.app.server import create_app

    app = create_app(token=token)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"wandb-dagster ui: http://{shown}:{port}/" + (" (access token required)" if token else ""), err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")


# --------------------------------------------------------------------------------------------- imports


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--tensorboard", "tensorboard", default=None, type=click.Path(),
    help="A folder of TensorBoard event files to import as one run's history (Api().sync_tensorboard).",
)  # fmt: skip
@click.option("--entity", "-e", default=None, help="Put the runs in this entity (default: the run's own).")
@click.option("--project", "-p", default=None, help="Put the runs in this project (default: the run's own).")
@click.option("--id", "run_id", default=None, help="The run id to import into (one run folder, or --tensorboard).")
@pass_out
def sync(
    out: Output, paths: tuple[str, ...], tensorboard: str | None, entity: str | None, project: str | None,
    run_id: str | None,
) -> None:  # fmt: skip
    """Import W&B offline run folders (wandb/offline-run-*, or the wandb/ folder above them) and TensorBoard logs.

    As `wandb sync`, but into this workspace: each run with its config, summary, history, files and the
    artifacts it logged (W&B's digests, checked). Importing again adds only what is new.
    """
    from wandb_dagster.sdk.imports import sync_tensorboard, sync_wandb_runs
    from wandb_dagster.storage.progress import report_progress

    if not paths and tensorboard is None:
        raise click.UsageError("give W&B run folders (PATH...) or --tensorboard DIR")
    if paths and tensorboard is not None and run_id is not None:
        raise click.UsageError("--id names one run: import the W&B folders and the TensorBoard logs separately")
    ws = workspace()
    reports = []
    with report_progress(out.progress()):
        if paths:
            reports += sync_wandb_runs(paths, workspace=ws, entity=entity, project=project, run_id=run_id)
        if tensorboard is not None:
            reports.append(sync_tensorboard(tensorboard, run_id=run_id, project=project, entity=entity, workspace=ws))

    def text() -> str:
        lines = []
        for r in reports:
            if not r.path:
                lines.append(f"Skipped {r.source}: " + "; ".join(r.skipped))
                continue
            new = [f"{r.history_rows} history rows", f"{r.system_metrics} system metrics samples", f"{r.files} files",
                   f"{len(r.artifacts)} artifact versions"]  # fmt: skip
            head = "Imported" if r.created else "Updated" if r.history_rows or r.files or r.artifacts else "Up to date:"
            lines.append(f"{head} {r.path} from {r.source}: " + ", ".join(new) + "".join(f"; {a}" for a in r.artifacts))
            lines += [f"  skipped {s}" for s in r.skipped]
        return "\n".join(lines)

    out.emit({"runs": [r.to_json() for r in reports]}, text)
