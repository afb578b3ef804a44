"""Building artifacts: add_file / add_dir / new_file / add_reference(file://) / remove (docs/behaviour.md section 2)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import wandb_dagster as wandb


@pytest.fixture
def project_dir(ws_env: Path) -> Path:
    """The tree from seed 003's naming table."""
    (ws_env / "images").mkdir()
    (ws_env / "images" / "cat.png").write_bytes(b"cat")
    (ws_env / "images" / "dog.png").write_bytes(b"dog")
    (ws_env / "checkpoints").mkdir()
    (ws_env / "checkpoints" / "model.h5").write_bytes(b"checkpoint model")
    (ws_env / "model.h5").write_bytes(b"model")
    return ws_env


@pytest.mark.parametrize(
    "call, expected",
    [
        (lambda a: a.add_file("model.h5"), ["model.h5"]),
        (lambda a: a.add_file("checkpoints/model.h5"), ["model.h5"]),
        (lambda a: a.add_file("model.h5", name="models/mymodel.h5"), ["models/mymodel.h5"]),
        (lambda a: a.add_dir("images"), ["cat.png", "dog.png"]),
        (lambda a: a.add_dir("images", name="images"), ["images/cat.png", "images/dog.png"]),
    ],
)
def test_seed_003_naming_table(project_dir, call, expected):
    artifact = wandb.Artifact("bike-dataset", type="dataset")
    call(artifact)
    assert sorted(artifact.manifest.entries) == expected


def test_seed_003_new_file(ws_env):
    artifact = wandb.Artifact("bike-dataset", type="dataset")
    with artifact.new_file("hello.txt") as f:
        f.write("hello\n")
    assert list(artifact.manifest.entries) == ["hello.txt"]
    assert artifact.get_entry("hello.txt").digest == "sZRqySSS0jR8YjW00mERhA=="
    with pytest.raises(ValueError, match="hello.txt"), artifact.new_file("hello.txt") as f:
        f.write("again")
    with artifact.new_file("hello.txt", mode="w") as f:
        f.write("replaced")
    assert artifact.get_entry("hello.txt").size == len("replaced")


def test_add_file_twice(project_dir):
    artifact = wandb.Artifact("a", type="dataset")
    artifact.add_file("model.h5")
    artifact.add_file("model.h5")  # same content: a no-op
    with pytest.raises(ValueError, match="model.h5"):
        artifact.add_file("checkpoints/model.h5")  # same name, other content
    artifact.add_file("checkpoints/model.h5", overwrite=True)
    assert artifact.get_entry("model.h5").size == len(b"checkpoint model")


def test_add_dir_skips_empty_dirs_and_follows_symlinked_dirs(ws_env):
    (ws_env / "data" / "empty").mkdir(parents=True)
    (ws_env / "data" / "a.txt").write_text("a")
    (ws_env / "elsewhere").mkdir()
    (ws_env / "elsewhere" / "b.txt").write_text("b")
    os.symlink(ws_env / "elsewhere", ws_env / "data" / "linked")
    os.symlink(ws_env / "data", ws_env / "data" / "loop")  # a cycle must not hang
    artifact = wandb.Artifact("a", type="dataset")
    artifact.add_dir("data")
    assert sorted(artifact.manifest.entries) == ["a.txt", "linked/b.txt"]


def test_add_dir_merge(ws_env):
    (ws_env / "d").mkdir()
    (ws_env / "d" / "x").write_text("1")
    artifact = wandb.Artifact("a", type="dataset")
    artifact.add_dir("d")
    (ws_env / "d" / "x").write_text("22")
    with pytest.raises(ValueError, match="merge=True"):
        artifact.add_dir("d")
    artifact.add_dir("d", merge=True)
    assert artifact.get_entry("x").size == 2


def test_bad_inputs_name_the_value(ws_env):
    artifact = wandb.Artifact("a", type="dataset")
    with pytest.raises(ValueError, match="nope.txt"):
        artifact.add_file("nope.txt")
    (ws_env / "d").mkdir()
    with pytest.raises(ValueError, match="add_dir"):
        artifact.add_file("d")
    with pytest.raises(ValueError, match="'nodir'"):
        artifact.add_dir("nodir")
    (ws_env / "f").write_text("x")
    with pytest.raises(ValueError, match="'sideways'"):
        artifact.add_file("f", policy="sideways")
    with pytest.raises(ValueError, match=r"\.\./f"):
        artifact.add_file("f", name="../f")


def test_remove(project_dir):
    artifact = wandb.Artifact("a", type="dataset")
    artifact.add_dir("images", name="images")
    artifact.add_file("model.h5")
    artifact.remove("images")  # a directory prefix removes everything under it
    assert list(artifact.manifest.entries) == ["model.h5"]
    with pytest.raises(FileNotFoundError, match="missing"):
        artifact.remove("missing")
    artifact.remove(artifact.get_entry("model.h5"))
    assert len(artifact.manifest) == 0


def test_is_tmp_renames_deterministically(project_dir):
    artifact = wandb.Artifact("a", type="dataset")
    entry = artifact.add_file("model.h5", is_tmp=True)
    assert entry.path.endswith(".h5") and len(entry.path) == 20 + len(".h5")


def test_mutable_policy_logs_the_content_at_add_time(ws_env):
    (ws_env / "f.txt").write_text("original")
    with wandb.init(project="p") as run:
        artifact = wandb.Artifact("a", type="dataset")
        artifact.add_file("f.txt")
        (ws_env / "f.txt").write_text("edited after add_file")
        run.log_artifact(artifact)
        root = Path(artifact.download(root="out"))
    assert (root / "f.txt").read_text() == "original"


def test_immutable_policy_refuses_a_file_edited_before_logging(ws_env):
    (ws_env / "f.txt").write_text("original")
    with wandb.init(project="p") as run:
        artifact = wandb.Artifact("a", type="dataset")
        artifact.add_file("f.txt", policy="immutable")
        with open(ws_env / "f.txt", "w") as f:  # same size, new content
            f.write("ORIGINAL")
        os.utime(ws_env / "f.txt", ns=(1, 1))  # and a new mtime so the stat cache does not vouch for it
        with pytest.raises(ValueError, match="f.txt"):
            run.log_artifact(artifact)
    assert wandb.Api().artifact_exists("p/a:v0") is False


def test_file_references(ws_env):
    (ws_env / "images").mkdir()
    (ws_env / "images" / "cat.png").write_bytes(b"cat")
    (ws_env / "images" / "sub").mkdir()
    (ws_env / "images" / "sub" / "dog.png").write_bytes(b"dog")
    uri = (ws_env / "images").as_uri()
    artifact = wandb.Artifact("refs", type="dataset")
    artifact.add_reference(uri)
    assert sorted(artifact.manifest.entries) == ["cat.png", "sub/dog.png"]
    entry = artifact.get_entry("cat.png")
    assert entry.ref == uri + "/cat.png" and entry.size == 3 and entry.ref_target() == entry.ref
    named = wandb.Artifact("refs2", type="dataset")
    named.add_reference(uri, name="images")
    assert sorted(named.manifest.entries) == ["images/cat.png", "images/sub/dog.png"]
    with pytest.raises(ValueError, match="max_objects=1"):
        wandb.Artifact("r3", type="dataset").add_reference(uri, max_objects=1)
    unchecked = wandb.Artifact("r4", type="dataset")
    [entry] = unchecked.add_reference(uri, checksum=False)
    assert entry.digest == entry.ref == uri and entry.size is None
    with pytest.raises(ValueError, match="ftp"):
        wandb.Artifact("r5", type="dataset").add_reference("ftp://host/x")


def test_file_reference_download_verifies(ws_env):
    (ws_env / "ref.txt").write_text("v1")
    with wandb.init(project="p") as run:
        artifact = wandb.Artifact("refs", type="dataset")
        artifact.add_reference((ws_env / "ref.txt").as_uri())
        run.log_artifact(artifact)
        assert (Path(artifact.download(root="a")) / "ref.txt").read_text() == "v1"
        (ws_env / "ref.txt").write_text("v2")
        with pytest.raises(ValueError, match="ref.txt.*changed"):
            artifact.download(root="b")
        assert not (Path("b") / "ref.txt").exists()
        (ws_env / "ref.txt").unlink()
        with pytest.raises(FileNotFoundError, match="allow_missing_references"):
            artifact.download(root="c")
        artifact.download(root="d", allow_missing_references=True)


def test_committed_artifacts_are_final(ws_env):
    (ws_env / "f").write_text("x")
    with wandb.init(project="p") as run:
        artifact = wandb.Artifact("a", type="dataset")
        artifact.add_file("f")
        run.log_artifact(artifact)
        with pytest.raises(wandb.ArtifactFinalizedError, match="new_draft"):
            artifact.add_file("f", name="g")
        draft = artifact.new_draft()
        draft.add_file("f", name="g")
        run.log_artifact(draft)
        assert draft.version == "v1"
        assert sorted(draft.manifest.entries) == ["f", "g"]


def test_unlogged_artifact_has_no_version(ws_env):
    artifact = wandb.Artifact("a", type="dataset")
    with pytest.raises(wandb.ArtifactNotLoggedError, match="log_artifact"):
        artifact.version


def test_a_path_cannot_be_both_a_file_and_a_directory(ws_env):
    (ws_env / "f").write_text("f")
    artifact = wandb.Artifact("a", type="dataset")
    artifact.add_file("f", name="x")
    with pytest.raises(ValueError, match="'x'.*'x/y'"):
        artifact.add_file("f", name="x/y")
    artifact.add_file("f", name="d/y")
    with pytest.raises(ValueError, match="'d/y'.*'d'"):
        artifact.add_file("f", name="d")
    artifact.remove("d/y")
    artifact.add_file("f", name="d")
    assert sorted(artifact.manifest.entries) == ["d", "x"]


def test_is_tmp_leaves_an_entry_of_the_plain_name_alone(ws_env):
    (ws_env / "a.txt").write_text("a")
    artifact = wandb.Artifact("a", type="dataset")
    artifact.add_file("a.txt")
    tmp = artifact.add_file("a.txt", is_tmp=True)
    assert sorted(artifact.manifest.entries) == sorted(["a.txt", tmp.path])


def test_an_unreadable_subfolder_is_an_error_not_a_silent_gap(ws_env, monkeypatch):
    (ws_env / "d" / "locked").mkdir(parents=True)
    (ws_env / "d" / "locked" / "x.txt").write_text("x")
    real_scandir = os.scandir

    def scandir(path="."):  # root ignores permissions, so refuse the listing the way EACCES would
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(ValueError, match="locked"):
        wandb.Artifact("a", type="dataset").add_dir("d")


@pytest.mark.parametrize("policy", ["mutable", "immutable"])
def test_a_file_growing_between_stat_and_read_is_recorded_as_read(ws_env, policy):
    # add_dir stats every file before reading any: a writer appending in between must give an entry whose
    # size matches the bytes its digest covers (the logged version then downloads and verifies), and the
    # stat cache must not remember the old stat as vouching for the new content.
    path = ws_env / "grows.txt"
    path.write_text("before")
    stale = os.stat(path)
    path.write_text("before, and more written by another process")
    with wandb.init(project="p") as run:
        artifact = wandb.Artifact("a", type="dataset")
        [entry] = artifact._add_local_files([(str(path), "grows.txt", stale)], policy, False, False)
        assert entry.size == path.stat().st_size
        run.log_artifact(artifact)
        logged = run.use_artifact("a:latest")
        root = Path(logged.download(root="out"))
        assert (root / "grows.txt").read_text() == path.read_text()
        logged.verify(root=str(root))
        assert artifact._bind().statcache.lookup_many([stale]) == [None]
