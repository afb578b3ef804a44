"""The Artifact's seams: the workspace it stores into (``Artifact(..., workspace=...)``), the named
constructor for stored versions, and the draft's contents that commit reads (sdk/draft.py, sdk/staging.py)."""

from __future__ import annotations

import hashlib

import pytest

import wandb_dagster as wandb
from wandb_dagster.sdk.artifact import Artifact, draft_contents
from wandb_dagster.sdk.draft import Draft
from wandb_dagster.sdk.manifest import ManifestEntry
from wandb_dagster.sdk.staging import tmp_entry_name
from wandb_dagster.sdk.workspace import Workspace
from wandb_dagster.settings import Settings
from wandb_dagster.storage.hashing import b64_to_hex, hex_to_b64


def _other_workspace(tmp_path) -> Workspace:
    return Workspace.for_settings(Settings.resolve(root_dir=str(tmp_path / "other")))


def test_workspace_argument_selects_where_the_files_are_stored(ws_env, tmp_path):
    other = _other_workspace(tmp_path)
    (ws_env / "f.txt").write_text("stored in the other workspace")
    with wandb.init(project="p") as run:
        assert run.workspace is not other
        artifact = wandb.Artifact("a", type="dataset", workspace=other)
        assert artifact.workspace is other
        entry = artifact.add_file("f.txt")
        hexdigest = b64_to_hex(entry.digest)
        # Not the active run's workspace: the blob went to the one given.
        assert other.blobs.exists(hexdigest) and not run.workspace.blobs.exists(hexdigest)
        # Logged by a run of another workspace, the blobs are copied over at commit.
        logged = run.log_artifact(artifact)
        assert logged.workspace is run.workspace and run.workspace.blobs.exists(hexdigest)


def test_without_a_workspace_a_draft_binds_to_the_active_run_when_it_gets_a_file(ws_env):
    (ws_env / "f.txt").write_text("x")
    with wandb.init(project="p") as run:
        artifact = wandb.Artifact("a", type="dataset")
        assert artifact.workspace is None
        artifact.add_file("f.txt")
        assert artifact.workspace is run.workspace


def test_workspace_is_keyword_only(ws_env, tmp_path):
    other = _other_workspace(tmp_path)
    with pytest.raises(TypeError):
        wandb.Artifact("a", "dataset", None, None, False, None, other)  # type: ignore[misc]


def test_from_record_builds_the_stored_version(ws_env):
    (ws_env / "f.txt").write_text("x")
    with wandb.init(project="p") as run:
        logged = run.log_artifact("f.txt", name="a", type="dataset")
    ws = Workspace.default()
    record = ws.store.resolve("tester", "p", "a", "latest")
    art = Artifact.from_record(record, ws)
    assert art == logged and art.workspace is ws and not art.is_draft()
    assert [e.path for e in art.manifest] == ["f.txt"]
    with pytest.raises(wandb.ArtifactFinalizedError, match="new_draft"):
        draft_contents(art)


def test_new_draft_keeps_the_workspace_of_its_version(ws_env, tmp_path):
    other = _other_workspace(tmp_path)
    (ws_env / "f.txt").write_text("x")
    artifact = wandb.Artifact("a", type="dataset", workspace=other)
    artifact.add_file("f.txt")
    with wandb.init(project="p", settings={"root_dir": str(tmp_path / "other")}) as run:
        logged = run.log_artifact(artifact)
        assert logged.workspace is other
        assert logged.new_draft().workspace is other


def _entry(path: str, content: str, **kw) -> ManifestEntry:
    digest = hex_to_b64(hashlib.md5(content.encode()).hexdigest())
    return ManifestEntry(path=path, digest=digest, size=len(content), **kw)


def test_draft_put_refuses_clashes_and_other_content_by_name():
    draft = Draft("ds")
    first = draft.put(_entry("a/b.txt", "one"), overwrite=False)
    assert draft.put(_entry("a/b.txt", "one"), overwrite=False) is first  # same content: kept as it is
    with pytest.raises(ValueError, match="'ds' already has an entry 'a/b.txt' with other content"):
        draft.put(_entry("a/b.txt", "two"), overwrite=False)
    assert draft.put(_entry("a/b.txt", "two"), overwrite=True).size == 3
    with pytest.raises(ValueError, match="cannot hold both 'a/b.txt' and 'a/b.txt/c'"):
        draft.put(_entry("a/b.txt/c", "x"), overwrite=True)
    with pytest.raises(ValueError, match="cannot hold both 'a/b.txt' and 'a'"):
        draft.put(_entry("a", "x"), overwrite=True)


def test_draft_merge_adds_only_paths_it_neither_has_nor_clashes_with():
    draft = Draft("ds")
    draft.put(_entry("keep.txt", "mine"), overwrite=False)
    draft.put(_entry("dir", "a file where the base has a folder"), overwrite=False)
    draft.merge([_entry("keep.txt", "base"), _entry("dir/x.txt", "base"), _entry("new.txt", "base")])
    assert sorted(draft.manifest.entries) == ["dir", "keep.txt", "new.txt"]
    assert draft.manifest.entries["keep.txt"] == _entry("keep.txt", "mine")


def test_draft_stored_blobs_prefer_a_local_source_and_skip_references():
    draft = Draft("ds")
    draft.put(_entry("a.txt", "same"), overwrite=False)
    draft.put(_entry("b.txt", "same", local_path="/src/b.txt"), overwrite=False)
    draft.put(ManifestEntry(path="ref", digest="https://example.com/x", ref="https://example.com/x"), False)
    wanted, sizes = draft.stored_blobs()
    [hexdigest] = wanted
    assert wanted == {hexdigest: "/src/b.txt"} and sizes == {hexdigest: 4}
    assert draft.paths_of_blob(hexdigest) == ["a.txt", "b.txt"]


def test_draft_remove_takes_an_entry_or_a_folder_and_names_a_missing_one():
    draft = Draft("ds")
    for path in ("d/x", "d/y", "z"):
        draft.put(_entry(path, path), overwrite=False)
    draft.remove("d")
    assert list(draft.manifest.entries) == ["z"]
    with pytest.raises(FileNotFoundError, match="'ds' has no entry or directory 'd'"):
        draft.remove("d")


def test_tmp_entry_names_come_from_the_digest():
    assert tmp_entry_name("sub/table.tmp.json", "0123456789abcdef0123456789abcdef") == (
        "sub/0123456789abcdef0123.tmp.json"
    )
    assert tmp_entry_name("plain", "ffffffffffffffffffffffffffffffff") == "ffffffffffffffffffff"
