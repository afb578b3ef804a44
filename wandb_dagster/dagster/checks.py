"""Asset checks on the versions the IO manager writes: are the stored blobs intact, and do the version's
metadata or its run's summary meet thresholds.

Example::

    import dagster as dg
    from wandb_dagster.dagster import wandb_blob_check, wandb_threshold_check

    blobs_ok = wandb_blob_check(model)                              # every stored byte of the version
    good_enough = wandb_threshold_check(
        model, run_filter={"summary_metrics.accuracy": {"$gte": 0.9}},   # the step's run (wandb.run().log)
        version_filter={"metadata.rows": {"$gt": 1000}},                 # the version's own metadata
    )
    defs = dg.Definitions(assets=[model], asset_checks=[blobs_ok, good_enough], resources=resources)

Both check the version the asset's latest materialization recorded (``wandb/artifact_id``), whichever
partition it was; a materialization that recorded no W&B version fails the check and says so.

``wandb_blob_check`` reads every stored file of the version from the workspace's blob storage (never from
the download cache, which would hide a blob damaged in storage), and compares its MD5 and size with the
manifest; it also checks that the manifest still hashes to the version's digest and that the digest is the
one the materialization recorded. References (s3/gs/http) are not read; their number is reported.

``wandb_threshold_check`` takes Mongo-style filters with the query API's fields and semantics:
``version_filter`` as in ``Api().registries().versions(filter)`` (``metadata.<key>``, ``tag``, ``alias``...),
``run_filter`` as in ``Api().runs(filters=...)`` (``summary_metrics.<key>``, ``config.<key>``, ``state``...),
on the step's run that the materialization recorded (``wandb/run``; re-materializing identical content makes
no new version, and that run's summary is the one that describes it). Both are checked when the check is
defined, so a misspelled field fails at load time. The values the filters name are in the check's metadata
(``found``), so a failure shows what was there.
"""

# No `from __future__ import annotations`: Dagster compares the check function's `context` annotation with its
# context classes, and a string annotation is refused.

from collections.abc import Mapping
from typing import Any

import dagster as dg

from wandb_dagster.dagster.observations import _resource, version_metadata
from wandb_dagster.dagster.resources import WandbResource, _step_runs, _step_runs_lock
from wandb_dagster.dagster.sensors import _artifact_record
from wandb_dagster.sdk.artifact import ArtifactNotFoundError
from wandb_dagster.storage.hashing import b64_to_hex, new_md5
from wandb_dagster.store import RUN_FIELDS, VERSION_FIELDS
from wandb_dagster.store import validate_filter as validate

_CHUNK = 1 << 20


class _NoVersion(Exception):
    """The asset has no materialization naming a W&B version; the message says why."""


def _asset_key(asset: Any) -> dg.AssetKey:
    key = getattr(asset, "key", None)
    if isinstance(key, dg.AssetKey):
        return key
    return dg.AssetKey.from_coercible(asset)


def _recorded_version(
    context: Any, resource: WandbResource, resource_key: str, key: dg.AssetKey
) -> tuple[Any, dict[str, Any]]:
    """The version the asset's latest materialization recorded, and that materialization's metadata."""
    result = context.instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key), limit=1)
    if not result.records:
        raise _NoVersion(f"asset {key.to_user_string()!r} has no materialization in this Dagster instance")
    record = result.records[0]
    mat = record.asset_materialization
    metadata = {k: getattr(v, "value", v) for k, v in dict(mat.metadata if mat else {}).items()}
    if "wandb/artifact_id" not in metadata:
        raise _NoVersion(
            f"the latest materialization of {key.to_user_string()!r} (run {record.run_id}) recorded no W&B "
            "version: it returned None or used another IO manager"
        )
    try:
        art = resource.artifact(f"{metadata['wandb/collection']}:{metadata['wandb/artifact_id']}")
    except ArtifactNotFoundError:
        raise _NoVersion(
            f"the recorded version {metadata.get('wandb/artifact')!r} (id {metadata['wandb/artifact_id']}) is not "
            f"in the workspace of the resource {resource_key!r}; deleted, or materialized against "
            "another workspace?"
        ) from None
    if mat is not None and mat.partition is not None:
        metadata["partition"] = mat.partition
    return art, metadata


def _no_version(key: dg.AssetKey, exc: _NoVersion) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, asset_key=key, metadata={"reason": str(exc)})


def stored_problems(art: Any) -> tuple[list[str], dict[str, int]]:
    """What is wrong with the stored version ``art`` (empty when nothing), and what was read.

    Each stored entry's blob is read from the blob storage and hashed; its size is compared too.
    """
    problems: list[str] = []
    counts = {"files_checked": 0, "bytes_checked": 0, "references_skipped": 0}
    manifest = art.manifest
    if manifest.digest() != art.digest:
        problems.append(f"the manifest hashes to {manifest.digest()}, not to the version's digest {art.digest}")
    if manifest.size() != art.size:
        problems.append(f"the manifest's entries total {manifest.size()} bytes, the version records {art.size}")
    blobs = art.workspace.blobs
    for entry in manifest:
        if entry.ref is not None:
            counts["references_skipped"] += 1
            continue
        want = b64_to_hex(entry.digest)
        md5, size = new_md5(), 0
        try:
            with blobs.open(want) as src:
                while chunk := src.read(_CHUNK):
                    md5.update(chunk)
                    size += len(chunk)
        except FileNotFoundError:
            problems.append(f"{entry.path!r}: blob {want} is missing from {blobs.root}")
            continue
        counts["files_checked"] += 1
        counts["bytes_checked"] += size
        if md5.hexdigest() != want:
            problems.append(f"{entry.path!r}: the stored bytes hash to {md5.hexdigest()}, not {want}")
        if entry.size is not None and size != entry.size:
            problems.append(f"{entry.path!r}: {size} bytes stored, the manifest records {entry.size}")
    return problems, counts


def wandb_blob_check(
    asset: Any,
    *,
    name: str = "wandb_blobs_intact",
    resource_key: str = "wandb",
    blocking: bool = False,
    description: str | None = None,
) -> dg.AssetChecksDefinition:
    """An asset check that reads every stored file of the version the asset's latest materialization
    recorded and checks its MD5 digest and size (see the module docstring). ``asset``: an asset definition
    or key; ``blocking=True`` stops downstream assets of the same run when it fails.

    >>> check = wandb_blob_check("features")
    >>> check.check_key.name
    'wandb_blobs_intact'
    """
    key = _asset_key(asset)

    @dg.asset_check(
        asset=key,
        name=name,
        required_resource_keys={resource_key},
        blocking=blocking,
        description=description or "The stored files of the recorded W&B version match their digests and sizes",
    )
    def _check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        resource = _resource(context, resource_key, f"asset check {name!r}")
        try:
            art, recorded = _recorded_version(context, resource, resource_key, key)
        except _NoVersion as exc:
            return _no_version(key, exc)
        problems, counts = stored_problems(art)
        if recorded.get("wandb/digest") not in (None, art.digest):
            problems.insert(0, f"the version's digest is {art.digest}, the materialization recorded "
                               f"{recorded['wandb/digest']}")
        return dg.AssetCheckResult(
            passed=not problems,
            asset_key=key,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                **version_metadata(art),
                **{k: dg.MetadataValue.int(v) for k, v in counts.items()},
                "problems": dg.MetadataValue.json(problems),
            },
            description=None if not problems else f"{len(problems)} problem(s): " + "; ".join(problems[:3]),
        )

    return _check


def _named_fields(filter: Any) -> list[str]:
    """The (non-operator) field names a Mongo-style filter mentions, in order."""
    names: list[str] = []
    if isinstance(filter, Mapping):
        for k, v in filter.items():
            if not str(k).startswith("$") and k not in names:
                names.append(str(k))
            names.extend(n for n in _named_fields(v) if n not in names)
    elif isinstance(filter, (list, tuple)):
        for item in filter:
            names.extend(n for n in _named_fields(item) if n not in names)
    return names


def _dig(value: Any, path: list[str]) -> Any:
    for part in path:
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _flush_live_run(run_id: str) -> None:
    """A tracking run still going in this process (the in-process executor finishes them when the whole
    Dagster run ends) writes its summary now, so the check reads what the asset body logged."""
    with _step_runs_lock:
        live = [r for r in _step_runs.values() if r.id == run_id and not r._finished]
    for run in live:
        run._flush()


def _producing_run(resource: WandbResource, art: Any, recorded: Mapping[str, Any]) -> Any:
    """The run of the materialization (``wandb/run``): re-materializing identical content makes no new
    version, but its run is the one whose summary describes this materialization. Else the version's
    first producer."""
    path = recorded.get("wandb/run")
    if isinstance(path, str) and path:
        _flush_live_run(path.rsplit("/", 1)[-1])
        try:
            return resource.api().run(path)
        except ValueError:  # that run was deleted since
            pass
    first = art.logged_by()
    if first is not None:
        _flush_live_run(first.id)
        first = art.logged_by()
    return first


def wandb_threshold_check(
    asset: Any,
    *,
    version_filter: Mapping[str, Any] | None = None,
    run_filter: Mapping[str, Any] | None = None,
    name: str = "wandb_thresholds",
    resource_key: str = "wandb",
    blocking: bool = False,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
    description: str | None = None,
) -> dg.AssetChecksDefinition:
    """An asset check that passes when the recorded version matches ``version_filter`` and the run that
    logged it matches ``run_filter`` (Mongo-style; see the module docstring). Give at least one.

    >>> check = wandb_threshold_check("model", run_filter={"summary_metrics.accuracy": {"$gte": 0.9}})
    >>> check.check_key.name
    'wandb_thresholds'
    """
    key = _asset_key(asset)
    if version_filter is None and run_filter is None:
        raise ValueError(
            f"wandb_threshold_check({key.to_user_string()!r}): give version_filter= (e.g. "
            "{'metadata.rows': {'$gt': 1000}}) or run_filter= (e.g. {'summary_metrics.accuracy': {'$gte': 0.9}})."
        )
    try:
        checked_version = None if version_filter is None else validate(version_filter, VERSION_FIELDS)
    except ValueError as exc:
        raise ValueError(f"version_filter of check {name!r} on {key.to_user_string()!r}: {exc}") from None
    try:
        checked_run = None if run_filter is None else validate(run_filter, RUN_FIELDS)
    except ValueError as exc:
        raise ValueError(f"run_filter of check {name!r} on {key.to_user_string()!r}: {exc}") from None

    @dg.asset_check(
        asset=key,
        name=name,
        required_resource_keys={resource_key},
        blocking=blocking,
        description=description
        or "The recorded W&B version matches " + " and ".join(
            f"{label} {dict(f)}" for label, f in (("version_filter", version_filter), ("run_filter", run_filter)) if f
        ),
    )
    def _check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        resource = _resource(context, resource_key, f"asset check {name!r}")
        try:
            art, recorded = _recorded_version(context, resource, resource_key, key)
        except _NoVersion as exc:
            return _no_version(key, exc)
        found: dict[str, Any] = {}
        passed = True
        if checked_version is not None:
            record = _artifact_record(art)
            passed = checked_version.matches(record)
            for field in _named_fields(version_filter):
                if field.startswith("metadata."):
                    found[field] = _dig(art.metadata, field.split(".")[1:])
        if checked_run is not None:
            run = _producing_run(resource, art, recorded)
            if run is None:
                passed = False
                found["run"] = None
            else:
                found["run"] = "/".join(run.path)
                passed = checked_run.matches(run._record) and passed
                for field in _named_fields(run_filter):
                    head, _, rest = field.partition(".")
                    if head == "summary_metrics" and rest:
                        found[field] = _dig(run._record.summary, rest.split("."))
                    elif head == "config" and rest:
                        found[field] = _dig(run._record.config, rest.split("."))
        return dg.AssetCheckResult(
            passed=bool(passed),
            asset_key=key,
            severity=severity,
            metadata={**version_metadata(art), "found": dg.MetadataValue.json(found)},
        )

    return _check
