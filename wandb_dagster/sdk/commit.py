"""Committing a draft artifact: make every blob durable, then publish the version in one transaction.

This ordering is invariant 1 of docs/architecture.md: a version becomes visible only after every blob it names is
durably stored, so a crash at any point leaves either no version or a complete one (orphaned blobs are
reclaimable by ``gc``).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from wandb_dagster.sdk.artifact import draft_contents, mark_committed
from wandb_dagster.sdk.manifest import Manifest, ManifestEntry
from wandb_dagster.sdk.names import validate_metadata
from wandb_dagster.storage.errors import ContentChangedError, MissingBlobsError
from wandb_dagster.storage.hashing import b64_to_hex
from wandb_dagster.store.errors import BlobClaimLostError

if TYPE_CHECKING:
    from wandb_dagster.sdk.artifact import Artifact
    from wandb_dagster.sdk.draft import Draft
    from wandb_dagster.sdk.workspace import Workspace
    from wandb_dagster.store.records import CommitResult, PartRecord

T = TypeVar("T")


def _ensure_blobs(ws: Workspace, source: Workspace, draft: Draft) -> tuple[set[str], dict[str, int]]:
    """Store every blob the draft names that ``ws`` lacks; returns the digests (hex) of all it names and
    their sizes. ``source``: the workspace whose blob store the draft's files were added to."""
    wanted, sizes = draft.stored_blobs()  # hex -> a local file that holds the bytes, if any
    named = set(wanted)
    if source is ws:
        # add_file/add_dir already checked or wrote these blobs in this store; _sync_named proves they are
        # still there once they are durable, so they are not looked up twice.
        wanted = {h: p for h, p in wanted.items() if h not in draft.present}
    if wanted:
        present = ws.blobs.exists_many(wanted, sizes=sizes)
        _store_missing(ws, source, draft, [h for h in wanted if h not in present])
    return named, sizes


def _store_missing(ws: Workspace, source: Workspace, draft: Draft, missing: list[str]) -> None:
    if not missing:
        return
    wanted, sizes = draft.stored_blobs()
    with tempfile.TemporaryDirectory(prefix="wandb-dagster-stage-") as staging:
        _put_missing(ws, source, draft, wanted, sizes, missing, staging)


def _sync_named(ws: Workspace, source: Workspace, draft: Draft, named: set[str], sizes: dict[str, int]) -> None:
    """Make every named blob durable and prove it is there, whatever the count (invariant 1 of
    docs/architecture.md). A blob that vanished since it was added (deleted by hand, a crash) is stored again
    from a file that still holds it; when none does, the log is refused and nothing is committed."""
    try:
        ws.blobs.sync(named, sizes)
    except MissingBlobsError as exc:
        _store_missing(ws, source, draft, exc.hexdigests)
        ws.blobs.sync(named, sizes)


def _put_missing(
    ws: Workspace,
    source: Workspace,
    draft: Draft,
    wanted: dict[str, str | None],
    sizes: dict[str, int],
    missing: list[str],
    staging: str,
) -> None:
    if source is not ws and not source.blobs.is_local:
        _fetch_from_bucket(source, [h for h in missing if wanted[h] is None], wanted, sizes, staging)
    paths = [_local_copy(ws, source, draft, hexdigest, wanted[hexdigest]) for hexdigest in missing]
    # expected= makes the store re-check the bytes it copies: an "immutable" file edited since it was added
    # fails here instead of being logged under a digest it no longer has.
    try:
        ws.blobs.put_files(paths, expected=missing)
    except ContentChangedError as exc:
        raise ValueError(
            f"Artifact {draft.name!r}: a file added with policy='immutable' changed after it was "
            f"added ({exc}). Add it again, or use the default policy='mutable', which copies at add time."
        ) from None
    except FileNotFoundError as exc:
        # An immutable entry's source file, or another workspace's blob, deleted since the file was added.
        raise ValueError(
            f"Artifact {draft.name!r}: {exc.filename or exc} is gone, so it cannot be stored; nothing was "
            "committed. Add the file again before logging."
        ) from None


def _fetch_from_bucket(
    source: Workspace, hexes: list[str], wanted: dict[str, str | None], sizes: dict[str, int], staging: str
) -> None:
    """A draft built in another workspace whose blobs live in a bucket: fetch them (verified) into a staging
    folder first, since the target store only copies from local files. ``wanted`` then names the copies."""
    fetch = [(h, sizes.get(h), os.path.join(staging, h)) for h in hexes]
    if not fetch:
        return
    try:
        source.blobs.get_files(fetch)
    except FileNotFoundError:
        # The batch stops at the first missing blob: fetch the others one by one, so only the blobs that are
        # really gone are reported (by _local_copy, per entry, with the entry's name).
        for item in fetch:
            if not os.path.exists(item[2]):
                with contextlib.suppress(FileNotFoundError):
                    source.blobs.get_files([item])
    for hexdigest, _, dest in fetch:
        if os.path.exists(dest):
            wanted[hexdigest] = dest


def _local_copy(ws: Workspace, source: Workspace, draft: Draft, hexdigest: str, local: str | None) -> str:
    """A local file holding the blob ``hexdigest``: ``local``, else the source workspace's own blob file."""
    if local is None and source is not ws and source.blobs.is_local:
        local = source.blobs.blob_path(hexdigest)
    if local is None:
        names = draft.paths_of_blob(hexdigest)
        raise ValueError(
            f"Artifact {draft.name!r}: the stored copy of {names[0]!r} (md5 {hexdigest}) is no "
            f"longer in {source.blobs.root!r}; add the file again before logging."
        )
    return local


def _merge_latest(ws: Workspace, draft: Draft, entity: str, project: str) -> None:
    """``Artifact(..., incremental=True)``: the new version is the latest one plus this draft's changes."""
    latest = ws.store.resolve(entity, project, draft.name, "latest")
    if latest is not None:
        where = f"manifest of {entity}/{project}/{draft.name}:v{latest.index}"
        draft.merge(Manifest.from_json(ws.store.manifest(latest.pk), where=where))


def _prepare_draft(ws: Workspace, artifact: Artifact, entity: str, project: str) -> None:
    draft = draft_contents(artifact)
    # Metadata may have been changed in place since the constructor validated it (NaN -> null).
    artifact.metadata = validate_metadata(artifact.metadata)
    if draft.incremental:
        _merge_latest(ws, draft, entity, project)


def _with_stored_blobs(ws: Workspace, artifact: Artifact, write: Callable[[set[str], str], T]) -> T:
    """Step 1 of docs/architecture.md section 4 for a draft: every blob it names claimed, stored in ``ws``
    and durable; then ``write(named, claim_token)`` records what names them (a version or a part), which
    checks the claims in its transaction and fails with BlobClaimLostError if they expired meanwhile."""
    draft = draft_contents(artifact)
    source = artifact.workspace or ws
    for attempt in range(2):
        # The claim comes first: from here on a gc leaves these blobs alone, and the checks below see any it
        # deleted before (docs/architecture.md, "Garbage collection"). Not fsynced on SQLite: the commit
        # below is, and makes the claim durable with it.
        unclaimed = [h for h in draft.stored_blobs()[0] if h not in draft.claimed]
        draft.present -= ws.store.claim_blobs(draft.claim_token, unclaimed, durable=False)
        draft.claimed.update(unclaimed)
        named, sizes = _ensure_blobs(ws, source, draft)
        # Every blob the version names, not only those written here: one found already stored may be
        # another writer's that is not durable yet. A few are fsynced one by one, many with one syncfs.
        _sync_named(ws, source, draft, named, sizes)
        try:
            return write(named, draft.claim_token)
        except BlobClaimLostError:
            if attempt:
                raise
            # The claims expired while logging took so long: claim and check every blob again.
            draft.present.clear()
            draft.claimed.clear()
    raise AssertionError("unreachable: the loop returns or raises")


def stored_hexes(manifest: Manifest) -> set[str]:
    """The blobs (hex) a manifest's stored entries name (references name none)."""
    return {b64_to_hex(e.digest) for e in manifest if e.ref is None}


def _distributed_draft(artifact: Artifact, what: str) -> None:
    if not artifact.is_draft():
        raise ValueError(
            f"{what} takes a new Artifact, but {artifact.qualified_name!r} is already committed; build the part "
            "with wandb.Artifact(...) (or artifact.new_draft())."
        )


def upsert_part(
    ws: Workspace,
    artifact: Artifact,
    *,
    entity: str,
    project: str,
    distributed_id: str,
    aliases: list[str],
    run_pk: int | None,
) -> None:
    """``run.upsert_artifact``: store the draft's blobs durably, then record it as one part of the distributed
    artifact (invariant 1 holds for parts: a part row never names a blob that is not durable)."""
    _distributed_draft(artifact, "upsert_artifact")
    _prepare_draft(ws, artifact, entity, project)

    def write(named: set[str], claim: str) -> None:
        ws.store.add_artifact_part(
            entity, project, artifact.collection_name, artifact.type, distributed_id,
            manifest=artifact.manifest.dumps(), metadata=artifact.metadata, description=artifact.description,
            aliases=aliases, run_pk=run_pk, blobs=sorted(named), claim=claim,
        )  # fmt: skip

    _with_stored_blobs(ws, artifact, write)


# Another finish_artifact merging the same parts concurrently makes a commit fail (nothing written); the
# parts are then read again. Each retry means another finisher committed, so a few always suffice.
_FINISH_ATTEMPTS = 8


def finish_parts(
    ws: Workspace,
    artifact: Artifact,
    *,
    entity: str,
    project: str,
    distributed_id: str,
    aliases: list[str],
    tags: list[str],
    run_pk: int | None,
) -> Artifact:
    """``run.finish_artifact``: one version holding every part upserted under ``distributed_id`` plus this
    draft's own entries, committed in one transaction that also deletes the parts merged."""
    _distributed_draft(artifact, "finish_artifact")
    _prepare_draft(ws, artifact, entity, project)

    def write(named: set[str], claim: str) -> Artifact:
        return _finish(ws, artifact, entity, project, distributed_id, aliases, tags, run_pk, named, claim)

    return _with_stored_blobs(ws, artifact, write)


def _finish(
    ws: Workspace,
    artifact: Artifact,
    entity: str,
    project: str,
    distributed_id: str,
    aliases: list[str],
    tags: list[str],
    run_pk: int | None,
    named: set[str],
    claim: str,
) -> Artifact:
    from wandb_dagster.store import PartsTakenError

    name = artifact.collection_name
    for _ in range(_FINISH_ATTEMPTS):
        parts = ws.store.artifact_parts(entity, project, name, distributed_id)
        if parts and parts[0].type != artifact.type:
            raise ValueError(
                f"The parts of {entity}/{project}/{name} (distributed_id {distributed_id!r}) have type "
                f"{parts[0].type!r}, not {artifact.type!r}; finish it with type={parts[0].type!r}."
            )
        manifest = _merged(artifact.manifest, parts, f"{entity}/{project}/{name}", distributed_id)
        metadata: dict = {}
        for part in parts:
            metadata.update(part.metadata)
        metadata.update(artifact.metadata)
        description = artifact.description
        for part in parts if description is None else ():
            description = part.description if part.description is not None else description
        all_aliases = list(dict.fromkeys([a for p in parts for a in p.aliases] + aliases))
        try:
            result = ws.store.commit_version(
                entity, project, name, artifact.type, digest=manifest.digest(), manifest=manifest.dumps(),
                size=manifest.size(), file_count=len(manifest), metadata=validate_metadata(metadata),
                description=description, aliases=all_aliases, tags=tags, run_pk=run_pk,
                parts=[p.pk for p in parts], producers=[p.run_pk for p in parts if p.run_pk is not None],
                # The parts' blobs are protected by their part_blobs rows until this transaction swaps them
                # for the version's; only the finishing draft's own are claimed.
                blobs=sorted(stored_hexes(manifest) | named), claim=claim, claimed=sorted(named),
            )  # fmt: skip
        except PartsTakenError:
            continue
        # The version holds more than this draft did: its manifest is read from the store when needed.
        mark_committed(artifact, ws, result.version, created=False)
        return artifact
    raise RuntimeError(
        f"finish_artifact of {entity}/{project}/{name} (distributed_id {distributed_id!r}) lost the race for its "
        f"parts to other finish_artifact calls {_FINISH_ATTEMPTS} times; call finish_artifact once, after every "
        "upsert_artifact has returned."
    )


def _merged(own: Manifest, parts: list[PartRecord], where: str, distributed_id: str) -> Manifest:
    """This draft's entries plus every part's, in upsert order. The finishing draft's own entry at a path wins
    (that is how a conflict is resolved); parts putting different content at one path are an error."""
    merged = Manifest(dict(own.entries))
    added_by: dict[str, str | None] = {}
    for part in parts:
        for entry in Manifest.from_json(part.manifest, where=f"part of {where} upserted by run {part.run_id}"):
            if entry.path in own.entries:
                continue
            held: ManifestEntry | None = merged.get(entry.path)
            if held is None and merged.path_clash(entry.path) is None:
                merged.add(entry)
                added_by[entry.path] = part.run_id
            elif held is None or (held.digest, held.ref) != (entry.digest, entry.ref):
                raise ValueError(
                    f"The parts of distributed artifact {where} (distributed_id {distributed_id!r}) disagree at "
                    f"{entry.path!r}: runs {added_by.get(entry.path, '?')!r} and {part.run_id!r} put different "
                    "content there (or a file where the other has a folder). Nothing was committed and the parts "
                    "are kept: add the entry you want to the artifact passed to finish_artifact, which wins."
                )
    return merged


def commit_artifact(
    ws: Workspace,
    artifact: Artifact,
    *,
    entity: str,
    project: str,
    aliases: list[str],
    tags: list[str],
    run_pk: int | None,
) -> Artifact:
    """Commit ``artifact`` to ``ws`` (or, if it is already committed, apply aliases/tags and lineage)."""
    if not artifact.is_draft():
        if artifact.workspace is not ws:
            raise ValueError(
                f"Artifact {artifact.qualified_name!r} belongs to another workspace ({artifact.workspace!r}); "
                "use artifact.new_draft() and log the draft instead."
            )
        # Already a version of this collection: its blobs are recorded, nothing new is named.
        result = _commit(ws, artifact, artifact.entity, artifact.project, aliases, tags, run_pk, None, None)
    else:
        _prepare_draft(ws, artifact, entity, project)
        result = _with_stored_blobs(
            ws, artifact,
            lambda named, claim: _commit(ws, artifact, entity, project, aliases, tags, run_pk, named, claim),
        )  # fmt: skip
    mark_committed(artifact, ws, result.version, created=result.created)
    return artifact


def _commit(
    ws: Workspace,
    artifact: Artifact,
    entity: str,
    project: str,
    aliases: list[str],
    tags: list[str],
    run_pk: int | None,
    blobs: set[str] | None,
    claim: str | None,
) -> CommitResult:
    manifest = artifact.manifest
    return ws.store.commit_version(
        entity,
        project,
        artifact.collection_name,
        artifact.type,
        digest=manifest.digest(),
        manifest=manifest.dumps(),
        size=manifest.size(),
        file_count=len(manifest),
        metadata=artifact.metadata,
        description=artifact.description,
        aliases=aliases,
        tags=tags,
        run_pk=run_pk,
        blobs=sorted(blobs) if blobs is not None else None,
        claim=claim,
    )
