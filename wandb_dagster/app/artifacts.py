"""The artifact pages, at W&B's paths.

- ``/{entity}/{project}/artifacts``: the project's artifact types and their collections;
- ``/{entity}/{project}/artifacts/{type}/{name}``: a collection: versions, aliases, tags;
- ``/{entity}/{project}/artifacts/{type}/{name}/{version}``: a version: metadata, aliases, tags, TTL, a file
  browser (``?dir=``) and the lineage graph (``?hops=``);
- ``/{entity}/{project}/artifacts/{type}/{name}/{version}/files/{path}``: a file of the version, downloaded.

Downloads come from the blob store through this machine's download cache, so every byte sent was verified
against the manifest's MD5 first. The blob store is only ever addressed by the MD5 of an entry of the
version's manifest: a file name in a URL is looked up among the manifest's entry paths and never used as a
path, so ``..`` or an encoded slash cannot reach anything else. A missing or damaged blob is shown as
missing (404), never as a server error.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from wandb_dagster.api.file_tree import FileNode, file_tree
from wandb_dagster.api.lineage import DEFAULT_HOPS, MAX_HOPS, LineageNode, lineage_graph
from wandb_dagster.app.lineage_svg import lineage_svg
from wandb_dagster.app.params import bad_request, int_param, not_found, path_names
from wandb_dagster.app.templating import render
from wandb_dagster.storage.uri_credentials import redact

_log = logging.getLogger(__name__)

MAX_COLLECTIONS = 500  # per type on the project's artifacts page
VERSIONS_PER_PAGE = 50
FILES_PER_PAGE = 500  # entries of one folder shown at a time in the browser
MAX_FILE_PATH = 4096
TREES_CACHED = 8  # file trees of recently shown versions kept in memory (a version's files never change)
_trees: OrderedDict[tuple[str, str, str], FileNode] = OrderedDict()
_trees_lock = threading.Lock()  # page functions run on Starlette's thread pool


def seg(text: str) -> str:
    """One URL path segment (names are validated, but a version id or alias is quoted all the same)."""
    return quote(text, safe="")


def collection_url(entity: str, project: str, type: str, name: str) -> str:
    return f"/{seg(entity)}/{seg(project)}/artifacts/{seg(type)}/{seg(name)}"


def version_url(entity: str, project: str, type: str, name: str, version: str) -> str:
    return f"{collection_url(entity, project, type, name)}/{seg(version)}"


def run_url(entity: str, project: str, run_id: str) -> str:
    return f"/{seg(entity)}/{seg(project)}/runs/{seg(run_id)}"


def node_url(node: LineageNode) -> str | None:
    """The page of a lineage node: a run's page, or a version's (none for a deleted version)."""
    if node.kind == "run":
        return None if node.run_id is None else run_url(node.entity, node.project, node.run_id)
    if node.version is None or node.type is None or node.collection is None:
        return None
    return version_url(node.entity, node.project, node.type, node.collection, node.version)


def type_or_alias(value: Any, what: str) -> str:
    """An artifact type or version selector from the URL, checked as the SDK checks types and aliases
    (sdk/names.py): they may hold spaces and other characters that entity and collection names may not, but
    never ``/``, ``:`` or a NUL, at most 128 characters; ``.`` and ``..`` are never one. Else a 404."""
    if (
        not isinstance(value, str)
        or not value
        or len(value) > 128
        or any(c in value for c in "/:\\\x00")
        or value in (".", "..")
    ):
        raise not_found(f"{what} {str(value)[:200]!r} is not a valid {what}")
    return value


def _api(request: Request) -> Any:
    return request.app.state.api


def _project_exists(api: Any, entity: str, project: str) -> bool:
    return api.project(project, entity).created_at is not None


# ------------------------------------------------------------------------------------------ project


def artifacts_page(request: Request) -> Response:
    entity, project = path_names(request, "entity", "project")
    api = _api(request)
    if not _project_exists(api, entity, project):
        raise not_found(f"no project {entity}/{project} in this workspace")
    types = []
    for artifact_type in api.artifact_types(f"{entity}/{project}"):
        found = list(itertools.islice(artifact_type.collections(per_page=100), MAX_COLLECTIONS + 1))
        types.append({"name": artifact_type.name, "collections": found[:MAX_COLLECTIONS],
                      "more": len(found) > MAX_COLLECTIONS})  # fmt: skip
    context = {"entity": entity, "project": project, "types": types, "collection_url": collection_url}
    return render(request, "artifacts.html", context)


# ------------------------------------------------------------------------------------------ collection


def _collection(api: Any, entity: str, project: str, type_name: str, name: str) -> Any:
    try:
        return api.artifact_collection(type_name, f"{entity}/{project}/{name}")
    except (LookupError, ValueError):
        raise not_found(f"no {type_name} collection {entity}/{project}/{name}") from None


def collection_page(request: Request) -> Response:
    entity, project, name = path_names(request, "entity", "project", "name")
    type_name = type_or_alias(request.path_params.get("type"), "artifact type")
    api = _api(request)
    collection = _collection(api, entity, project, type_name, name)
    start = request.query_params.get("start") or None
    try:
        versions = collection.artifacts(per_page=VERSIONS_PER_PAGE, start=start)
        shown = list(itertools.islice(versions, VERSIONS_PER_PAGE))
    except ValueError:
        raise bad_request(f"start={start!r} is not a cursor of this collection's versions") from None
    more = versions.cursor if len(shown) == VERSIONS_PER_PAGE and versions.more else None
    context = {
        "entity": entity, "project": project, "type": type_name, "collection": collection, "versions": shown,
        "next_start": more, "paged": start is not None, "version_url": version_url,
        "created_by": lambda v: v._record.created_by,  # the creating run's id, read with the page's rows
    }  # fmt: skip
    return render(request, "collection.html", context)


# ------------------------------------------------------------------------------------------ version


def _version(request: Request) -> tuple[Any, list[str]]:
    entity, project, name = path_names(request, "entity", "project", "name")
    type_name = type_or_alias(request.path_params.get("type"), "artifact type")
    selector = type_or_alias(request.path_params.get("version"), "version")
    api = _api(request)
    try:
        artifact = api.artifact(f"{entity}/{project}/{name}:{selector}", type=type_name)
    except (LookupError, ValueError):
        raise not_found(f"no {type_name} artifact {entity}/{project}/{name}:{selector}") from None
    return artifact, [entity, project, type_name, name, selector]


def _tree(api: Any, artifact: Any) -> FileNode:
    """The version's file tree; ValueError when its manifest fails validation.

    A version's manifest never changes once committed, so the trees of the last few versions shown are kept:
    paging through a folder of 100,000 files, or downloading its files one by one, parses the manifest once.
    """
    # Keyed by workspace, the version's public id and its digest (which covers every entry's path and digest).
    record = artifact._require_logged("files")
    key = (api._ws.store.url, record.id, record.digest)
    with _trees_lock:
        cached = _trees.get(key)
        if cached is not None:
            _trees.move_to_end(key)
            return cached
    tree = file_tree(artifact.manifest)
    with _trees_lock:
        _trees[key] = tree
        while len(_trees) > TREES_CACHED:
            _trees.popitem(last=False)
    return tree


def _listing(request: Request, root: FileNode) -> tuple[FileNode, list[FileNode], int, bool]:
    folder_path = request.query_params.get("dir", "")
    if folder_path:
        _check_entry_path(folder_path, "dir")
    try:
        folder = root.find(folder_path.strip("/"))
    except KeyError:
        raise not_found(f"no folder {folder_path!r} in this version") from None
    if not folder.is_dir:
        raise not_found(f"{folder_path!r} is a file, not a folder, of this version")
    offset = int_param(request, "offset", 0, lo=0) or 0
    page = folder.children[offset : offset + FILES_PER_PAGE]
    return folder, page, offset, offset + FILES_PER_PAGE < len(folder.children)


def _missing(api: Any, files: list[FileNode]) -> set[str]:
    """The hexes of ``files`` whose blob is not in the blob store (or has another size): one batched check."""
    wanted = {f.hex: f.size for f in files if f.hex is not None}
    if not wanted:
        return set()
    try:
        present = api._ws.blobs.exists_many(list(wanted), sizes={h: s for h, s in wanted.items() if s is not None})
    except OSError:
        _log.exception("checking blobs for the file browser")
        return set(wanted)  # the store cannot be read: nothing can be downloaded, say so
    return set(wanted) - set(present)


def version_page(request: Request) -> Response:
    artifact, (entity, project, type_name, name, selector) = _version(request)
    api = _api(request)
    hops = int_param(request, "hops", DEFAULT_HOPS, lo=0, hi=MAX_HOPS)
    assert hops is not None
    try:
        root: FileNode | None = _tree(api, artifact)
    except ValueError:
        # A manifest that fails validation (tampered): the page still shows everything else.
        _log.exception("reading the manifest of %s", artifact.qualified_name)
        root = None
    folder, page, offset, more_files = _listing(request, root) if root is not None else (None, [], 0, False)
    missing = _missing(api, [f for f in page if not f.is_dir])
    graph = lineage_graph(artifact, hops=hops)
    creator = artifact.logged_by()
    here = version_url(entity, project, type_name, name, selector)
    record = artifact._require_logged("page")
    canonical = version_url(record.entity, record.project, artifact.type, record.collection, f"v{record.index}")
    source = artifact._source_record() if artifact.is_link else None
    # Where else it appears: the registry collections it is linked into (W&B's "linked to" list).
    links = [
        (m, version_url(m.entity, m.project, artifact.type, m.collection, f"v{m.index}"))
        for m in api._ws.store.version_memberships(record.pk)
        if m.collection_id not in (record.collection_id, record.source_collection_id)
    ]
    breadcrumbs = []
    if folder is not None and folder.path:
        parts = folder.path.split("/")
        breadcrumbs = [(p, "/".join(parts[: i + 1])) for i, p in enumerate(parts)]
    context = {
        "entity": entity, "project": project, "type": type_name, "name": name, "artifact": artifact,
        "selector": selector, "here": here, "canonical": canonical, "creator": creator, "ttl": artifact.ttl,
        "metadata_json": json.dumps(artifact.metadata, indent=2, sort_keys=True, default=str),
        "manifest_ok": root is not None, "folder": folder, "files": page, "offset": offset,
        "more_files": more_files, "per_page": FILES_PER_PAGE, "missing": missing, "breadcrumbs": breadcrumbs,
        "file_url": lambda node: f"{here}/files/{quote(node.path)}",
        "dir_url": lambda path: f"{here}?dir={quote(path)}",
        "ref_text": lambda node: redact(node.ref) if node.ref else "",
        "graph": graph, "svg": lineage_svg(graph, node_url), "hops": hops, "max_hops": MAX_HOPS,
        "run_url": run_url, "collection_url": collection_url,
        "source": source, "links": links,
        "source_url": None if source is None else version_url(
            source.entity, source.project, artifact.type, source.collection, f"v{source.index}"
        ),
    }  # fmt: skip
    return render(request, "version.html", context)


def _check_entry_path(path: str, what: str) -> str:
    """Refuse what no manifest entry path can be (sdk/names.py validates entry paths when they are added):
    the lookup that follows is exact, this only says why early and keeps odd input away from the logs."""
    parts = path.split("/")
    if (
        len(path) > MAX_FILE_PATH
        or "\x00" in path
        or "\\" in path
        or path.startswith("/")
        or any(p in (".", "..") for p in parts)
    ):
        raise not_found(f"{what} {path[:200]!r} is not a file path of this version")
    return path


def file_download(request: Request) -> Response:
    artifact, _ = _version(request)
    path = _check_entry_path(str(request.path_params.get("path", "")), "file")
    try:
        node = _tree(_api(request), artifact).find(path)
    except ValueError:  # a manifest that fails validation (tampered): nothing in it can be trusted
        raise not_found(
            f"the manifest of {artifact.qualified_name} cannot be read (it fails validation); "
            "`wandb-dagster verify` says more"
        ) from None
    except KeyError:
        node = None
    if node is None or node.entry is None:
        raise not_found(f"no file {path!r} in {artifact.qualified_name}")
    entry = node.entry
    if entry.ref is not None:
        raise not_found(
            f"{path!r} is a reference to {redact(entry.ref)}, not a file stored in this workspace; fetch it from "
            "there (artifact.download() does)"
        )
    hexdigest = node.hex
    if hexdigest is None:
        raise not_found(f"file {path!r} has a digest that names no blob ({entry.digest!r})")
    ws = _api(request)._ws
    try:
        # Through the download cache: its entries are verified (MD5 and size) before they are used, so a
        # damaged blob is refused here, before the first byte is sent.
        cached = ws.cache.fetch(ws.blobs, hexdigest, entry.size)
        # Held open while the response streams: an eviction meanwhile unlinks the name, not the bytes.
        handle = open(cached, "rb")  # noqa: SIM115 (closed by _chunks when the response ends)
    except (OSError, ValueError):  # FileNotFoundError, CorruptBlobError (a ValueError), a store error
        _log.warning("file %r of %s is missing or damaged in the blob store", path, artifact.qualified_name)
        raise not_found(
            f"file {path!r} of {artifact.qualified_name} is missing or damaged in the blob store; "
            "`wandb-dagster verify --repair` can restore it from a good copy"
        ) from None
    filename = node.name
    headers = {
        # Always a download, never rendered in the app's origin (an artifact may hold any HTML).
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
        "X-Content-Type-Options": "nosniff",
        "Content-Length": str(entry.size) if entry.size is not None else "",
    }
    if not headers["Content-Length"]:
        del headers["Content-Length"]
    return StreamingResponse(_chunks(handle), media_type="application/octet-stream", headers=headers)


def _chunks(handle: Any, size: int = 1 << 20) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(size):
            yield chunk


routes = [
    Route("/{entity}/{project}/artifacts", artifacts_page, name="artifacts"),
    Route("/{entity}/{project}/artifacts/{type}/{name}", collection_page, name="artifact_collection"),
    Route("/{entity}/{project}/artifacts/{type}/{name}/{version}", version_page, name="artifact_version"),
    Route("/{entity}/{project}/artifacts/{type}/{name}/{version}/files/{path:path}", file_download,
          name="artifact_file"),
]
