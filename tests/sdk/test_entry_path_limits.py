"""Entry paths that could be logged but never downloaded (issue 18): a component over NAME_MAX (255 UTF-8
bytes) or a path over PATH_MAX (4096 bytes) is refused when the entry is added, naming it and the limit."""

from __future__ import annotations

from pathlib import Path

import pytest

import wandb_dagster as wandb
from wandb_dagster.sdk.names import ENTRY_NAME_MAX, ENTRY_PATH_MAX, validate_entry_path


def test_limits_are_the_file_system_ones():
    assert (ENTRY_NAME_MAX, ENTRY_PATH_MAX) == (255, 4096)
    validate_entry_path("d/" + "x" * 255)
    validate_entry_path("é" * 127 + "e")  # 255 bytes
    validate_entry_path("/".join(["d" * 200] * 20) + "/" + "f" * 76)  # 4096 bytes
    with pytest.raises(ValueError, match=r"256 bytes.*at most 255 bytes \(NAME_MAX\)"):
        validate_entry_path("é" * 128)  # 128 characters, but 256 bytes
    with pytest.raises(ValueError, match=r"4097 bytes long.*at most 4096 bytes \(PATH_MAX\)"):
        validate_entry_path("/".join(["d" * 200] * 20) + "/" + "f" * 77)


@pytest.mark.parametrize("how", ["add_file", "new_file", "add_dir", "add_reference", "add_dir_long_path"])
def test_a_component_over_name_max_is_refused_when_added(any_ws_env: Path, how: str):
    long = "x" * 10_000
    (any_ws_env / "a.txt").write_text("hello\n")
    (any_ws_env / "tree").mkdir()
    (any_ws_env / "tree" / "f.txt").write_text("f")
    artifact = wandb.Artifact("ds", type="dataset")
    with pytest.raises(ValueError) as err:
        if how == "add_file":
            artifact.add_file("a.txt", name=f"dir/{long}.txt")
        elif how == "new_file":
            with artifact.new_file(f"{long}/b.txt") as f:
                f.write("b")
        elif how == "add_dir":
            artifact.add_dir("tree", name=long)
        elif how == "add_dir_long_path":
            # The limit is the file system's, so a real folder can only show a name just within it; the
            # prefix pushes the entry path (not a component) past PATH_MAX instead.
            artifact.add_dir("tree", name="/".join(["p" * 250] * 17))
        else:
            artifact.add_reference((any_ws_env / "a.txt").as_uri(), name=f"refs/{long}")
    message = str(err.value)
    assert "(NAME_MAX)" in message or "(PATH_MAX)" in message
    assert "xxxxxxxxxx" in message or "ppppp" in message, "the entry is named"
    assert len(message) < 1000, "a 10,000-character name is shortened in the message"
    assert artifact.manifest.entries == {}


def test_an_entry_within_the_limits_logs_and_downloads(any_ws_env: Path):
    (any_ws_env / "a.txt").write_text("hello\n")
    name = "d" * 255 + "/" + "é" * 127 + "e"
    with wandb.init(project="p") as run:
        artifact = wandb.Artifact("ds", type="dataset")
        artifact.add_file("a.txt", name=name)
        run.log_artifact(artifact)
    logged = wandb.Api(overrides={"project": "p"}).artifact("ds:v0")
    root = Path(logged.download(root="out"))
    assert (root / name).read_text() == "hello\n"
