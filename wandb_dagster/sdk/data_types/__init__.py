"""W&B's data types for runs and artifacts: ``wandb.Image`` and friends (one module per type).

    >>> import wandb_dagster as wandb
    >>> with wandb.init(project="demo") as run:                            # doctest: +SKIP
    ...     run.log({"sample": wandb.Image("photo.png", caption="a bike")})

How each is recorded (blob store, history JSON, artifact entries) is in :mod:`.base`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wandb_dagster.sdk.data_types.base import (
    Media,
    WBValue,
    artifact_add,
    artifact_get,
    from_json,
    media_files,
    require,
)
from wandb_dagster.sdk.data_types.custom_chart import CustomChart, CustomChartSpec, log_charts, plot_table
from wandb_dagster.sdk.data_types.histogram import Histogram
from wandb_dagster.sdk.data_types.html import Html
from wandb_dagster.sdk.data_types.image import Image
from wandb_dagster.sdk.data_types.table import Table
from wandb_dagster.sdk.values import json_value

if TYPE_CHECKING:
    from wandb_dagster.sdk.run import Run

__all__ = [
    "CustomChart",
    "CustomChartSpec",
    "Histogram",
    "Html",
    "Image",
    "Media",
    "Table",
    "WBValue",
    "artifact_add",
    "artifact_get",
    "from_json",
    "history_values",
    "media_files",
    "plot_table",
]


def history_values(run: Run, data: dict[str, Any], step: int | str) -> dict[str, Any]:
    """``data`` with every data type replaced by the JSON a history row records (its bytes stored); ``step``
    is the row's step, or ``"summary"`` for a value set in ``run.summary`` (W&B's file names say so).

    In a history row (not the summary), a NumPy array or tensor of more than 32 values becomes a 32-bin
    histogram, one of a single value that value, as W&B's history encoder does."""
    arrays = step != "summary"
    if not any(_has_media(v, arrays) for v in data.values()):
        return data  # the common case (numbers) costs one scan
    # The other values are checked first: a value that cannot be recorded fails the call before any media is
    # stored or any table logged as an artifact.
    for key, value in data.items():
        if not _has_media(value, arrays):
            json_value(value, key)
    data = log_charts(run, data)
    return {key: _history_value(run, key, value, step, arrays) for key, value in data.items()}


def _has_media(value: Any, arrays: bool = False) -> bool:
    if isinstance(value, (WBValue, CustomChart)) or _is_dataframe(value) or (arrays and _is_array(value)):
        return True
    if isinstance(value, (list, tuple)):
        return any(isinstance(v, WBValue) for v in value)
    if isinstance(value, dict):
        return any(_has_media(v, arrays) for v in value.values())
    return False


def _is_array(value: Any) -> bool:
    # A NumPy array or a torch/TensorFlow/JAX tensor, told by its class (no import to ask).
    module = type(value).__module__.split(".")[0]
    return module in ("numpy", "torch", "tensorflow", "jax", "jaxlib") and hasattr(value, "shape")


def _array_value(value: Any) -> Any:
    np = require("numpy", "run.log() of an array")
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    elif hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        value = value.numpy()
    array = np.asarray(value)
    if array.size == 1:
        return array.flatten()[0].item()
    if array.size <= 32:
        return array.tolist()
    return Histogram(array.ravel(), num_bins=32).to_json()


def _is_dataframe(value: Any) -> bool:
    return type(value).__name__ == "DataFrame" and type(value).__module__.startswith("pandas")


def _history_value(run: Run, key: str, value: Any, step: int | str, arrays: bool = False) -> Any:
    # As W&B's val_to_json: a DataFrame is a Table; a list of one batchable media type (Image, Html) is one
    # "images/separated" or "html" value; any other list of data types is a list of their JSON forms.
    if arrays and _is_array(value):
        return _array_value(value)
    if _is_dataframe(value):
        value = Table(dataframe=value)
    if isinstance(value, WBValue):
        return value.to_run_json(run, key, step)
    if isinstance(value, (list, tuple)) and any(isinstance(v, WBValue) for v in value):
        if not all(isinstance(v, WBValue) for v in value):
            others = sorted({type(v).__name__ for v in value if not isinstance(v, WBValue)})
            raise ValueError(
                f"run.log({{{key!r}: [...]}}): the list mixes W&B data types with {others} values; log the "
                "data types and the other values under keys of their own."
            )
        first = type(value[0])
        if issubclass(first, (Image, Html)) and all(type(v) is first for v in value):
            return first.seq_to_json(list(value), run, key, step)
        return [_history_value(run, key, v, step) for v in value]
    if isinstance(value, dict):
        # W&B names the files of a nested value after its own key, not the dotted path.
        return {k: _history_value(run, str(k), v, step, arrays) for k, v in value.items()}
    return value
