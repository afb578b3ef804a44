"""``wandb.Html``: an HTML document, stored as a file (``media/html/...html``) like an image.

    >>> import wandb_dagster as wandb
    >>> run.log({"report": wandb.Html("<h1>Hello</h1>")})                  # doctest: +SKIP
    >>> run.log({"page": wandb.Html("index.html")})                       # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from wandb_dagster.sdk.data_types.base import Media, read_entry_bytes

if TYPE_CHECKING:
    from wandb_dagster.sdk.artifact import Artifact
    from wandb_dagster.sdk.run import Run

# W&B also links its stylesheet from its own server; a self-hosted workspace fetches nothing from outside,
# so only the link target is injected.
_HEAD = '<base target="_blank">'


class Html(Media):
    """HTML from a string, a file object, or the path of a ``.html`` file (as W&B decides: a path is an
    existing file ending in ``.html``, unless ``data_is_not_path``). ``inject`` adds ``<base
    target="_blank">`` to the head, so links open outside the page that shows it."""

    _log_type = "html-file"
    _run_type = "html-file"
    _media_dir = "media/html"
    _extension = ".html"

    def __init__(self, data: Any, inject: bool = True, data_is_not_path: bool = False) -> None:
        is_path = (
            isinstance(data, (str, os.PathLike)) and not data_is_not_path and os.path.isfile(data)
            and os.path.splitext(os.fspath(data))[1] == ".html"
        )  # fmt: skip
        if is_path:
            with open(data, encoding="utf-8") as f:
                html = f.read()
        elif isinstance(data, str):
            html = data
        elif hasattr(data, "read"):
            if hasattr(data, "seek"):
                data.seek(0)
            html = data.read()
        else:
            raise ValueError(f"wandb.Html takes HTML text, a file object or a .html path, got {type(data).__name__}.")
        if inject:
            html = _inject_head(html)
        self.html = html
        super().__init__(html.encode("utf-8"))

    @classmethod
    def from_json(cls, obj: dict[str, Any], artifact: Artifact) -> Html:
        return cls(read_entry_bytes(artifact, obj["path"]).decode("utf-8"), inject=False, data_is_not_path=True)

    @classmethod
    def seq_to_json(cls, pages: Sequence[Html], run: Run, key: str, step: int | str) -> dict[str, Any]:
        """A list of pages in a history row, as W&B records it: ``{"_type": "html", "count", "html": [...]}``."""
        return {"_type": "html", "count": len(pages), "html": [page.to_run_json(run, key, step) for page in pages]}

    def __repr__(self) -> str:
        return f"<Html {self._size} bytes>"


def _inject_head(html: str) -> str:
    if "<head>" in html:
        before, after = html.split("<head>", 1)
        return (before + "<head>" + _HEAD + after).strip()
    if "<html>" in html:
        before, after = html.split("<html>", 1)
        return (before + "<html><head>" + _HEAD + "</head>" + after).strip()
    return (_HEAD + html).strip()
