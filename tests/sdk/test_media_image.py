"""wandb.Image (issue 12): from arrays, PIL images and files; logged in runs (blob store + W&B's JSON in the
history), in lists, and in artifacts (docs/behaviour.md section 9)."""

from __future__ import annotations

import hashlib
import io
import sys

import numpy as np
import pytest
from PIL import Image as PILImage

import wandb_dagster as wandb
from wandb_dagster.sdk.workspace import Workspace
from wandb_dagster.storage.hashing import b64_to_hex

from .test_remote_workspace import Remote, remote, remote_ws  # noqa: F401 - the bucket fixtures


def _blob(digest: str) -> bytes:
    with Workspace.default().blobs.open(b64_to_hex(digest)) as f:
        return f.read()


def _png(path, size=(5, 3), color=(255, 0, 0)) -> bytes:
    PILImage.new("RGB", size, color).save(path)
    return path.read_bytes()


def test_an_array_is_stored_as_a_png_with_w_and_b_conversion():
    # Floats in [0, 1] are scaled by 255, as W&B does; HWC with 3 channels is RGB.
    array = np.zeros((3, 4, 3), dtype=np.float32)
    array[0, 0] = [1.0, 0.5, 0.0]
    image = wandb.Image(array, caption="one pixel")
    assert (image.width, image.height, image.format, image.caption) == (4, 3, "png", "one pixel")
    decoded = np.asarray(PILImage.open(io.BytesIO(image.to_bytes())))
    assert decoded.shape == (3, 4, 3)
    assert decoded[0, 0].tolist() == [255, 127, 0]
    # [-1, 1] maps onto [0, 255]; a greyscale HW array is mode L.
    grey = wandb.Image(np.array([[-1.0, 1.0]]))
    assert np.asarray(grey.image).tolist() == [[0, 255]]
    assert grey.image.mode == "L"


def test_a_pil_image_and_a_file_keep_their_pixels(tmp_path):
    pil = PILImage.new("RGBA", (2, 2), (1, 2, 3, 4))
    assert np.asarray(wandb.Image(pil).image)[0, 0].tolist() == [1, 2, 3, 4]
    data = _png(tmp_path / "photo.png")
    from_file = wandb.Image(str(tmp_path / "photo.png"))
    assert from_file.to_bytes() == data  # a file is stored as it is
    assert (from_file.width, from_file.height, from_file.format) == (5, 3, "png")


def test_bad_inputs_say_what_to_give(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        wandb.Image(str(tmp_path / "missing.png"))
    with pytest.raises(ValueError, match=r"shape \[2, 3, 4, 5\] is not an image"):
        wandb.Image(np.zeros((2, 3, 4, 5)))


def test_a_missing_pillow_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL.Image", None)  # as when Pillow is not installed
    with pytest.raises(ImportError, match=r"pip install pillow .*wandb-dagster\[media\]"):
        wandb.Image(np.zeros((2, 2)))


def test_a_logged_image_is_a_blob_and_the_history_holds_w_and_b_json(any_ws_env):
    array = (np.arange(24, dtype=np.uint8).reshape(2, 4, 3)) * 10
    with wandb.init(project="p") as run:
        run.log({"loss": 1.0})
        run.log({"sample": wandb.Image(array, caption="cat")})
    image = wandb.Image(array)
    rows = wandb.Api().run(f"p/{run.id}").history(pandas=False)
    value = rows[1]["sample"]
    sha = hashlib.sha256(image.to_bytes()).hexdigest()
    assert value == {
        "_type": "image-file",
        "path": f"media/images/sample_1_{sha[:20]}.png",
        "sha256": sha,
        "size": len(image.to_bytes()),
        "format": "png",
        "width": 4,
        "height": 2,
        "caption": "cat",
        "digest": value["digest"],
    }
    # The bytes live in the content-addressed blob store, not in the database.
    assert _blob(value["digest"]) == image.to_bytes()
    scanned = list(wandb.Api().run(f"p/{run.id}").scan_history(keys=["sample"]))
    assert scanned[0]["sample"] == value
    assert wandb.Api().run(f"p/{run.id}").summary_metrics["sample"] == value


def test_a_key_with_slashes_names_folders_as_in_w_and_b(ws_env):
    with wandb.init(project="p") as run:
        run.log({"val/examples": wandb.Image(np.zeros((2, 2)))}, step=3)
    value = wandb.Api().run(f"p/{run.id}").history(pandas=False)[0]["val/examples"]
    assert value["path"].startswith("media/images/val/examples_3_")


def test_a_list_of_images_is_images_separated(any_ws_env, tmp_path):
    first = wandb.Image(np.zeros((2, 3)), caption="a")
    second = wandb.Image(np.full((2, 3), 255, dtype=np.uint8), caption="b")
    with wandb.init(project="p") as run:
        run.log({"batch": [first, second]})
    value = wandb.Api().run(f"p/{run.id}").history(pandas=False)[0]["batch"]
    assert {k: value[k] for k in ("_type", "width", "height", "format", "count", "captions")} == {
        "_type": "images/separated", "width": 3, "height": 2, "format": "png", "count": 2, "captions": ["a", "b"],
    }  # fmt: skip
    assert [p.rsplit("_", 1)[0] for p in value["filenames"]] == ["media/images/batch_0"] * 2
    assert [_blob(d) for d in value["digests"]] == [first.to_bytes(), second.to_bytes()]


def test_a_list_mixing_images_and_numbers_is_refused_before_anything_is_logged(ws_env):
    with wandb.init(project="p") as run:
        with pytest.raises(ValueError, match=r"mixes W&B data types with \['int'\]"):
            run.log({"bad": [wandb.Image(np.zeros((2, 2))), 3]})
        assert run.step == 0


def test_an_image_in_an_artifact_is_read_back_with_get(any_ws_env, tmp_path):
    data = _png(tmp_path / "photo.png")
    with wandb.init(project="p") as run:
        art = wandb.Artifact("pics", "dataset")
        entry = art.add(wandb.Image(str(tmp_path / "photo.png"), caption="red"), "best")
        assert entry.path == "best.image-file.json"
        art.add(wandb.Image(np.zeros((2, 2))), "black")
        run.log_artifact(art)
    sha = hashlib.sha256(data).hexdigest()
    got = wandb.Api().artifact("p/pics:v0")
    # As W&B: a file keeps its name under a folder named by its hash; generated images are named by hash.
    assert f"media/images/{sha[:20]}/photo.png" in got.manifest.entries
    best = got.get("best")
    assert isinstance(best, wandb.Image)
    assert (best.to_bytes(), best.caption, best.width, best.height) == (data, "red", 5, 3)
    assert got.get("best.image-file.json") == best
    assert got.get("black").image.size == (2, 2)
    assert got.get("nothing") is None


def test_artifact_add_refuses_what_is_not_a_data_type(ws_env):
    art = wandb.Artifact("x", "dataset")
    with pytest.raises(TypeError, match="use add_file"):
        art.add("a string", "name")


def test_an_image_blob_is_fsynced_before_the_history_row_naming_it_is_written(ws_env, monkeypatch):
    """Invariant 1 for history: a row never names a media blob that a crash could still lose."""
    import os

    from wandb_dagster.storage import blobs as blobs_mod
    from wandb_dagster.store import Store

    fsynced: list[str] = []
    at_write: list[list[str]] = []
    real_fsync, real_update_run = os.fsync, Store.update_run

    def fsync(fd: int) -> None:
        fsynced.append(os.path.realpath(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    def update_run(self, pk, **fields):  # observes the write, then does it
        if fields.get("history"):
            at_write.append(list(fsynced))
        return real_update_run(self, pk, **fields)

    with wandb.init(project="p") as run:
        run.log({"warm-up": wandb.Image(np.zeros((2, 2)))})  # the blob store's first write creates its folders
        run.history()
        monkeypatch.setattr(blobs_mod.os, "fsync", fsync)
        monkeypatch.setattr(Store, "update_run", update_run)
        run.log({"img": wandb.Image(np.full((3, 3), 7, dtype=np.uint8))})
        run.history()  # flushes
        monkeypatch.setattr(Store, "update_run", real_update_run)
    value = wandb.Api().run(f"p/{run.id}").history(pandas=False)[1]["img"]
    blob_path = os.path.realpath(Workspace.default().blobs.blob_path(b64_to_hex(value["digest"])))
    assert at_write and blob_path in at_write[0]


def test_an_image_set_in_the_summary_is_stored_as_when_logged(any_ws_env):
    image = wandb.Image(np.full((2, 2), 9, dtype=np.uint8), caption="best")
    with wandb.init(project="p") as run:
        run.summary["best_sample"] = image
    value = wandb.Api().run(f"p/{run.id}").summary_metrics["best_sample"]
    assert value["_type"] == "image-file" and value["caption"] == "best"
    assert value["path"] == f"media/images/best_sample_summary_{value['sha256'][:20]}.png"  # as W&B names it
    assert _blob(value["digest"]) == image.to_bytes()


def test_overlays_that_are_not_recorded_are_named_in_a_warning():
    with pytest.warns(UserWarning, match=r"boxes=\.\.\., masks=\.\.\.\): overlays are not recorded"):
        wandb.Image(np.zeros((2, 2)), boxes={"predictions": {}}, masks={"truth": {}})


def test_media_files_are_readable_through_the_public_api(any_ws_env, tmp_path):
    first, second = wandb.Image(np.zeros((2, 2))), wandb.Image(np.full((2, 2), 255, dtype=np.uint8))
    with wandb.init(project="p") as run:
        run.log({"img": first, "batch": [first, second], "t": wandb.Table(columns=["a"], data=[[1]])})
        run.summary["best"] = second
    api_run = wandb.Api().run(f"p/{run.id}")
    row = api_run.history(pandas=False)[0]
    names = [f.name for f in api_run.files()]
    assert row["img"]["path"] in names and row["t"]["path"] in names
    assert set(row["batch"]["filenames"]) <= set(names)
    assert api_run.summary_metrics["best"]["path"] in names
    assert [f.name for f in api_run.files(pattern="%.table.json")] == [row["t"]["path"]]
    one = api_run.file(row["img"]["path"])
    assert (one.size, one.mimetype, one.md5) == (row["img"]["size"], "image/png", row["img"]["digest"])
    with one.download(root=tmp_path / "out") as f:
        path = f.name
    with open(path, "rb") as f:
        assert f.read() == first.to_bytes()
    assert path == str(tmp_path / "out" / row["img"]["path"])
    with pytest.raises(ValueError, match="already exists; pass replace=True"):
        one.download(root=tmp_path / "out")
    one.download(root=tmp_path / "out", exist_ok=True).close()
    one.download(root=tmp_path / "out", replace=True).close()
    with pytest.raises(ValueError, match="has no file 'media/nothing.png'"):
        api_run.file("media/nothing.png")
    with pytest.raises(ValueError, match="both names and pattern"):
        api_run.files(names=["x"], pattern="%")


def test_a_file_name_that_climbs_out_of_the_root_is_refused(ws_env, tmp_path):
    # A hand-made value that looks like a media form cannot make download() write outside its root.
    with wandb.init(project="p") as run:
        image = wandb.Image(np.zeros((2, 2)))
        run.log({"img": image})
        run.history()
        digest = wandb.Api().run(f"p/{run.id}").history(pandas=False)[0]["img"]["digest"]
        run.log({"fake": {"_type": "image-file", "path": "../escape.png", "digest": digest, "size": 1}})
    with pytest.raises(ValueError, match="escape.png"):
        wandb.Api().run(f"p/{run.id}").file("../escape.png").download(root=tmp_path / "root")
    assert not (tmp_path / "escape.png").exists()


def test_formats_follow_w_and_b(tmp_path):
    # A file's format is its extension as written, any file Pillow reads being an image.
    PILImage.new("RGB", (3, 2)).save(tmp_path / "a.jpeg")
    PILImage.new("RGB", (3, 2)).save(tmp_path / "b.tiff")
    assert (wandb.Image(str(tmp_path / "a.jpeg")).format, wandb.Image(str(tmp_path / "b.tiff")).format) == (
        "jpeg", "tiff",
    )  # fmt: skip
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError, match="txt data cannot be read as an image"):
        wandb.Image(str(tmp_path / "notes.txt"))
    # Arrays: file_type as given, among W&B's; RGBA as JPEG loses its alpha channel.
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    jpeg = wandb.Image(rgba, file_type="jpeg")
    assert jpeg.format == "jpeg" and jpeg.image.format == "JPEG" and jpeg.image.mode == "RGB"
    with pytest.raises(ValueError, match=r"file_type='gif'.*\['png', 'jpg', 'jpeg', 'bmp'\]"):
        wandb.Image(rgba, file_type="gif")
    # As W&B, normalisation looks at the values whatever the dtype: a uint8 mask of 0/1 becomes 0/255.
    assert np.asarray(wandb.Image(np.array([[0, 1]], dtype=np.uint8)).image).tolist() == [[0, 255]]
    assert np.asarray(wandb.Image(np.array([[0, 1]], dtype=np.uint8), normalize=False).image).tolist() == [[0, 1]]


def test_media_in_a_bucket_workspace_is_stored_there_and_read_back(remote: Remote, remote_ws, tmp_path):  # noqa: F811
    image = wandb.Image(np.full((3, 2, 3), 200, dtype=np.uint8), caption="remote")
    with wandb.init(project="p") as run:
        run.log({"img": image, "t": wandb.Table(columns=["i"], data=[[image]])})
    api_run = wandb.Api().run(f"p/{run.id}")
    value = api_run.history(pandas=False)[0]["img"]
    assert b64_to_hex(value["digest"]) in remote.objects()  # the blob is in the bucket
    with api_run.file(value["path"]).download(root=tmp_path) as f, open(f.name, "rb") as raw:
        assert raw.read() == image.to_bytes()
    [table_version] = api_run.logged_artifacts()
    assert table_version.get("t").get_column("i") == [image]
