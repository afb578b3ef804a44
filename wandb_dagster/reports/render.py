"""A report as HTML: :func:`render` gives the body and the data its charts draw; :func:`standalone_html` wraps
them into one self-contained page (uPlot, static/charts.js, static/reports.js and the data inlined: it opens
with no network).

Line plots are drawn in the browser by ``WDCharts.line(element, spec)`` (static/charts.js) from the JSON
data; every other panel is drawn here, as HTML or SVG, from the runs' config and summary. Text is escaped,
Markdown is rendered without raw HTML, and links and images only take http(s) (images also data:image), so a
report cannot run script in whoever opens it.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import json
import logging
import math
import re
from importlib import resources
from typing import Any

from wandb_dagster.reports import blocks as b
from wandb_dagster.reports import panels as p
from wandb_dagster.reports.data import History, aggregate, groups, is_number, line_spec, run_label, runset_runs, values
from wandb_dagster.reports.metrics import label, run_value

_log = logging.getLogger(__name__)
MAX_MEDIA = 48  # images per media browser
MEDIA_RUNS = 20  # runs a media browser looks through (W&B's shows a page of runs too)
MAX_MEDIA_BYTES = 5 * 1024 * 1024


@dataclasses.dataclass
class Rendered:
    """``body``: the report's HTML; ``data``: ``{"charts": {id: spec}}`` for ``WDCharts.line``."""

    body: str
    data: dict[str, Any]
    title: str


def render(report: Any, api: Any, *, run_url: Any = None) -> Rendered:
    """Render ``report`` with the runs of ``api``'s workspace. ``run_url(run) -> str | None`` links run names
    (the app passes its run pages; a standalone file has none)."""
    state = _State(report, api, run_url)
    head = f'<header class="wd-report-head"><h1 class="wd-report-title">{_e(report.title)}</h1>'
    if report.description:
        head += f'<p class="wd-report-description">{_e(report.description)}</p>'
    head += "</header>"
    toc_entries = _headings(report.blocks)
    parts = [state.block(block, toc_entries) for block in report.blocks]
    body = f'<article class="wd-report wd-width-{_e(report.width)}">{head}{"".join(parts)}</article>'
    return Rendered(body=body, data={"charts": state.charts}, title=report.title)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _safe_url(url: str, *, image: bool = False) -> str | None:
    # Browsers drop whitespace and control characters from URLs (" java\tscript:" is javascript:), so a URL
    # holding any is refused rather than cleaned.
    if re.search(r"[\x00-\x20\x7f\\]", url):
        return None
    if re.match(r"https?://", url, re.I) or (
        not re.match(r"[a-z][a-z0-9+.-]*:", url, re.I) and not url.startswith("//")
    ):
        return url
    if image and re.match(r"data:image/(png|jpe?g|gif|webp|svg\+xml);base64,", url, re.I):
        return url
    return None


def _inline(value: Any) -> str:
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if isinstance(item, str):
            out.append(_e(item))
        elif isinstance(item, b.Link):
            url = _safe_url(item.url)
            out.append(f'<a href="{_e(url)}">{_e(item.text)}</a>' if url else _e(item.text))
        elif isinstance(item, b.InlineCode):
            out.append(f"<code>{_e(item.text)}</code>")
        elif isinstance(item, b.InlineLatex):
            out.append(f'<span class="wd-latex">{_e(item.text)}</span>')
    return "".join(out)


def _headings(blocks: list[Any]) -> list[tuple[int, str, str]]:
    """(level, anchor id, text) of each heading, in order (the table of contents and the anchors agree)."""
    out: list[tuple[int, str, str]] = []
    for block in blocks:
        if isinstance(block, (b.H1, b.H2, b.H3)):
            text = b.plain_text(block.text)
            anchor = f"h{len(out) + 1}-" + (re.sub(r"[^\w]+", "-", text.lower()).strip("-") or "section")
            out.append((int(type(block).__name__[1]), anchor, text))
    return out


def _markdown(text: str) -> str:
    from markdown_it import MarkdownIt

    # CommonMark with raw HTML off: <script> in a Markdown block is shown as text. markdown-it's own link
    # check already refuses javascript:, vbscript:, file: and non-image data: URLs.
    return str(MarkdownIt("commonmark", {"html": False}).enable("table").enable("strikethrough").render(text))


class _State:
    def __init__(self, report: Any, api: Any, run_url: Any) -> None:
        self.report, self.api, self.run_url = report, api, run_url
        self.history = History()
        self.charts: dict[str, Any] = {}
        self.headings_seen = 0
        self.grids = 0
        self.panel_index = 0

    # ------------------------------------------------------------------ blocks

    def block(self, block: Any, toc: list[tuple[int, str, str]]) -> str:
        if isinstance(block, (b.H1, b.H2, b.H3)):
            level, anchor, _ = toc[self.headings_seen]
            self.headings_seen += 1
            inner = "".join(self.block(child, toc) for child in block.collapsed_blocks or [])
            heading = f'<h{level + 1} id="{anchor}" class="wd-heading">{_inline(block.text)}</h{level + 1}>'
            return heading + (f'<details class="wd-collapsed" open>{inner}</details>' if inner else "")
        if isinstance(block, b.P):
            return f"<p>{_inline(block.text)}</p>"
        if isinstance(block, b.MarkdownBlock):
            return f'<div class="wd-markdown">{_markdown(block.text)}</div>'
        if isinstance(block, b.CodeBlock):
            lang = f' class="language-{_e(block.language)}"' if block.language else ""
            return f'<pre class="wd-code"><code{lang}>{_inline(block.code)}</code></pre>'
        if isinstance(block, b.LatexBlock):
            return f'<pre class="wd-latex">{_e(block.text)}</pre>'
        if isinstance(block, b.Image):
            url = _safe_url(block.url, image=True)
            caption = f"<figcaption>{_inline(block.caption)}</figcaption>" if block.caption else ""
            img = (
                f'<img src="{_e(url)}" alt="{_e(b.plain_text(block.caption))}">'
                if url
                else ('<span class="wd-missing">image not shown: only http(s) and data:image URLs are</span>')
            )
            return f'<figure class="wd-image">{img}{caption}</figure>'
        if isinstance(block, b.HorizontalRule):
            return "<hr>"
        if isinstance(block, b.TableOfContents):
            items = "".join(
                f'<li class="wd-toc-{level}"><a href="#{anchor}">{_e(text)}</a></li>' for level, anchor, text in toc
            )
            return f'<nav class="wd-toc"><ul>{items}</ul></nav>'
        if isinstance(block, b.BlockQuote):
            return f"<blockquote>{_inline(block.text)}</blockquote>"
        if isinstance(block, b.CalloutBlock):
            return f'<aside class="wd-callout">{_inline(block.text)}</aside>'
        if isinstance(block, (b.UnorderedList, b.OrderedList)):
            tag = "ul" if isinstance(block, b.UnorderedList) else "ol"
            return f"<{tag}>{''.join(f'<li>{_inline(item)}</li>' for item in block.items)}</{tag}>"
        if isinstance(block, b.PanelGrid):
            return self.grid(block)
        return f'<p class="wd-missing">{_e(type(block).__name__)} is not shown here</p>'

    # ------------------------------------------------------------------ panel grids

    def grid(self, grid: b.PanelGrid) -> str:
        self.grids += 1  # counted before anything can fail, so chart ids match Report.sections
        runsets = []
        for runset in grid.runsets:
            try:
                runs = runset_runs(self.api, runset, self.report.entity, self.report.project)
            except ValueError as exc:  # a filter that no longer compiles (saved by another version): say so
                error = f'<p class="wd-error">run set {_e(runset.name)}: {_e(exc)}</p>'
                return f'<section class="wd-panel-grid">{error}</section>'
            runsets.append((runset, runs))
        parts = []
        if not grid.hide_run_sets:
            for runset, runs in runsets:
                project = f"{runset.entity or self.report.entity}/{runset.project or self.report.project}"
                names = ", ".join(self.run_link(r) for r in runs[:20]) + (" ..." if len(runs) > 20 else "")
                count = f"{len(runs)} run{'' if len(runs) == 1 else 's'}"
                parts.append(
                    f'<div class="wd-runset"><b>{_e(runset.name)}</b> <span class="wd-count">{count}'
                    f"</span> in {_e(project)}{': ' + names if runs else ''}</div>"
                )
        all_runs = [r for _, rs in runsets for r in rs]
        panels = []
        for self.panel_index, panel in enumerate(grid.panels):
            try:
                inner = self.panel(panel, runsets, all_runs)
            except Exception:  # one panel's odd data (a value logged as an unexpected type) spares the others
                _log.exception("could not draw a %s of report %r", type(panel).__name__, self.report.id)
                inner = f'<p class="wd-error">this {_e(type(panel).__name__)} could not be drawn</p>'
            panels.append(
                f'<figure class="wd-panel wd-{type(panel).__name__.lower()}">'
                f"{inner}</figure>"
            )
        return (
            f'<section class="wd-panel-grid">{"".join(parts)}<div class="wd-panels">{"".join(panels)}</div></section>'
        )

    def run_link(self, run: Any) -> str:
        url = self.run_url(run) if self.run_url is not None else None
        return f'<a href="{_e(url)}">{_e(run_label(run))}</a>' if url else _e(run_label(run))

    def panel(self, panel: Any, runsets: list[tuple[Any, list[Any]]], runs: list[Any]) -> str:
        if isinstance(panel, p.LinePlot):
            spec = line_spec(panel, runsets, self.history)
            chart_id = f"chart-{self.grids - 1}-{self.panel_index}"  # see chart_panel
            self.charts[chart_id] = spec
            chart = f'<div class="wd-line" data-wd-chart="{chart_id}"></div>'
            if spec["series"]:
                return chart  # WDCharts.line draws the title with the chart
            empty = '<p class="wd-empty">no run logged these keys yet</p>'
            return f"<figcaption>{_e(spec['title'])}</figcaption>{empty}{chart}"
        if isinstance(panel, p.BarPlot):
            return self.bars(panel, runsets)
        if isinstance(panel, p.ScalarChart):
            found = [v for _, v in values(runs, panel.metric) if is_number(v)]
            title = panel.title or label(panel.metric)
            shown = _number(aggregate(found, panel.groupby_aggfunc)) if found else "-"
            note = f"{panel.groupby_aggfunc or 'mean'} of {len(found)} runs" if len(found) > 1 else ""
            return (
                f'<figcaption>{_e(title)}</figcaption><div class="wd-scalar">{_e(shown)}</div>'
                f'<div class="wd-note">{_e(note)}</div>'
            )
        if isinstance(panel, p.ScatterPlot):
            return self.scatter(panel, runs)
        if isinstance(panel, p.ParallelCoordinatesPlot):
            return self.parallel(panel, runs)
        if isinstance(panel, p.RunComparer):
            return self.comparer(panel, runs)
        if isinstance(panel, p.MediaBrowser):
            return self.media(panel, runs)
        return f'<p class="wd-missing">{_e(type(panel).__name__)} is not shown here</p>'

    def bars(self, panel: p.BarPlot, runsets: list[tuple[Any, list[Any]]]) -> str:
        rows: list[tuple[str, str, float]] = []
        for runset, runs in runsets:
            keys = list(runset.groupby) + ([label(panel.groupby)] if panel.groupby is not None else [])
            for metric in panel.metrics:
                if keys:
                    for name, members in groups(runs, keys):
                        found = [v for _, v in values(members, metric) if is_number(v)]
                        if found:
                            rows.append((name, label(metric), aggregate(found, panel.groupby_aggfunc)))
                else:
                    rows += [(run_label(r), label(metric), float(v)) for r, v in values(runs, metric) if is_number(v)]
        rows = rows[: panel.max_runs_to_show or 50]
        title = panel.title or ", ".join(label(m) for m in panel.metrics)
        if not rows:
            return f'<figcaption>{_e(title)}</figcaption><p class="wd-empty">no values</p>'
        top = max(abs(v) for _, _, v in rows) or 1.0
        several = len(panel.metrics) > 1
        bars = "".join(
            f'<div class="wd-bar-row"><span class="wd-bar-label" title="{_e(name)}">{_e(name)}'
            f'{" · " + _e(m) if several else ""}</span>'
            f'<span class="wd-bar" style="width:{abs(v) / top * 100:.1f}%"></span>'
            f'<span class="wd-bar-value">{_e(_number(v))}</span></div>'
            for name, m, v in rows
        )
        return f'<figcaption>{_e(title)}</figcaption><div class="wd-bars">{bars}</div>'

    def scatter(self, panel: p.ScatterPlot, runs: list[Any]) -> str:
        points = []
        for run in runs:
            x, y = run_value(run, panel.x), run_value(run, panel.y)
            if is_number(x) and is_number(y) and (not panel.log_x or x > 0) and (not panel.log_y or y > 0):
                points.append((run, float(x), float(y)))
        title = panel.title or f"{label(panel.y)} vs {label(panel.x)}"
        if not points:
            return f'<figcaption>{_e(title)}</figcaption><p class="wd-empty">no runs have both values</p>'
        fx = math.log10 if panel.log_x else float
        fy = math.log10 if panel.log_y else float
        xs, ys = [fx(x) for _, x, _ in points], [fy(y) for _, _, y in points]
        (x0, x1), (y0, y1) = _span(xs, panel.range_x, fx), _span(ys, panel.range_y, fy)
        w, h, m = 360, 220, 44
        dots = "".join(
            f'<circle class="wd-dot" cx="{m + (x - x0) / (x1 - x0) * (w - 2 * m):.1f}" '
            f'cy="{h - m - (y - y0) / (y1 - y0) * (h - 2 * m):.1f}" r="4">'
            f"<title>{_e(run_label(r))}: {_e(label(panel.x))}={_e(_number(px))}, "
            f"{_e(label(panel.y))}={_e(_number(py))}</title></circle>"
            for (r, px, py), x, y in zip(points, xs, ys, strict=False)
        )
        axes = (
            f'<line x1="{m}" y1="{h - m}" x2="{w - m}" y2="{h - m}" class="wd-axis"/>'
            f'<line x1="{m}" y1="{m}" x2="{m}" y2="{h - m}" class="wd-axis"/>'
            f'<text x="{w / 2}" y="{h - 6}" text-anchor="middle">{_e(label(panel.x))}</text>'
            f'<text x="10" y="{h / 2}" transform="rotate(-90 10 {h / 2})" text-anchor="middle">'
            f"{_e(label(panel.y))}</text>"
            # The ends of each axis, in the data's units (10**v on a log axis).
            f'<text x="{m}" y="{h - m + 12}" text-anchor="middle">{_e(_tick(x0, panel.log_x))}</text>'
            f'<text x="{w - m}" y="{h - m + 12}" text-anchor="middle">{_e(_tick(x1, panel.log_x))}</text>'
            f'<text x="{m - 4}" y="{h - m}" text-anchor="end">{_e(_tick(y0, panel.log_y))}</text>'
            f'<text x="{m - 4}" y="{m + 4}" text-anchor="end">{_e(_tick(y1, panel.log_y))}</text>'
        )
        svg = f'<svg class="wd-scatter" viewBox="0 0 {w} {h}" role="img">{axes}{dots}</svg>'
        return f"<figcaption>{_e(title)}</figcaption>{svg}"

    def parallel(self, panel: p.ParallelCoordinatesPlot, runs: list[Any]) -> str:
        title = panel.title or "Parallel coordinates"
        columns = panel.columns
        if not columns or not runs:
            return f'<figcaption>{_e(title)}</figcaption><p class="wd-empty">no columns or no runs</p>'
        w, h, m = max(360, 120 * (len(columns) - 1) + 80), 220, 30
        axes_x = [40 + i * (w - 80) / max(len(columns) - 1, 1) for i in range(len(columns))]
        scales = []
        for column in columns:
            raw = [run_value(r, column.metric) for r in runs]
            nums = [float(v) for v in raw if is_number(v) and (not column.log or v > 0)]
            cats = sorted({str(v) for v in raw if v is not None and not is_number(v)})
            scales.append((column, nums, cats))
        lines = []
        for run in runs:
            pts = []
            for (column, nums, cats), x in zip(scales, axes_x, strict=False):
                v = run_value(run, column.metric)
                pos = _position(v, column, nums, cats)
                if pos is None:
                    break
                pts.append(f"{x:.1f},{h - m - pos * (h - 2 * m):.1f}")
            if len(pts) == len(columns):
                lines.append(
                    f'<polyline class="wd-pc-line" points="{" ".join(pts)}">'
                    f"<title>{_e(run_label(run))}</title></polyline>"
                )
        axes = "".join(
            f'<line x1="{x:.1f}" y1="{m}" x2="{x:.1f}" y2="{h - m}" class="wd-axis"/>'
            f'<text x="{x:.1f}" y="{m - 12}" text-anchor="middle">{_e(c.display_name or label(c.metric))}</text>'
            + "".join(
                f'<text x="{x + 4:.1f}" y="{y + 3:.1f}">{_e(text)}</text>'
                for y, text in _axis_ends(c, nums, cats, (h - m, m))
            )
            for (c, nums, cats), x in zip(scales, axes_x, strict=False)
        )
        svg = (
            f'<svg class="wd-parallel" viewBox="0 0 {w} {h}" role="img" data-lines="{len(lines)}">'
            f"{axes}{''.join(lines)}</svg>"
        )
        return f"<figcaption>{_e(title)}</figcaption>{svg}"

    def comparer(self, panel: p.RunComparer, runs: list[Any]) -> str:
        runs = runs[:20]
        if not runs:
            return '<figcaption>Run comparer</figcaption><p class="wd-empty">no runs</p>'
        keys: list[tuple[str, str]] = []
        for source in ("config", "summary"):
            seen: dict[str, None] = {}
            for run in runs:
                data = run.config if source == "config" else run.summary_metrics
                seen.update((k, None) for k in _flat_keys(data) if not k.startswith("_"))
            keys += [(source, k) for k in seen]
        header = "".join(f"<th>{self.run_link(r)}</th>" for r in runs)
        rows = []
        for source, key in keys:
            cells = [run_value(r, f"{source}.{key}") for r in runs]
            if panel.diff_only and len({json.dumps(c, sort_keys=True, default=str) for c in cells}) <= 1:
                continue
            rows.append(
                f"<tr><th>{_e(source)}.{_e(key)}</th>" + "".join(f"<td>{_e(_cell(c))}</td>" for c in cells) + "</tr>"
            )
        return (
            f'<figcaption>Run comparer</figcaption><div class="wd-table-wrap"><table class="wd-comparer">'
            f"<thead><tr><th></th>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
        )

    def media(self, panel: p.MediaBrowser, runs: list[Any]) -> str:
        title = panel.title or ", ".join(panel.media_keys) or "Media"
        items = []
        gallery = panel.mode == "gallery" or panel.gallery_axis is not None
        for run in runs[:MEDIA_RUNS]:  # each run's history is read: a bounded number of runs
            for key in panel.media_keys:
                found = [
                    (row.get("_step"), row[key]) for row in self.history.rows(run) if isinstance(row.get(key), dict)
                ]
                items += [(run, key, step, value) for step, value in (found if gallery else found[-1:])]
        items = items[:MAX_MEDIA]
        if not items:
            empty = f'<p class="wd-empty">no images logged under {_e(panel.media_keys)}</p>'
            return f"<figcaption>{_e(title)}</figcaption>{empty}"
        cells = []
        for run, key, step, value in items:
            uri = self.image_uri(value)
            img = f'<img src="{uri}" alt="{_e(key)}">' if uri else '<span class="wd-missing">missing</span>'
            caption = value.get("caption") or f"{run_label(run)} · {key} · step {step}"
            cells.append(f"<figure>{img}<figcaption>{_e(caption)}</figcaption></figure>")
        columns = panel.num_columns or min(len(cells), 4)
        return (
            f'<figcaption>{_e(title)}</figcaption><div class="wd-media" '
            f'style="grid-template-columns:repeat({columns},1fr)">{"".join(cells)}</div>'
        )

    def image_uri(self, value: dict[str, Any]) -> str | None:
        """A data URI of a logged image (W&B's ``image-file`` value); None when its blob is missing or broken."""
        from wandb_dagster.storage.hashing import b64_to_hex

        digest, path = value.get("digest"), value.get("path")
        if value.get("_type") != "image-file" or not isinstance(digest, str) or not isinstance(path, str):
            return None
        kind = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif"}.get(
            path.rpartition(".")[2].lower()
        )
        if kind is None:
            return None
        try:
            with self.api._ws.blobs.open(b64_to_hex(digest)) as f:
                data = f.read(MAX_MEDIA_BYTES + 1)
        except (OSError, ValueError):
            return None
        if len(data) > MAX_MEDIA_BYTES:
            return None
        return f"data:{kind};base64,{base64.b64encode(data).decode()}"


def chart_panel(report: Any, chart_id: str) -> tuple[b.PanelGrid, p.LinePlot]:
    """The panel grid and line plot that ``chart_id`` (``chart-<grid>-<panel>``, from :func:`render`) names; a
    ValueError when there is none."""
    match = re.fullmatch(r"chart-(\d{1,6})-(\d{1,6})", chart_id)
    grids = report.sections
    if match is None or int(match[1]) >= len(grids) or int(match[2]) >= len(grids[int(match[1])].panels):
        raise ValueError(f"the report has no chart {chart_id!r}")
    grid = grids[int(match[1])]
    panel = grid.panels[int(match[2])]
    if not isinstance(panel, p.LinePlot):
        raise ValueError(f"{chart_id!r} is a {type(panel).__name__}, not a line plot")
    return grid, panel


def zoomed_chart(report: Any, api: Any, chart_id: str, lo: float | None, hi: float | None) -> dict[str, Any]:
    """The spec of chart ``chart_id`` with only the points of x in [lo, hi], downsampled again (so zooming in
    shows the finer data, as W&B's charts do)."""
    grid, panel = chart_panel(report, chart_id)
    runsets = [(runset, runset_runs(api, runset, report.entity, report.project)) for runset in grid.runsets]
    return line_spec(panel, runsets, History(x_range=(lo, hi)))


def _position(value: Any, column: Any, nums: list[float], cats: list[str]) -> float | None:
    if is_number(value) and nums:
        v = math.log10(value) if column.log and value > 0 else float(value)
        lo, hi = (math.log10(min(nums)), math.log10(max(nums))) if column.log else (min(nums), max(nums))
        pos = 0.5 if hi == lo else (v - lo) / (hi - lo)
    elif value is not None and str(value) in cats:
        pos = 0.5 if len(cats) == 1 else cats.index(str(value)) / (len(cats) - 1)
    else:
        return None
    return 1 - pos if column.inverted else pos


def _tick(value: float, log: bool | None) -> str:
    return _number(10**value if log else value)


def _axis_ends(column: Any, nums: list[float], cats: list[str], ends: tuple[float, float]) -> list[tuple[float, str]]:
    """(y, text) of the bottom and top values of a parallel coordinates axis (inverted: swapped)."""
    if nums:
        low, high = _number(min(nums)), _number(max(nums))
    elif cats:
        low, high = cats[0], cats[-1]
    else:
        return []
    if column.inverted:
        low, high = high, low
    return [(ends[0], low), (ends[1], high)] if low != high else [(ends[0], low)]


def _span(vals: list[float], given: tuple[float | None, float | None], f: Any) -> tuple[float, float]:
    lo = f(given[0]) if given[0] is not None else min(vals)
    hi = f(given[1]) if given[1] is not None else max(vals)
    if hi <= lo:
        lo, hi = lo - 1, hi + 1
    return lo, hi


def _number(value: float) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _flat_keys(data: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys of ``data``'s leaves (a nested config shows one row per value, as W&B's comparer does)."""
    keys: list[str] = []
    for key, value in data.items():
        if isinstance(value, dict) and value and not (set(value) <= {"value", "desc"} and "value" in value):
            keys += _flat_keys(value, f"{prefix}{key}.")
        else:
            keys.append(f"{prefix}{key}")
    return keys


def _cell(value: Any, limit: int = 60) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return _number(value)
    text = json.dumps(value, default=str) if isinstance(value, (dict, list)) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------- pages

_SCRIPT_ESCAPES = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029"))


def data_script(data: dict[str, Any]) -> str:
    """The data as a JSON <script>. ``<``, ``>`` and ``&`` are written as JSON escapes (as Jinja's ``tojson``):
    no value can close the element, nor put the HTML parser in its script-escaped states with ``<!--``, which
    would make the element swallow the page's scripts."""
    text = json.dumps(data, allow_nan=False, separators=(",", ":"))
    for char, escaped in _SCRIPT_ESCAPES:
        text = text.replace(char, escaped)
    return f'<script type="application/json" id="wd-report-data">{text}</script>'


def _static(*parts: str) -> str:
    return resources.files("wandb_dagster").joinpath("static", *parts).read_text(encoding="utf-8")


def standalone_html(report: Any, api: Any) -> str:
    """One HTML document holding the report, its data, uPlot, static/charts.js and static/reports.js (which
    draws the line plots): it needs no network."""
    rendered = render(report, api)
    # app.css too: the page looks as the report does in the app (charts.js's titles and legends use its classes).
    css = "\n".join(_static(*name) for name in (("vendor", "uplot", "uPlot.min.css"), ("app.css",), ("reports.css",)))
    js = _static("vendor", "uplot", "uPlot.iife.min.js") + "\n" + _static("charts.js")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(rendered.title)}</title><style>{css}</style></head><body>"
        f"{rendered.body}{data_script(rendered.data)}<script>{_inline_script(js)}</script>"
        f"<script>{_inline_script(_static('reports.js'))}</script></body></html>\n"
    )


def _inline_script(js: str) -> str:
    # A literal "</script" inside the inlined code would end the element early.
    return js.replace("</script", "<\\/script")
