"""The values a run records (config, summary, history): JSON, with NumPy and torch scalars and arrays
converted, and NaN/Infinity written as strings (JSON has none; W&B shows them as strings too).

    >>> from wandb_dagster.sdk.values import json_value
    >>> json_value({"lr": 0.1, "bad": float("nan")}, "config")
    {'lr': 0.1, 'bad': 'nan'}
"""

from __future__ import annotations

import math
from typing import Any


def json_value(value: Any, key: str) -> Any:
    """``value`` as JSON; ``key`` names it in the error for a value that cannot be recorded."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): json_value(v, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v, key) for v in value]
    for attr in ("item", "tolist"):  # NumPy scalars and arrays, torch tensors
        convert = getattr(value, attr, None)
        if callable(convert):
            try:
                return json_value(convert(), key)
            except (TypeError, ValueError):
                break
    raise ValueError(
        f"Value for {key!r} has type {type(value).__name__}, which cannot be recorded; log numbers, strings, "
        "booleans, lists or dicts of them."
    )
