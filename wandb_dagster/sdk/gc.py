"""Garbage collection: delete the blobs no committed version, pending part or run names, safely while other
processes log.

The protocol (docs/architecture.md, "Garbage collection"; the SQL is store/blob_refs.py):

1. List the blob storage, then read in one snapshot which blobs committed versions, pending parts and runs
   (their files, their history's and summary's media) name and which live claims name (writers claim blobs
   before they rely on them), and read every committed manifest too, so a version whose blob list is missing
   still protects its blobs.
2. Mark the blobs found unused (on the database's clock); drop the marks of blobs in use again.
3. Delete, in batches, blobs marked longer ago than the grace period: each batch is one transaction that
   excludes every claim, re-checks claims and references, deletes the blobs from storage and records the
   deletion before it commits.

Example::

    >>> from wandb_dagster.sdk.gc import collect_garbage
    >>> report = collect_garbage(ws, grace_s=3600)           # doctest: +SKIP
    >>> report.deleted, report.bytes_freed                   # doctest: +SKIP
    (12, 40960)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from wandb_dagster.sdk.manifest import Manifest
from wandb_dagster.storage.hashing import b64_to_hex

if TYPE_CHECKING:
    from wandb_dagster.sdk.workspace import Workspace

DEFAULT_GRACE_S = 3600.0
"""A blob is deleted only once it has been found unused by a gc at least this long before (database clock)."""
DELETE_BATCH = 200
"""Blobs deleted per transaction: writers' claims wait for one batch at most."""
TEMP_MIN_AGE_S = 3600.0
"""Temp files and unfinished uploads younger than this are never removed, whatever the grace period: a
large upload in progress keeps its temp file for a long time."""


@dataclasses.dataclass
class ExpireReport:
    """Versions whose TTL is up: ``deleted`` (or, in a dry run, to be deleted) and ``kept`` (with the reason:
    an alias holds them, as :meth:`Artifact.delete` requires, or a registry links them)."""

    dry_run: bool
    deleted: list[str] = dataclasses.field(default_factory=list)
    kept: list[dict[str, str]] = dataclasses.field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def expire_versions(ws: Workspace, *, dry_run: bool = False) -> ExpireReport:
    """Delete the committed versions whose TTL is up (docs/behaviour.md, "Retention"), each with a
    DELETE_ARTIFACT event; their blobs go at a gc once nothing else names them."""
    from wandb_dagster.store import AliasInUseError, NotFoundError

    report = ExpireReport(dry_run=dry_run)
    for row in ws.store.expired_versions():
        if row["linked"]:
            report.kept.append({"version": row["version"], "reason": "linked to a registry"})
            continue
        if row["aliases"]:
            report.kept.append({"version": row["version"], "reason": f"has aliases {row['aliases']}"})
            continue
        if dry_run:
            report.deleted.append(row["version"])
            continue
        try:
            ws.store.delete_version(row["pk"], delete_aliases=False)
        except AliasInUseError as exc:  # an alias added since the read above
            report.kept.append({"version": row["version"], "reason": str(exc)})
        except NotFoundError:
            continue  # deleted meanwhile
        else:
            report.deleted.append(row["version"])
    return report


@dataclasses.dataclass
class GcReport:
    """What a gc found and did (``dry_run``: what it would do)."""

    dry_run: bool
    blobs: int = 0
    bytes: int = 0
    unused: int = 0
    unused_bytes: int = 0
    marked: int = 0
    deleted: int = 0
    bytes_freed: int = 0
    waiting: int = 0
    temps_removed: int = 0
    claims_expired: int = 0
    expired: ExpireReport | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def committed_manifest_blobs(ws: Workspace) -> set[str]:
    """The blobs every committed version's and pending distributed-artifact part's manifest names (stored
    entries, not references). gc reads them besides the recorded lists, so that a row missing from those
    (verify reports it) never costs a blob."""
    out: set[str] = set()
    for what, rows in (("version", ws.store.committed_manifests()), ("artifact part", ws.store.part_manifests())):
        for pk, text in rows:
            manifest = Manifest.from_json(text, where=f"the manifest of {what} {pk}")
            out.update(b64_to_hex(e.digest) for e in manifest if e.ref is None)
    return out


def collect_garbage(
    ws: Workspace,
    *,
    grace_s: float = DEFAULT_GRACE_S,
    dry_run: bool = False,
    progress: Callable[[int, int], Any] | None = None,
    expire: bool = True,
) -> GcReport:
    """Delete the blobs of ``ws`` that no committed version, pending part or run names and that were found
    unused by a gc at least ``grace_s`` seconds ago (this one, with ``grace_s=0``), temp files of crashed
    writers and unfinished uploads, and expired claims. ``dry_run``: change nothing, report what would go.
    ``progress(done, total)``: called as blobs are deleted. ``expire``: first delete the versions whose TTL
    is up (:func:`expire_versions`), so that their blobs are considered too."""
    if grace_s < 0:
        raise ValueError(f"grace_s={grace_s} is negative; pass the seconds a blob must stay unused (e.g. 3600)")
    report = GcReport(dry_run=dry_run)
    if expire:
        report.expired = expire_versions(ws, dry_run=dry_run)
    # Listing first: a blob written after it is not considered at all, and one written before is covered by
    # the claim its writer took before relying on it, which the scan below reads.
    stored = dict(ws.blobs.iter_blobs())
    report.blobs, report.bytes = len(stored), sum(stored.values())
    referenced, claimed, marks, db_now = ws.store.gc_scan()
    in_use = referenced | claimed | committed_manifest_blobs(ws)
    unused = {h for h in stored if h not in in_use}
    report.unused, report.unused_bytes = len(unused), sum(stored[h] for h in unused)
    live_marks = {h: at for h, (at, gone) in marks.items() if gone is None}
    due = sorted(h for h in unused if h in live_marks and (db_now - live_marks[h]).total_seconds() >= grace_s)
    if dry_run:
        report.marked = len([h for h in unused if h not in live_marks])
        report.deleted = len(due) if grace_s > 0 else len(unused)
        report.bytes_freed = sum(stored[h] for h in (due if grace_s > 0 else unused))
        report.waiting = report.unused - report.deleted
        return report
    stale = [h for h in live_marks if h not in unused]  # in use again, or no longer stored
    report.marked = ws.store.gc_mark(sorted(h for h in unused if h not in live_marks), stale)
    if grace_s == 0:
        due = sorted(unused)
    done = 0
    for i in range(0, len(due), DELETE_BATCH):
        with ws.store.gc_deleting(due[i : i + DELETE_BATCH], grace_s) as doomed:
            for h in doomed:
                try:
                    ws.blobs.delete(h)
                except FileNotFoundError:
                    pass  # deleted by hand or by another gc: gone either way
                report.deleted += 1
                report.bytes_freed += stored[h]
        done += len(doomed)
        if progress is not None:
            progress(done, len(due))
    report.waiting = report.unused - report.deleted
    report.temps_removed = ws.blobs.remove_stale_temps(older_than_s=max(grace_s, TEMP_MIN_AGE_S))
    report.claims_expired = ws.store.gc_expire()
    return report
