"""``wandb.Histogram``: a distribution, recorded in the history as W&B's ``{"_type": "histogram", "values":
[...], "bins": [...]}`` (counts and bin edges, so ``len(bins) == len(values) + 1``).

    >>> import wandb_dagster as wandb
    >>> wandb.Histogram(np_histogram=([1, 2], [0.0, 0.5, 1.0])).to_json()
    {'_type': 'histogram', 'values': [1, 2], 'bins': [0.0, 0.5, 1.0]}
    >>> run.log({"weights": wandb.Histogram([0.1, 0.2, 0.2, 0.9])})       # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from wandb_dagster.sdk.data_types.base import WBValue, require

if TYPE_CHECKING:
    from wandb_dagster.sdk.artifact import Artifact
    from wandb_dagster.sdk.run import Run


def _as_list(values: Any) -> list[Any]:
    return values.tolist() if hasattr(values, "tolist") else list(values)


class Histogram(WBValue):
    """Counts over bins: from a ``sequence`` (binned by NumPy into ``num_bins``, default 64, as W&B) or from
    ``np_histogram=(counts, bin_edges)`` (what ``numpy.histogram`` returns)."""

    _log_type = "histogram"
    MAX_LENGTH = 512

    def __init__(
        self, sequence: Sequence[Any] | None = None, np_histogram: Any = None, num_bins: int = 64
    ) -> None:
        if np_histogram is not None:
            if len(np_histogram) != 2:
                raise ValueError(
                    "Histogram(np_histogram=...) takes (counts, bin_edges), as numpy.histogram returns; got "
                    f"{len(np_histogram)} items."
                )
            self.histogram, self.bins = _as_list(np_histogram[0]), _as_list(np_histogram[1])
        elif sequence is not None:
            np = require("numpy", "wandb.Histogram(sequence)")
            counts, edges = np.histogram(np.asarray(sequence, dtype=float), bins=num_bins)
            self.histogram, self.bins = counts.tolist(), edges.tolist()
        else:
            raise ValueError("wandb.Histogram needs a sequence of values or np_histogram=(counts, bin_edges).")
        if len(self.histogram) > self.MAX_LENGTH:
            raise ValueError(f"A histogram has at most {self.MAX_LENGTH} bins, got {len(self.histogram)}.")
        if len(self.histogram) + 1 != len(self.bins):
            raise ValueError(
                f"A histogram has one more bin edge than counts: got {len(self.histogram)} counts and "
                f"{len(self.bins)} edges."
            )

    def to_json(self, run_or_artifact: Any = None) -> dict[str, Any]:
        return {"_type": self._log_type, "values": self.histogram, "bins": self.bins}

    def to_run_json(self, run: Run, key: str, step: int | str) -> dict[str, Any]:
        return self.to_json()

    def to_artifact_json(self, artifact: Artifact) -> dict[str, Any]:
        return self.to_json()

    @classmethod
    def from_json(cls, obj: dict[str, Any], artifact: Artifact | None = None) -> Histogram:
        return cls(np_histogram=(obj["values"], obj["bins"]))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Histogram) and (other.histogram, other.bins) == (self.histogram, self.bins)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Histogram {len(self.histogram)} bins>"
