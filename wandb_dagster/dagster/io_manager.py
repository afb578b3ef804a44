"""``WandbArtifactIOManager``: every asset output becomes a version of an artifact collection.

Example::

    import dagster as dg
    from wandb_dagster.dagster import WandbArtifactIOManager, WandbResource

    wandb = WandbResource(project="bikes")

    @dg.asset(metadata={"wandb": {"type": "dataset"}})
    def features() -> dict:
        return {"x": [1, 2, 3]}                      # pickled into collection "features", version vN

    @dg.asset
    def model(features: dict) -> dict:               # loads exactly the version features recorded
        return {"mean": sum(features["x"]) / 3}

    defs = dg.Definitions(assets=[features, model],
                          resources={"wandb": wandb, "io_manager": WandbArtifactIOManager(wandb=wandb)})

What an asset may return: any picklable object (pickle by default; ``serializer`` picks cloudpickle,
joblib, json or parquet), a ``pathlib.Path``/``UPath`` to a file or directory (its files are logged), a
:class:`Reference` (or a list of them) to s3/gs/http/file URIs, an ``Artifact`` (logged as it is), or None
(nothing is logged; a warning says so). Per-asset options: see :mod:`wandb_dagster.dagster.options`.

Trust model: loading a pickle (pickle, cloudpickle, joblib) runs code chosen by whoever wrote it. Inputs are
unpickled only from files stored in this workspace's blob storage (never references), written by this IO
manager (the version records its serializer), and whose digest matches what the materialization recorded.
Anyone who can write to the workspace's database and storage can therefore run code in your pipelines:
grant write access as you would grant a deploy key.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import dagster as dg
from pydantic import Field

from wandb_dagster.dagster import serializers
from wandb_dagster.dagster.names import collection_name
from wandb_dagster.dagster.options import METADATA_KEY, InputOptions, OutputOptions, parse_options
from wandb_dagster.dagster.resources import WandbResource, _current_step_context
from wandb_dagster.sdk.artifact import Artifact, ArtifactNotFoundError
from wandb_dagster.storage.uri_credentials import redact, redact_exception, redacted_errors

PARTITION_ENTRY = ".dagster-partition"
_META = "dagster"  # key of the version metadata this IO manager writes
_EPHEMERAL_RUN_ID = "__EPHEMERAL_RUN_ID"  # what Dagster reports as the run of an upstream outside this run


@dataclass(frozen=True)
class Reference:
    """An output that is a reference to external data: ``s3://``, ``gs://``, ``http(s)://`` or ``file://``.

    >>> @dg.asset
    ... def raw_images() -> Reference:
    ...     return Reference("s3://my-bucket/images/")          # doctest: +SKIP

    ``checksum=False`` records the URI only (the content is not tracked); ``name`` is the entry name.
    """

    uri: str
    checksum: bool = True
    name: str | None = None
    max_objects: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.uri, str) or "://" not in self.uri:
            raise ValueError(
                f"Reference uri {redact(str(self.uri))!r} is not a URI; give e.g. 's3://bucket/key', "
                "'gs://bucket/key', 'https://host/file' or 'file:///abs/path'."
            )


class WandbIOManagerError(Exception):
    """An output could not be stored, or an input could not be loaded. The message names the asset, the
    partition and the cause. No partial version is ever left behind: versions are committed atomically.

    The message never carries a credential (a database password, a URL's signature): it is redacted here,
    because Dagster writes it to its run storage, event log and compute logs (docs/architecture.md
    invariant 7)."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


def _describe(asset_key: Any, partition: Any = None, step_key: str | None = None) -> str:
    what = f"asset {asset_key.to_user_string()!r}" if asset_key is not None else f"step output {step_key!r}"
    return f"{what}, partition {partition!r}" if partition is not None else what


def _local_path_of(obj: Any) -> Path | None:
    """A local Path for a Path or a local UPath; None for anything else."""
    if isinstance(obj, Path):
        return obj
    protocol = getattr(obj, "protocol", None)
    if protocol is not None and hasattr(obj, "fs") and protocol in ("", "file", "local"):
        return Path(obj.path)
    return None


def _is_remote_upath(obj: Any) -> bool:
    remote = getattr(obj, "protocol", None) not in (None, "", "file", "local")
    return remote and hasattr(obj, "fs") and hasattr(obj, "path")


def _plain_metadata(metadata: Any) -> dict[str, Any]:
    return {k: getattr(v, "value", v) for k, v in dict(metadata or {}).items()}


class WandbArtifactIOManager(dg.ConfigurableIOManager):
    """Stores each output as a version of the collection named from the asset's full key
    (:func:`~wandb_dagster.dagster.names.collection_name`); loads inputs from the exact version the
    upstream materialization recorded."""

    wandb: WandbResource
    default_type: str = Field(default="asset", description="Artifact type when an asset's options give none.")
    download_dir: str | None = Field(
        default=None,
        description="Where inputs loaded as paths are downloaded (one folder per version, reused). "
        "Default: <cache folder>/inputs/<workspace>, the cache folder being WANDB_DAGSTER_CACHE_DIR "
        "(~/.cache/wandb-dagster).",
    )

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Before the op body runs (see WandbResource.check_workspace): the workspace opens, or the step fails.
        self.wandb.check_workspace()

    # ================================================================== outputs

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        with redacted_errors():
            self._handle_output(context, obj)

    def _handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if context.has_asset_partitions and len(context.asset_partition_keys) > 1:
            self._handle_partition_range(context, obj)
            return
        asset_key = context.asset_key if context.has_asset_key else None
        partition = self._output_partition(context)
        where = _describe(asset_key, partition, getattr(context, "step_key", None))
        opts: OutputOptions = parse_options(context.definition_metadata.get(METADATA_KEY), OutputOptions, where)
        if obj is None:
            if asset_key is None or _is_nothing(context):
                # An op that returns nothing (a side effect, a notification) is the norm when this is the
                # default io_manager: there is nothing to version and nothing to warn about.
                context.log.debug(f"{where} returned None: nothing to log to W&B.")
                return
            context.log.warning(redact(
                f"{where} returned None: nothing was logged to W&B and downstream inputs cannot load it. "
                "Return the value (or a Path/Reference/Artifact) to record a version, or annotate the asset "
                "'-> None' if it has no value."
            ))
            return
        name = collection_name(asset_key if asset_key is not None else [context.step_key, context.name])
        run = self.wandb._run_for_output(context)
        try:
            with tempfile.TemporaryDirectory(prefix="wandb-dagster-out-") as tmp:
                artifact, info = self._build(obj, name, opts, asset_key, partition, Path(tmp), run)
                logged = run.log_artifact(artifact, aliases=opts.aliases, tags=opts.tags)
        except Exception as exc:
            run.finish(exit_code=1)  # the step fails with this error: its tracking run failed too
            raise WandbIOManagerError(
                f"{where}: could not store the output as an artifact ({type(exc).__name__}: {exc}); no version "
                "was created."
            ) from redact_exception(exc)
        links = []
        for link in opts.link_to:
            try:
                links.append(run.link_artifact(logged, link.target, aliases=link.aliases))
            except Exception as exc:
                raise WandbIOManagerError(
                    f"{where}: stored as {logged.qualified_name}, but linking it to {link.target!r} failed "
                    f"({type(exc).__name__}: {exc})."
                ) from redact_exception(exc)
        metadata = _redacted_metadata(self._materialization_metadata(run, logged, links, info, partition))
        context.add_output_metadata(metadata)
        # The version label in the run's event list (Dagster gives an IO manager no way to set the
        # materialization's description).
        reused = metadata.get("wandb/created_in_dagster_run")
        reused_note = (
            f"; identical content, so no new version: created in Dagster run {reused.value}"
            if isinstance(reused, dg.DagsterRunMetadataValue) and reused.value != context.run_id
            else ""
        )
        context.log.info(
            f"{where}: logged {logged.collection_name}:{logged.version} ({human_size(logged.size)}, "
            f"{logged.file_count} file{'s' if logged.file_count != 1 else ''}) in {logged.entity}/{logged.project}"
            f"{reused_note}"
        )
        if asset_key is not None:
            _report_data_version(context, asset_key, logged)
            _remember(run, asset_key, partition, metadata, logged)

    def _handle_partition_range(self, context: dg.OutputContext, obj: Any) -> None:
        """A run covering several partitions (a single-run backfill, ``BackfillPolicy.single_run()``): the
        asset returns a dict partition key -> value, as Dagster's own path IO managers expect, and each value
        is stored as that partition's version, with that partition's materialization metadata."""
        keys = [str(k) for k in context.asset_partition_keys]
        # Dagster gives the keys of a run's subset in no stable order; the range is what the user launched.
        span = context.asset_partition_key_range
        where = f"{_describe(context.asset_key)} ({len(keys)} partitions, {span.start!r} .. {span.end!r})"
        if obj is None:
            context.log.warning(f"{where} returned None: nothing was logged to W&B.")
            return
        if not isinstance(obj, Mapping):
            raise WandbIOManagerError(
                f"{where}: a run over several partitions must return a dict partition key -> value (one version "
                f"per partition; context.partition_keys lists them), got {type(obj).__name__}."
            )
        values = {str(k): v for k, v in obj.items()}
        missing = sorted(k for k in keys if k not in values)
        extra = sorted(set(values) - set(keys))
        if missing or extra:
            raise WandbIOManagerError(
                f"{where}: the returned dict must have exactly the run's partition keys; missing {missing[:10]}, "
                f"not in this run {extra[:10]}. Return {{key: value for key in context.partition_keys}}."
            )
        try:
            step_context = context.step_context
        except Exception:
            raise WandbIOManagerError(
                f"{where}: storing several partitions in one output needs a Dagster step (materialize or a "
                "job run), which records each partition's metadata."
            ) from None
        digests: dict[str, str] = {}
        for original in context.asset_partition_keys:  # MultiPartitionKey objects stay what Dagster gave
            one = _OnePartition(context, step_context, original)
            self._handle_output(one, values[str(original)])  # type: ignore[arg-type]
            if one.digest is not None:
                digests[str(original)] = one.digest
        # Dagster keeps one DataVersion per asset and step, shared by all the run's partitions. A hash of the
        # partitions' digests (not Dagster's logical version, new in each run without a code version) keeps
        # an unchanged re-run of the same range fresh; any changed partition changes it for all of them.
        if digests:
            combined = hashlib.sha256(json.dumps(sorted(digests.items())).encode()).hexdigest()
            step_context.set_data_version(context.asset_key, dg.DataVersion(combined))

    @staticmethod
    def _output_partition(context: dg.OutputContext) -> str | None:
        if not context.has_asset_partitions:
            return None
        return str(context.asset_partition_keys[0])

    def _build(
        self,
        obj: Any,
        name: str,
        opts: OutputOptions,
        asset_key: Any,
        partition: str | None,
        tmp: Path,
        run: Any,
    ) -> tuple[Artifact, dict[str, Any]]:
        if isinstance(obj, Artifact):
            return obj, {"kind": "artifact"}
        record: dict[str, Any] = {
            "asset_key": list(asset_key.path) if asset_key is not None else None,
            "partition": partition,
        }
        # Files go straight into the run's workspace (not the process default one).
        artifact = Artifact(
            name, type=opts.type or self.default_type, description=opts.description, workspace=run.workspace
        )
        record.update(self._add_output(artifact, obj, opts, tmp))
        if partition is not None:
            # One version per partition: without this entry two partitions with equal content would share a
            # version (the digest counts only paths and file digests).
            marker = tmp / PARTITION_ENTRY
            marker.write_text(json.dumps({"partition": partition}) + "\n")
            artifact.add_file(str(marker), name=PARTITION_ENTRY)
        _add_extras(artifact, opts)
        artifact.metadata = {**opts.metadata, _META: record}
        return artifact, {k: v for k, v in record.items() if k in ("kind", "serializer", "entry")}

    def _add_output(self, artifact: Artifact, obj: Any, opts: OutputOptions, tmp: Path) -> dict[str, Any]:
        """Add what the asset returned to ``artifact``; returns how it was stored (kind, entry, serializer)."""
        local = _local_path_of(obj)
        refs = self._references(obj)
        if local is not None or _is_remote_upath(obj):
            return _add_path(artifact, obj, local, tmp)
        if refs is not None:
            for ref in refs:
                artifact.add_reference(ref.uri, name=ref.name, checksum=ref.checksum, **(
                    {"max_objects": ref.max_objects} if ref.max_objects is not None else {}
                ))
            return {"kind": "reference"}
        serializer = serializers.get(opts.serializer or "pickle")
        entry = f"output.{serializer.extension}"
        target = tmp / entry
        serializer.dump(obj, target, dict(opts.serializer_params))
        artifact.add_file(str(target), name=entry)
        record: dict[str, Any] = {
            "kind": "object", "serializer": serializer.name, "object_type": serializers.object_type(obj), "entry": entry
        }
        if opts.serializer_params:
            record["serializer_params"] = dict(opts.serializer_params)
        return record

    @staticmethod
    def _references(obj: Any) -> list[Reference] | None:
        if isinstance(obj, Reference):
            return [obj]
        if isinstance(obj, (list, tuple)) and obj and all(isinstance(o, Reference) for o in obj):
            return list(obj)
        return None

    def _materialization_metadata(
        self, run: Any, art: Artifact, links: Sequence[Artifact], info: dict[str, Any], partition: str | None
    ) -> dict[str, Any]:
        ws = run.workspace
        database = ws.display_url
        storage = ws.blobs.root
        meta: dict[str, Any] = {
            "wandb/artifact": art.qualified_name,
            "wandb/collection": f"{art.entity}/{art.project}/{art.collection_name}",
            "wandb/version": art.version,
            "wandb/artifact_id": art.id,
            "wandb/type": art.type,
            "wandb/digest": art.digest,
            "wandb/size": dg.MetadataValue.int(art.size),
            "wandb/size_human": dg.MetadataValue.text(human_size(art.size)),
            "wandb/file_count": dg.MetadataValue.int(art.file_count),
            "wandb/aliases": dg.MetadataValue.json(sorted(art.aliases)),
            "wandb/links": dg.MetadataValue.json([link.qualified_name for link in links]),
            "wandb/run": run.path,
            "wandb/workspace": database,
            # A local folder as a path (Dagster shows it with a copy button); a bucket URI as text.
            "wandb/storage": dg.MetadataValue.path(storage) if "://" not in storage else storage,
            "wandb/kind": info.get("kind", "artifact"),
        }
        created_in = _creating_dagster_run(ws, art)
        if created_in is not None:
            # This run when the version is new; the earlier run when identical content was logged again.
            meta["wandb/created_in_dagster_run"] = dg.MetadataValue.dagster_run(created_in)
        app = self.wandb._settings().app_url
        if app is not None:  # no web app configured: no links to pages that do not exist
            meta["wandb/version_url"] = dg.MetadataValue.url(version_page(app, art))
            meta["wandb/run_url"] = dg.MetadataValue.url(run_page(app, run.entity, run.project, run.id))
        meta.update(summary_metadata(run.summary))
        if info.get("serializer"):
            meta["wandb/serializer"] = info["serializer"]
        if info.get("entry"):
            meta["wandb/entry"] = info["entry"]
        if partition is not None:
            meta["wandb/partition"] = partition
        return meta

    # ================================================================== inputs

    def load_input(self, context: dg.InputContext) -> Any:
        with redacted_errors():
            return self._load_input(context)

    def _load_input(self, context: dg.InputContext) -> Any:
        if not context.has_asset_key:
            return self._load_op_input(context)
        asset_key = context.asset_key
        where = _describe_input(context, asset_key)
        opts: InputOptions = parse_options(context.definition_metadata.get(METADATA_KEY), InputOptions, where)
        want = getattr(context.dagster_type, "typing_type", None)
        if not context.has_asset_partitions:
            art = self._resolve(context, asset_key, None, opts)
            return self._value(art, opts, want, where)
        keys = list(context.asset_partition_keys)
        if (opts.version or opts.alias) and len(keys) > 1:
            raise WandbIOManagerError(
                f"{where}: version/alias selects one version, but this input spans {len(keys)} partitions; "
                "drop the option to load each partition's recorded version."
            )
        values: dict[str, Any] = {}
        missing: list[str] = []
        for key in keys:
            try:
                art = self._resolve(context, asset_key, key, opts)
            except _NotMaterialized:
                missing.append(key)
                continue
            values[key] = self._value(art, opts, want, _describe_input(context, asset_key, key))
        if missing and not opts.allow_missing_partitions:
            raise WandbIOManagerError(
                f"{where}: partitions {missing} have no version recorded by the W&B IO manager; materialize "
                "them first, or set AssetIn(metadata={'wandb': {'allow_missing_partitions': True}})."
            )
        step = _current_step_context()
        if len(keys) == 1 and step is not None and step.has_partition_key:
            return values[keys[0]] if values else None
        return values

    def _resolve(self, context: dg.InputContext, asset_key: Any, partition: str | None, opts: InputOptions) -> Artifact:
        where = _describe_input(context, asset_key, partition)
        api_ws = self.wandb._settings()
        if opts.version or opts.alias:
            recorded = self._recorded(context, asset_key, partition, required=False)
            collection = recorded["wandb/collection"] if recorded else (
                f"{api_ws.entity}/{api_ws.project}/{collection_name(asset_key)}"
            )
            art = self._pinned(collection, opts, where)
        else:
            known = _recalled(context, asset_key, partition)
            if known is not None:
                art = known  # stored by this process in this Dagster run: exactly what the upstream recorded
            else:
                recorded = self._recorded(context, asset_key, partition, required=True)
                assert recorded is not None  # required=True raises instead of returning None
                art = self._fetch_recorded(recorded, where)
        self._use(art)
        return art

    def _recorded(self, context: dg.InputContext, asset_key: Any, partition: str | None, required: bool) -> dict | None:
        """The metadata of the materialization the input reads: the upstream's in this run (or the run it
        was re-executed from) when it ran there, else the latest one."""
        upstream = context.upstream_output
        upstream_run = upstream.run_id if upstream is not None else None
        if upstream_run == _EPHEMERAL_RUN_ID:
            upstream_run = None
        record = _materialization(context, asset_key, partition, upstream_run)
        if record is not None:
            metadata = _plain_metadata(record.asset_materialization.metadata if record.asset_materialization else {})
            if "wandb/artifact_id" in metadata:
                return metadata
            if not required:
                return None
            raise WandbIOManagerError(
                f"{_describe_input(context, asset_key, partition)}: its materialization (run {record.run_id}) "
                "recorded no W&B version: the asset returned None or used another IO manager."
            )
        if upstream_run is None:
            # A source asset (wandb_observable_source_asset) is observed, never materialized: its last
            # observation names the version it saw.
            observed = _observation(context, asset_key, partition)
            if observed is not None:
                return observed
        if not required:
            return None
        where = _describe_input(context, asset_key, partition)
        if upstream_run is not None:
            raise WandbIOManagerError(
                f"{where}: no materialization found in run {upstream_run}, which produced it; did the upstream "
                "step succeed?"
            )
        raise _NotMaterialized(self._not_in_instance(context, asset_key, where))

    def _pinned(self, collection: str, opts: InputOptions, where: str) -> Artifact:
        """The version an input pins (``version`` or ``alias``); one that does not exist is an error listing
        the versions and aliases that do, so a typo (``v99``, ``prodution``) is fixed from the message."""
        selector = opts.version or opts.alias
        try:
            return self.wandb.artifact(f"{collection}:{selector}")
        except ArtifactNotFoundError:
            what = "version" if opts.version else "alias"
            raise WandbIOManagerError(
                f"{where}: {collection} has no {what} {selector!r}; {_available(self.wandb, collection)}."
            ) from None

    def _not_in_instance(self, context: dg.InputContext, asset_key: Any, where: str) -> str:
        """Why no materialization was found, and the ways out: the same instance, or a pinned version."""
        collection = f"{self.wandb._settings().entity}/{self.wandb._settings().project}/{collection_name(asset_key)}"
        pin = "or load a version explicitly: AssetIn(metadata={'wandb': {'alias': 'latest'}}) (or 'version': 'vN')"
        step = _current_step_context()
        instance = step.instance if step is not None else context.instance
        if getattr(instance, "is_ephemeral", False):
            how = (
                "this run uses an ephemeral Dagster instance (dg.materialize without instance=), which forgets "
                "materializations between calls. Pass the same persistent instance to every call, e.g. "
                "dg.materialize(..., instance=dg.DagsterInstance.get()) with DAGSTER_HOME set, "
            )
        else:
            how = "materialize it in this instance first, "
        return (
            f"{where}: asset {asset_key.to_user_string()!r} has no materialization in this Dagster instance; {how}"
            f"{pin}. In W&B: {_available(self.wandb, collection)}."
        )

    def _fetch_recorded(self, recorded: dict, where: str) -> Artifact:
        name = f"{recorded['wandb/collection']}:{recorded['wandb/artifact_id']}"
        try:
            art = self.wandb.artifact(name)
        except ArtifactNotFoundError:
            workspace = redact(self.wandb._settings().database_url)
            raise WandbIOManagerError(
                f"{where}: the recorded version {recorded.get('wandb/artifact')!r} (id "
                f"{recorded['wandb/artifact_id']}) is not in this workspace ({workspace!r}); was it materialized "
                "against another workspace, or deleted?"
            ) from None
        if art.digest != recorded.get("wandb/digest"):
            raise WandbIOManagerError(
                f"{where}: version {art.qualified_name} has digest {art.digest}, but the materialization recorded "
                f"{recorded.get('wandb/digest')}; refusing to load it."
            )
        return art

    def _use(self, art: Artifact) -> None:
        step = _current_step_context()
        if step is not None:
            self.wandb.run(step).use_artifact(art)

    def _download_root(self, art: Artifact) -> Path:
        if self.download_dir:
            base = Path(self.download_dir)
        else:
            # Under this user's cache folder (not a shared temp folder, where users' files clash), one folder
            # per workspace: version ids are unique within a workspace only.
            # (Named by the URL with its password hidden: no digest of a secret on disk.)
            shown = art.workspace.display_url if art.workspace is not None else ""
            workspace = hashlib.sha256(shown.encode()).hexdigest()[:12]
            base = self.wandb._settings().cache_dir / "inputs" / workspace
        # One folder per version id: versions are immutable, so a folder is reused, never overwritten.
        return base / f"{art.collection_name}-{art.id}"

    def _value(self, art: Artifact, opts: InputOptions, want: Any, where: str) -> Any:
        record = (art.metadata or {}).get(_META) or {}
        kind = record.get("kind")
        if opts.load_as == "artifact" or want is Artifact:
            return art
        root = self._download_root(art)
        if opts.file is not None:
            try:
                entry = art.get_entry(opts.file)
            except KeyError as exc:
                raise WandbIOManagerError(f"{where}: {exc.args[0]}") from None
            return Path(entry.download(root=str(root)))
        if opts.load_as == "path":
            return Path(art.download(root=str(root)))
        wants_path = isinstance(want, type) and issubclass(want, os.PathLike)
        if kind == "object" and not wants_path:
            return load_artifact_object(art, where=where)
        if kind in ("file", "dir", "reference", "object") or wants_path:
            return _downloaded(art, kind, root)
        return art  # logged as an Artifact, or by someone else: hand over the version itself

    def _load_op_input(self, context: dg.InputContext) -> Any:
        """An op output (no asset key): the version the upstream step's tracking run logged."""
        from wandb_dagster.dagster.resources import _tracking_run_id

        upstream = context.upstream_output
        if upstream is None:  # Dagster gives an op input no upstream output only when it is not wired to one
            raise WandbIOManagerError(f"op input {context.name!r}: it reads no upstream output; nothing to load.")
        where = _describe_input(context, None, step_key=upstream.step_key)
        opts: InputOptions = parse_options(context.definition_metadata.get(METADATA_KEY), InputOptions, where)
        name = collection_name([upstream.step_key, upstream.name])
        settings = self.wandb._settings()
        if opts.version or opts.alias:
            art = self._pinned(f"{settings.entity}/{settings.project}/{name}", opts, where)
        else:
            run_id = _tracking_run_id(upstream.run_id, upstream.step_key)
            outputs = [a for a in self._logged_by(settings, run_id) if a.collection_name == name]
            if not outputs:
                raise WandbIOManagerError(
                    f"{where}: its run {run_id} logged no version of {name!r}; did the op return None, or run "
                    "with another io_manager?"
                )
            art = outputs[-1]
        self._use(art)
        return self._value(art, opts, getattr(context.dagster_type, "typing_type", None), where)

    def _logged_by(self, settings: Any, run_id: str) -> list[Artifact]:
        """The versions the run ``run_id`` logged, oldest first; none when there is no such run."""
        try:
            run = self.wandb.api().run(f"{settings.entity}/{settings.project}/{run_id}")
        except ValueError:  # no such run (the upstream step never ran with this resource)
            return []
        return list(run.logged_artifacts())


def _redacted_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """Materialization metadata with credentials masked in every text (Dagster stores it in its event log)."""
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if isinstance(value, str):
            value = redact(value)
        elif isinstance(value, dg.JsonMetadataValue):
            value = dg.MetadataValue.json(_redacted_json(value.data))
        out[key] = value
    return out


def _redacted_json(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [_redacted_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _redacted_json(v) for k, v in value.items()}
    return value


class _OnePartition:
    """``handle_output``'s view of one partition of an output that covers several: the output context, with
    that one partition key, and metadata recorded for that partition's materialization only.

    Its step context is hidden, so ``handle_output`` sets no ``DataVersion``: Dagster keeps one data version
    per asset and step, which cannot be each partition's digest; the caller sets one for the whole range from
    the digests recorded here (each partition's own digest is in its ``wandb/digest``)."""

    def __init__(self, context: dg.OutputContext, step_context: Any, partition: Any) -> None:
        self._context = context
        self._step_context = step_context
        self._partition = partition
        self.digest: str | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    @property
    def asset_partition_keys(self) -> list[Any]:
        return [self._partition]

    @property
    def step_context(self) -> Any:
        raise AttributeError("one partition of a multi-partition output: no step-wide data version")

    def add_output_metadata(self, metadata: Mapping[str, Any]) -> None:
        digest = metadata.get("wandb/digest")
        if digest is not None:
            self.digest = str(getattr(digest, "value", digest))  # a plain str, or a MetadataValue
        self._step_context.add_asset_metadata(
            metadata, asset_key=self._context.asset_key, partition_key=self._partition
        )


def human_size(size: int) -> str:
    """``size`` bytes with a binary unit: ``"512 B"``, ``"12.3 MiB"``."""
    if size < 1024:
        return f"{size} B"
    value = size / 1024
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} PiB"


def summary_metadata(summary: Mapping[str, Any]) -> dict[str, Any]:
    """``wandb/summary/<key>`` for each numeric value of a run's summary (nested dicts as ``a.b``), typed
    ``MetadataValue.int``/``float``: Dagster's Plots tab charts a numeric key across materializations. W&B's
    own keys (``_step``, ``_runtime``...) and non-finite values are left out."""
    found: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            if value.get("_type"):  # a logged data type's reference (image, table...), not a metric
                return
            for key, inner in value.items():
                if isinstance(key, str) and not key.startswith("_"):
                    walk(f"{prefix}.{key}" if prefix else key, inner)
        elif isinstance(value, bool):
            return
        elif isinstance(value, int):
            found[f"wandb/summary/{prefix}"] = dg.MetadataValue.int(value)
        elif isinstance(value, float) and math.isfinite(value):
            found[f"wandb/summary/{prefix}"] = dg.MetadataValue.float(value)

    walk("", dict(summary))
    return found


def _page(app_url: str, *parts: str) -> str:
    return "/".join([app_url, *(quote(p, safe="") for p in parts)])


def version_page(app_url: str, art: Artifact) -> str:
    """The version's page under W&B's path: ``<app>/<entity>/<project>/artifacts/<type>/<name>/<version>``."""
    return _page(app_url, art.entity, art.project, "artifacts", art.type, art.collection_name, art.version)


def run_page(app_url: str, entity: str, project: str, run_id: str) -> str:
    """The run's page under W&B's path: ``<app>/<entity>/<project>/runs/<id>``."""
    return _page(app_url, entity, project, "runs", run_id)


def _creating_dagster_run(ws: Any, art: Artifact) -> str | None:
    """The Dagster run whose step created version ``art`` (None: not created by a Dagster step)."""
    creator = ws.store.version_creator(art._require_logged("creator").pk)
    if creator is None:
        return None
    dagster = (creator.config or {}).get("dagster")
    run_id = dagster.get("run_id") if isinstance(dagster, dict) else None
    return run_id if isinstance(run_id, str) else None


def _is_nothing(context: dg.OutputContext) -> bool:
    """The output is declared as having no value (``Out(dg.Nothing)``, ``-> None``)."""
    dagster_type = getattr(context, "dagster_type", None)
    return bool(dagster_type is not None and (dagster_type.is_nothing or dagster_type.typing_type is type(None)))


def _report_data_version(context: dg.OutputContext, asset_key: Any, art: Artifact) -> None:
    """Make the version's digest the materialization's ``DataVersion``, so that re-materializing unchanged
    content leaves downstream assets fresh, and changed content marks them stale.

    An IO manager cannot return ``Output(data_version=...)``; Dagster builds the materialization after
    ``handle_output`` from the step's data-version cache (used when the output gives none), so the digest is
    put there. A user's own ``Output(data_version=...)`` still wins.
    """
    try:
        step_context = context.step_context
    except Exception:  # build_output_context in a unit test: there is no step, and no materialization event
        return
    step_context.set_data_version(asset_key, dg.DataVersion(art.digest))


def _downloaded(art: Artifact, kind: str | None, root: Path) -> Path:
    """A one-file output is handed over as that file; anything else as the downloaded directory."""
    entries = [e.path for e in art.manifest if e.path != PARTITION_ENTRY]
    if len(entries) == 1 and kind in ("file", "reference", "object"):
        return Path(art.get_entry(entries[0]).download(root=str(root)))
    return Path(art.download(root=str(root)))


def _add_path(artifact: Artifact, obj: Any, local: Path | None, tmp: Path) -> dict[str, Any]:
    """A returned path: its file, or the files under it. ``local`` is None for a remote UPath."""
    if local is None:
        # A remote UPath: its files are logged (copied), as for a local path.
        local = tmp / "remote" / (obj.name or "data")
        obj.fs.get(obj.path, str(local), recursive=True)
    if local.is_dir():
        artifact.add_dir(str(local))
        return {"kind": "dir"}
    if local.is_file():
        artifact.add_file(str(local))
        return {"kind": "file", "entry": local.name}
    raise FileNotFoundError(f"the returned path {str(obj)!r} does not exist")


def _add_extras(artifact: Artifact, opts: OutputOptions) -> None:
    """The files, folders and references an asset's options add to each of its versions."""
    for extra in opts.extra_files:
        artifact.add_file(extra)
    for extra in opts.extra_dirs:
        artifact.add_dir(extra, name=Path(extra).name)
    for uri in opts.extra_references:
        artifact.add_reference(uri)


def _materialization(context: dg.InputContext, asset_key: Any, partition: str | None, run_id: str | None) -> Any:
    """The newest materialization record of ``asset_key`` (``partition``) made in ``run_id`` (any run: None)."""
    step = _current_step_context()
    instance = step.instance if step is not None else context.instance
    records_filter = dg.AssetRecordsFilter(
        asset_key=asset_key, asset_partitions=[partition] if partition is not None else None
    )
    cursor = None
    while True:
        result = instance.fetch_materializations(records_filter, limit=50, cursor=cursor)
        for record in result.records:
            if run_id is None or record.run_id == run_id:
                return record
        if run_id is None or not result.has_more:
            return None
        cursor = result.cursor


def _observation(context: dg.InputContext, asset_key: Any, partition: str | None) -> dict | None:
    """The metadata of the newest observation of ``asset_key`` that names a W&B version, or None."""
    step = _current_step_context()
    instance = step.instance if step is not None else context.instance
    records_filter = dg.AssetRecordsFilter(
        asset_key=asset_key, asset_partitions=[partition] if partition is not None else None
    )
    for record in instance.fetch_observations(records_filter, limit=20).records:
        observation = record.event_log_entry.asset_observation
        metadata = _plain_metadata(observation.metadata if observation is not None else {})
        if "wandb/artifact_id" in metadata:
            return metadata
    return None


class _NotMaterialized(WandbIOManagerError):
    pass


def _describe_input(
    context: dg.InputContext, asset_key: Any, partition: Any = None, step_key: str | None = None
) -> str:
    """An input as its owner sees it: ``input 'features' of asset 'model' (reading asset 'features')``.
    Errors name the downstream asset (or op) and its input, the step that fails, then what it reads."""
    reads = _describe(asset_key, partition, step_key)
    step = _current_step_context()
    owner = None
    if step is not None and step.has_assets_def:
        owner = "asset " + ", ".join(repr(k.to_user_string()) for k in sorted(step.selected_asset_keys, key=str))
    elif step is not None:
        owner = f"op {step.op_def.name!r}"
    if owner is None or not getattr(context, "name", None):
        return reads
    return f"input {context.name!r} of {owner} (reading {reads})"


def _available(resource: WandbResource, collection: str) -> str:
    """What ``collection`` holds, for messages: its newest versions and the aliases on them."""
    api = resource.api()
    try:
        versions = list(api.artifacts(None, collection, per_page=200))  # type: ignore[arg-type]
    except (ArtifactNotFoundError, ValueError):
        return f"the collection {collection} does not exist in this workspace"
    if not versions:
        return f"the collection {collection} has no versions"
    shown = versions[-20:]  # newest last; enough to spot a typo without flooding the log
    listed = ", ".join(v.version + (f" ({', '.join(sorted(v.aliases))})" if v.aliases else "") for v in shown)
    more = f" (newest {len(shown)} of {len(versions)})" if len(versions) > len(shown) else ""
    return f"{collection} has versions{more}: {listed}"


# What this process stored in each Dagster run: (dagster run id, asset key, partition) -> the logged version.
# A downstream step of the same run in the same process (the in-process executor) reads it without querying
# the event log; other processes, and later runs, read the materialization's metadata. Entries of a run are
# dropped when its resources are torn down (resources._forget_run).
_stored: dict[tuple[str, str, str | None], Artifact] = {}


def _remember(run: Any, asset_key: Any, partition: str | None, metadata: dict, art: Artifact) -> None:
    from wandb_dagster.dagster.resources import _register_forget

    dagster_run_id = (run.config.get("dagster") or {}).get("run_id")
    if dagster_run_id:
        _stored[(dagster_run_id, asset_key.to_user_string(), partition)] = art
        _register_forget(dagster_run_id, _forget)


def _recalled(context: dg.InputContext, asset_key: Any, partition: str | None) -> Artifact | None:
    upstream = context.upstream_output
    if upstream is None or upstream.run_id == _EPHEMERAL_RUN_ID:
        return None
    return _stored.get((upstream.run_id, asset_key.to_user_string(), partition))


def _forget(dagster_run_id: str) -> None:
    for key in [k for k in _stored if k[0] == dagster_run_id]:
        _stored.pop(key, None)


def load_artifact_object(artifact: Artifact, where: str | None = None) -> Any:
    """The Python object an asset output was serialized into, e.g. a model loaded by alias in a deploy job::

        model = load_artifact_object(wandb.artifact("wandb-registry-model/bike-models:production"))

    Applies the trust model: only files stored in the artifact's workspace (not references) and written by
    this IO manager (the version records the serializer) are deserialized.
    """
    where = where or artifact.qualified_name
    record = (artifact.metadata or {}).get(_META) or {}
    if record.get("kind") != "object":
        raise WandbIOManagerError(
            f"{where}: version {artifact.qualified_name} holds no serialized object (kind "
            f"{record.get('kind')!r}); load it as a path or an Artifact instead."
        )
    serializer = serializers.get(record.get("serializer", ""))
    entry = artifact.get_entry(record["entry"])
    if entry.ref is not None:
        raise WandbIOManagerError(
            f"{where}: entry {entry.path!r} is a reference to {entry.ref!r}; only files stored in this workspace "
            "are deserialized (see the trust model in the README)."
        )
    ws = artifact.workspace
    assert ws is not None  # get_entry above needed a committed version, which has its workspace
    from wandb_dagster.storage.hashing import b64_to_hex

    try:
        # The verified cache entry: no copy out of the cache just to read it once.
        path = ws.cache.fetch(ws.blobs, b64_to_hex(entry.digest), entry.size)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return serializer.load(Path(path), record.get("object_type", ""))
    except Exception as exc:
        raise WandbIOManagerError(
            f"{where}: could not load {entry.path!r} of {artifact.qualified_name} with {serializer.name} "
            f"({type(exc).__name__}: {exc})."
        ) from redact_exception(exc)

