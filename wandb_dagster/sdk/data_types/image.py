"""``wandb.Image``: an image from a NumPy array, a PIL image or a file, with a caption.

    >>> import numpy as np, wandb_dagster as wandb
    >>> image = wandb.Image(np.zeros((4, 6, 3), dtype=np.uint8), caption="black")   # doctest: +SKIP
    >>> image.width, image.height                                                  # doctest: +SKIP
    (6, 4)
    >>> run.log({"example": image, "batch": [image, image]})                      # doctest: +SKIP

Arrays are converted as W&B converts them: HW is greyscale, HWC with 1, 3 or 4 channels is L, RGB or RGBA;
floats in [0, 1] are scaled by 255, in [-1, 1] mapped onto [0, 255], anything else clipped to [0, 255]
(``normalize=False``: taken as they are). Arrays and PIL images are stored as PNG; a file is stored as it
is (PNG, JPEG, GIF, BMP).
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from wandb_dagster.sdk.data_types.base import Media, read_entry_bytes, require

if TYPE_CHECKING:
    from wandb_dagster.sdk.artifact import Artifact
    from wandb_dagster.sdk.run import Run

# The formats W&B writes arrays and PIL images in (file_type), and Pillow's name for each.
_DATA_FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "bmp": "BMP"}


class Image(Media):
    """An image to log (``run.log``), to put in a :class:`~wandb_dagster.Table` or in an artifact."""

    _log_type = "image-file"
    _run_type = "image-file"
    _media_dir = "media/images"
    format: str
    width: int
    height: int

    def __init__(
        self,
        data_or_path: Any,
        mode: str | None = None,
        caption: str | None = None,
        grouping: int | None = None,
        file_type: str | None = None,
        normalize: bool = True,
        **overlays: Any,
    ) -> None:
        dropped = sorted(k for k, v in overlays.items() if v is not None)
        if dropped:
            # W&B's overlays (boxes, masks, classes) are not recorded yet: say so rather than lose them quietly.
            warnings.warn(
                f"wandb.Image({', '.join(f'{k}=...' for k in dropped)}): overlays are not recorded by wandb_dagster; "
                "the image is logged without them. Log them as a wandb.Table beside the image to keep them.",
                stacklevel=2,
            )
        self._grouping = grouping
        self._file_name: str | None = None  # the base name of the file it was read from, if any
        if isinstance(data_or_path, Image):
            data, fmt, size = data_or_path._bytes, data_or_path.format, (data_or_path.width, data_or_path.height)
            caption = caption if caption is not None else data_or_path.caption
            self._file_name = data_or_path._file_name
        elif isinstance(data_or_path, (str, os.PathLike)):
            data, fmt, size = _from_path(os.fspath(data_or_path))
            self._file_name = os.path.basename(os.fspath(data_or_path))
        else:
            data, fmt, size = _encode(data_or_path, mode, file_type, normalize)
        self.format = fmt
        self._extension = "." + fmt
        self.width, self.height = size
        super().__init__(data, caption)

    def _meta(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": self.format, "width": self.width, "height": self.height}
        if self._grouping:
            out["grouping"] = self._grouping
        return out

    def _artifact_name(self) -> str:
        # As W&B: a file given by path keeps its name, under a folder of its content's hash (two img.png
        # from different folders do not collide).
        if self._file_name:
            return f"{self._media_dir}/{self._sha256[:20]}/{self._file_name}"
        return super()._artifact_name()

    @property
    def image(self) -> Any:
        """The image as a PIL image (needs Pillow)."""
        pil = require("PIL.Image", "wandb.Image.image")
        return pil.open(io.BytesIO(self._bytes))

    def to_data_array(self) -> list[Any]:
        """The pixels as rows (an int per pixel, or a list of its channels), as W&B's ``to_data_array``;
        ``Table.get_column(..., convert_to="numpy")`` uses it for image columns."""
        rows: list[Any] = require("numpy", "wandb.Image.to_data_array()").asarray(self.image).tolist()
        return rows

    def to_bytes(self) -> bytes:
        """The stored file's bytes (PNG for arrays and PIL images)."""
        return self._bytes

    @classmethod
    def from_json(cls, obj: dict[str, Any], artifact: Artifact) -> Image:
        data = read_entry_bytes(artifact, obj["path"])
        fmt = obj.get("format") or os.path.splitext(obj["path"])[1].lstrip(".") or "png"
        return cls._from_bytes(data, fmt, obj.get("caption"), (obj.get("width"), obj.get("height")))

    @classmethod
    def _from_bytes(cls, data: bytes, fmt: str, caption: str | None, size: tuple[Any, Any]) -> Image:
        image = cls.__new__(cls)
        image._grouping = None
        image._file_name = None
        image.format = fmt
        image._extension = "." + fmt
        if not all(isinstance(n, int) for n in size):
            size = _size_of(data, fmt)
        image.width, image.height = size
        Media.__init__(image, data, caption)
        return image

    @classmethod
    def seq_to_json(cls, images: Sequence[Image], run: Run, key: str, step: int | str) -> dict[str, Any]:
        """A list of images in a history row, as W&B's ``images/separated``: each image is its own file."""
        files = [image.to_run_json(run, key, step) for image in images]
        out: dict[str, Any] = {
            "_type": "images/separated",
            "width": images[0].width,
            "height": images[0].height,
            "format": images[0].format,
            "count": len(images),
            "filenames": [f["path"] for f in files],
            # Not in W&B's form: the blob and size of each file, in the order of filenames (this project's
            # addition: there is no run folder to find them in).
            "digests": [f["digest"] for f in files],
            "sizes": [f["size"] for f in files],
        }
        if images[0].caption is not None:  # as W&B: captions only when the first image has one
            out["captions"] = [image.caption for image in images]
        return out

    def __repr__(self) -> str:
        return f"<Image {self.width}x{self.height} {self.format}{'' if self.caption is None else f' {self.caption!r}'}>"


def _from_path(path: str) -> tuple[bytes, str, tuple[int, int]]:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ValueError(
            f"wandb.Image({path!r}): no such file; pass an existing image file, an array or a PIL image."
        ) from None
    # As W&B: the format is the file's extension as written; any file Pillow reads is an image.
    fmt = os.path.splitext(path)[1][1:]
    if not fmt:
        raise ValueError(
            f"wandb.Image({path!r}): the file has no extension, so its format is unknown; name it .png, .jpg... "
            "or pass the pixels as an array."
        )
    return data, fmt, _size_of(data, fmt)


def _size_of(data: bytes, fmt: str) -> tuple[int, int]:
    # A PNG states its size in its first chunk: logging PNG files needs no Pillow.
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    pil = require("PIL.Image", f"wandb.Image of a {fmt} file")
    try:
        with pil.open(io.BytesIO(data)) as img:
            return img.size
    except Exception as error:
        raise ValueError(f"wandb.Image: the {fmt} data cannot be read as an image ({error}).") from None


def _encode(data: Any, mode: str | None, file_type: str | None, normalize: bool) -> tuple[bytes, str, tuple[int, int]]:
    pil = require("PIL.Image", "wandb.Image of an array or a PIL image")
    fmt = file_type or "png"
    if fmt not in _DATA_FORMATS:
        raise ValueError(f"wandb.Image(file_type={file_type!r}): use one of {list(_DATA_FORMATS)}, as W&B.")
    if isinstance(data, pil.Image):
        image = data
    else:
        image = pil.fromarray(_to_uint8(data, normalize)).convert(mode or _guess_mode(data, fmt))
    if fmt in ("jpg", "jpeg") and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")  # JPEG has no alpha channel (W&B drops it too)
    buffer = io.BytesIO()
    image.save(buffer, format=_DATA_FORMATS[fmt])
    return buffer.getvalue(), fmt, image.size


def _as_array(data: Any) -> Any:
    np = require("numpy", "wandb.Image of an array")
    if hasattr(data, "detach"):  # a torch tensor: channels first, as W&B reads them
        data = data.detach().cpu().numpy()
        if data.ndim == 3:
            data = data.transpose(1, 2, 0)
    elif hasattr(data, "numpy") and not isinstance(data, np.ndarray):
        data = data.numpy()  # TensorFlow eager tensors
    array = np.asarray(data)
    if array.ndim > 2:
        array = array.squeeze()  # trivial dimensions go, as in W&B
        if array.ndim == 2 or (array.ndim == 3 and array.shape[-1] in (1, 3, 4)):
            return array
    if array.ndim != 2:
        raise ValueError(
            f"wandb.Image: an array of shape {list(np.asarray(data).shape)} is not an image; give HW (greyscale) "
            "or HWC with 1, 3 or 4 channels."
        )
    return array


def _guess_mode(data: Any, fmt: str) -> str:
    array = _as_array(data)
    channels = 1 if array.ndim == 2 else array.shape[-1]
    if channels == 1:
        return "L"
    if channels == 3 or fmt in ("jpg", "jpeg"):
        return "RGB"
    return "RGBA"


def _to_uint8(data: Any, normalize: bool) -> Any:
    np = require("numpy", "wandb.Image of an array")
    array = _as_array(data)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if normalize:  # as W&B, whatever the dtype: a uint8 array of 0s and 1s is scaled by 255 too
        low, high = float(array.min()), float(array.max())
        if low >= 0 and high <= 1:
            array = array * 255
        elif low >= -1 and high <= 1:
            array = 255 * 0.5 * (array + 1)
        else:
            array = array.clip(0, 255)
    return array.astype(np.uint8)
