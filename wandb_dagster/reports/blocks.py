"""The blocks of a report, as W&B's Report API (``wandb_workspaces.reports.v2``) has them: headings,
paragraphs, Markdown, code, images, lists, rules, a table of contents, and panel grids of charts."""

from __future__ import annotations

import dataclasses
from typing import Any

from wandb_dagster.reports._model import choice, model, optional_bool, text
from wandb_dagster.reports.runset import Runset

LANGUAGES = ("javascript", "python", "css", "json", "html", "markdown", "yaml")


@model
class Link:
    """An inline link: ``P(["See ", Link("the docs", url="https://...")])``."""

    text: str
    url: str

    def __post_init__(self) -> None:
        text("Link", "text", self.text)
        text("Link", "url", self.url)


@model
class InlineCode:
    text: str

    def __post_init__(self) -> None:
        text("InlineCode", "text", self.text)


@model
class InlineLatex:
    text: str

    def __post_init__(self) -> None:
        text("InlineLatex", "text", self.text)


TextLike = str | Link | InlineCode | InlineLatex


def check_text_like(owner: str, value: Any) -> None:
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(v, (str, Link, InlineCode, InlineLatex)) for v in items):
        raise ValueError(
            f"{owner}(text={value!r}) is invalid; give a string, or a list of strings, Link, InlineCode and InlineLatex"
        )


def plain_text(value: Any) -> str:
    items = value if isinstance(value, list) else [value]
    return "".join(v if isinstance(v, str) else v.text for v in items)


class Block:
    """Marks report blocks (the classes below)."""


@model
class P(Block):
    text: TextLike | list[TextLike] = ""

    def __post_init__(self) -> None:
        check_text_like("P", self.text)


@model
class H1(Block):
    text: TextLike | list[TextLike] = ""
    collapsed_blocks: list[Block] | None = None

    def __post_init__(self) -> None:
        _heading(self)


@model
class H2(Block):
    text: TextLike | list[TextLike] = ""
    collapsed_blocks: list[Block] | None = None

    def __post_init__(self) -> None:
        _heading(self)


@model
class H3(Block):
    text: TextLike | list[TextLike] = ""
    collapsed_blocks: list[Block] | None = None

    def __post_init__(self) -> None:
        _heading(self)


def _heading(block: Any) -> None:
    name = type(block).__name__
    check_text_like(name, block.text)
    if block.collapsed_blocks is not None:
        check_blocks(f"{name}(collapsed_blocks=...)", block.collapsed_blocks)


@model
class MarkdownBlock(Block):
    """Markdown (CommonMark; raw HTML is shown as text, not run)."""

    text: str = ""

    def __post_init__(self) -> None:
        text("MarkdownBlock", "text", self.text)


@model
class CodeBlock(Block):
    code: TextLike | list[TextLike] = ""
    language: str | None = "python"

    def __post_init__(self) -> None:
        check_text_like("CodeBlock", self.code)
        if self.language is not None:
            choice("CodeBlock", "language", self.language, LANGUAGES)


@model
class LatexBlock(Block):
    text: str = ""

    def __post_init__(self) -> None:
        text("LatexBlock", "text", self.text)


@model
class Image(Block):
    """An image: ``url`` is an http(s) address, a ``data:image/...`` URI, or a local file, which ``save()``
    embeds in the report (so the report never reads files when it is shown)."""

    url: str
    caption: TextLike | list[TextLike] = ""

    def __post_init__(self) -> None:
        if not isinstance(self.url, str) or not self.url:
            raise ValueError(
                f"Image(url={self.url!r}) is invalid; give an http(s) URL, a data:image URI or a file path"
            )
        check_text_like("Image", self.caption)


@model
class HorizontalRule(Block):
    pass


@model
class TableOfContents(Block):
    """The report's headings, linked."""


@model
class BlockQuote(Block):
    text: TextLike | list[TextLike] = ""

    def __post_init__(self) -> None:
        check_text_like("BlockQuote", self.text)


@model
class CalloutBlock(Block):
    text: TextLike | list[TextLike] = ""

    def __post_init__(self) -> None:
        check_text_like("CalloutBlock", self.text)


@model
class UnorderedList(Block):
    items: list[TextLike | list[TextLike]] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        _items(self)


@model
class OrderedList(Block):
    items: list[TextLike | list[TextLike]] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        _items(self)


def _items(block: Any) -> None:
    if not isinstance(block.items, list):
        raise ValueError(f"{type(block).__name__}(items={block.items!r}) is invalid; give a list of strings")
    for item in block.items:
        check_text_like(type(block).__name__, item)


def _default_runsets() -> list[Runset]:
    return [Runset()]


@model
class PanelGrid(Block):
    """Panels (charts) over one or more run sets; a run set without entity or project takes the report's.

    >>> PanelGrid(runsets=[Runset(filters="State = 'finished'")],
    ...           panels=[LinePlot(title="Loss", x="Step", y=["loss"])])    # doctest: +SKIP
    """

    runsets: list[Runset] = dataclasses.field(default_factory=_default_runsets)
    hide_run_sets: bool = False
    panels: list[Any] = dataclasses.field(default_factory=list)
    active_runset: int | None = 0

    def __post_init__(self) -> None:
        from wandb_dagster.reports.panels import Panel

        if isinstance(self.runsets, Runset):
            self.runsets = [self.runsets]
        if (
            not isinstance(self.runsets, list)
            or not self.runsets
            or not all(isinstance(r, Runset) for r in self.runsets)
        ):
            raise ValueError(f"PanelGrid(runsets={self.runsets!r}) is invalid; give a non-empty list of Runset")
        if not isinstance(self.panels, list) or not all(isinstance(p, Panel) for p in self.panels):
            bad = (
                self.panels
                if not isinstance(self.panels, list)
                else [p for p in self.panels if not isinstance(p, Panel)]
            )
            raise ValueError(
                f"PanelGrid(panels=...) holds {bad!r}, which is not a panel; give panels such as "
                "LinePlot(...), BarPlot(...), ScalarChart(...)"
            )
        optional_bool("PanelGrid", "hide_run_sets", self.hide_run_sets)
        ok = self.active_runset is None or (
            isinstance(self.active_runset, int) and 0 <= self.active_runset < len(self.runsets)
        )
        if not ok:
            raise ValueError(
                f"PanelGrid(active_runset={self.active_runset!r}) is invalid; give the index of one of "
                f"its {len(self.runsets)} run sets"
            )


def check_blocks(owner: str, blocks: Any) -> None:
    if not isinstance(blocks, list):
        raise ValueError(f"{owner} must be a list of blocks, got {blocks!r}")
    for block in blocks:
        if not isinstance(block, Block):
            raise ValueError(
                f"{owner} holds {block!r}, which is not a block; use H1, H2, H3, P, MarkdownBlock, "
                "CodeBlock, Image, HorizontalRule, TableOfContents, PanelGrid..."
            )
