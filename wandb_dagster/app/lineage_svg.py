"""A lineage graph drawn as SVG on the server: columns by hop, data flowing left to right, each node a link.

No JavaScript library: the page stays readable with scripts off, and the browser draws it at once. Every
name is escaped (names come from users).

    >>> from wandb_dagster.app.lineage_svg import lineage_svg
    >>> svg = lineage_svg(graph, href=lambda node: f"/x/{node.key}")     # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable

from markupsafe import Markup, escape

from wandb_dagster.api.lineage import LineageGraph, LineageNode

NODE_W, NODE_H = 200, 46
GAP_X, GAP_Y = 70, 16
PAD = 12
_MAX_LABEL = 26


def _short(text: str, limit: int = _MAX_LABEL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def lineage_svg(graph: LineageGraph, href: Callable[[LineageNode], str | None]) -> Markup:
    """``graph`` as an ``<svg>`` element; ``href(node)`` is the page a node links to (None: no link)."""
    depths = sorted({n.depth for n in graph.nodes})
    column = {d: i for i, d in enumerate(depths)}
    counts: dict[int, int] = {}
    for node in graph.nodes:
        counts[node.depth] = counts.get(node.depth, 0) + 1
    tallest = max(counts.values(), default=1)
    rows: dict[int, int] = {}
    place: dict[str, tuple[float, float]] = {}
    for node in graph.nodes:
        row = rows.get(node.depth, 0)
        rows[node.depth] = row + 1
        # Each column centred on the tallest, so a chain of single nodes stays on one line.
        offset = (tallest - counts[node.depth]) * (NODE_H + GAP_Y) / 2
        place[node.key] = (PAD + column[node.depth] * (NODE_W + GAP_X), PAD + offset + row * (NODE_H + GAP_Y))
    width = PAD * 2 + len(depths) * NODE_W + max(len(depths) - 1, 0) * GAP_X
    height = PAD * 2 + tallest * (NODE_H + GAP_Y) - GAP_Y
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="lineage" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="lineage graph">',
        '<defs><marker id="lineage-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#8a94a6"/></marker></defs>',
    ]
    for source, target in graph.edges:
        (x1, y1), (x2, y2) = place[source], place[target]
        ax, ay, bx, by = x1 + NODE_W, y1 + NODE_H / 2, x2, y2 + NODE_H / 2
        if bx <= ax:  # an edge back to an earlier column: leave from the left, enter from the right
            ax, bx = x1, x2 + NODE_W
        bend = max(abs(bx - ax) / 2, 30)
        c1 = ax + bend if ax == x1 + NODE_W else ax - bend
        c2 = bx - bend if bx == x2 else bx + bend
        parts.append(
            f'<path class="lineage-edge" data-from="{source}" data-to="{target}" d="M{ax},{ay} C{c1},{ay} '
            f'{c2},{by} {bx},{by}" fill="none" stroke="#8a94a6" stroke-width="1.5" marker-end="url(#lineage-arrow)"/>'
        )
    for node in graph.nodes:
        x, y = place[node.key]
        start = node.key == graph.start
        fill = "#fff4d6" if start else ("#e8f1ff" if node.kind == "run" else "#eef8ee")
        stroke = "#d4a000" if start else ("#2f6fd0" if node.kind == "run" else "#3c8c3c")
        radius = 14 if node.kind == "run" else 3
        kind_text = (node.job_type or "run") if node.kind == "run" else (node.type or "artifact")
        sub = f"{kind_text} · {node.state.lower()}"
        if node.hidden:
            sub += f" · +{node.hidden} more"
        title = node.name if node.kind == "artifact" else f"{node.name} ({node.run_id})"
        group = (
            f'<g class="lineage-node {node.kind}{" start" if start else ""}" data-key="{node.key}" '
            f'data-kind="{node.kind}" data-name="{escape(node.name)}" data-depth="{node.depth}"'
            + (f' data-run-id="{escape(node.run_id)}"' if node.run_id else "")
            + f'><title>{escape(title)}</title>'
            f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="{radius}" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="{2 if start else 1.2}"/>'
            f'<text x="{x + 10}" y="{y + 19}" font-size="13" font-weight="600" fill="#1a1d24">'
            f"{escape(_short(node.name))}</text>"
            f'<text x="{x + 10}" y="{y + 36}" font-size="11" fill="#555">{escape(_short(sub, 32))}</text></g>'
        )
        link = None if start else href(node)
        parts.append(f'<a href="{escape(link)}">{group}</a>' if link else group)
    parts.append("</svg>")
    return Markup("".join(parts))
