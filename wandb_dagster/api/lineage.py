"""The lineage graph of an artifact version: producer runs -> version -> consumer runs, several hops each way.

W&B's lineage view walks the same edges as ``artifact.logged_by()`` / ``used_by()`` and
``run.used_artifacts()`` / ``logged_artifacts()``; this walks them a frontier at a time (one query per hop
and direction, whatever the width), keeps at most ``fanout`` neighbours per node and ``max_nodes`` nodes
in all, and says how many it left out, so a dataset used by 10,000 runs draws in the time one with ten
does. Example::

    >>> from wandb_dagster.api.lineage import lineage_graph
    >>> graph = lineage_graph(api.artifact("my-project/model:v3"), hops=4)        # doctest: +SKIP
    >>> [n.name for n in graph.nodes if n.kind == "run" and n.depth == -1]       # the producers  # doctest: +SKIP
    >>> [n.name for n in graph.nodes if n.kind == "run" and n.depth == 1]        # the consumers  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wandb_dagster.api.objects import Artifact
    from wandb_dagster.store import Store

DEFAULT_HOPS = 4
DEFAULT_FANOUT = 20
DEFAULT_MAX_NODES = 200
MAX_HOPS = 20


@dataclasses.dataclass(frozen=True)
class LineageNode:
    """A run or an artifact version in a lineage graph.

    ``key`` is ``"run:<pk>"`` or ``"artifact:<pk>"``; ``depth`` the number of hops from the start version
    (0), negative upstream (towards producers), positive downstream (towards consumers). ``name`` is what
    to show: the run's display name (else its id), or ``collection:vN`` (``collection:deleted`` for a
    deleted version). ``hidden`` counts the neighbours further from the start that the fan-out or node
    limit left out.
    """

    key: str
    kind: str  # "run" | "artifact"
    depth: int
    entity: str
    project: str
    name: str
    state: str
    run_id: str | None = None  # runs
    job_type: str | None = None  # runs
    collection: str | None = None  # versions: the collection it was logged to
    type: str | None = None  # versions: the artifact type
    version: str | None = None  # versions: "vN" in that collection (None once deleted)
    artifact_id: str | None = None  # versions: the public id
    hidden: int = 0


@dataclasses.dataclass(frozen=True)
class LineageGraph:
    """Nodes (start first, then by hop) and edges in the direction data flows: ``(run, version)`` when the
    run logged the version, ``(version, run)`` when the run used it. ``truncated``: ``max_nodes`` was
    reached, so some nodes within ``hops`` are missing."""

    start: str
    nodes: list[LineageNode]
    edges: list[tuple[str, str]]
    hops: int
    truncated: bool

    def node(self, key: str) -> LineageNode:
        for found in self.nodes:
            if found.key == key:
                return found
        raise KeyError(f"no node {key!r} in this lineage graph; its keys are 'run:<pk>' and 'artifact:<pk>'")

    def at(self, depth: int) -> list[LineageNode]:
        """The nodes ``depth`` hops from the start (-1: the producer runs, 1: the consumer runs)."""
        return [n for n in self.nodes if n.depth == depth]


def lineage_graph(
    artifact: Artifact,
    *,
    hops: int = DEFAULT_HOPS,
    fanout: int = DEFAULT_FANOUT,
    max_nodes: int = DEFAULT_MAX_NODES,
) -> LineageGraph:
    """The lineage of a logged ``artifact`` up to ``hops`` edges away in each direction.

    ``fanout``: at most this many neighbours of each node (the oldest); ``max_nodes``: at most this many
    nodes in all. What is left out is counted in each node's ``hidden`` and in ``truncated``.
    """
    for what, value, low, high in (("hops", hops, 0, MAX_HOPS), ("fanout", fanout, 1, 10_000),
                                   ("max_nodes", max_nodes, 1, 100_000)):  # fmt: skip
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ValueError(f"{what}={value!r} must be an integer from {low} to {high}")
    record = artifact._require_logged("lineage_graph")
    ws = artifact.workspace
    assert ws is not None  # a logged version always has its workspace
    return _Walk(ws.store, fanout, max_nodes).run(record.pk, hops)


class _Walk:
    """One breadth-first walk: upstream first (it is usually the narrow side), then downstream."""

    def __init__(self, store: Store, fanout: int, max_nodes: int) -> None:
        self.store, self.fanout, self.max_nodes = store, fanout, max_nodes
        self.depth: dict[tuple[str, int], int] = {}
        self.hidden: dict[tuple[str, int], int] = {}
        self.edges: list[tuple[tuple[str, int], tuple[str, int]]] = []
        self.seen_edges: set[tuple[tuple[str, int], tuple[str, int]]] = set()
        self.truncated = False

    def run(self, start_pk: int, hops: int) -> LineageGraph:
        start = ("artifact", start_pk)
        self.depth[start] = 0
        # Upstream: version <-(output)- run <-(input)- version ...; downstream: version -(input)-> run ...
        for sign, at_version, at_run in ((-1, "output", "input"), (1, "input", "output")):
            frontier = [start]
            for hop in range(1, hops + 1):
                frontier = self._step(frontier, sign * hop, at_version if hop % 2 else at_run, sign)
                if not frontier:
                    break
        return self._graph(start, hops)

    def _step(self, frontier: list[tuple[str, int]], depth: int, direction: str, sign: int) -> list[tuple[str, int]]:
        kind = frontier[0][0]
        found, totals = self.store.lineage_edges(
            of="version" if kind == "artifact" else "run", pks=[pk for _, pk in frontier], direction=direction,
            limit=self.fanout,
        )
        shown: dict[int, int] = {}
        reached: list[tuple[str, int]] = []
        for edge in found:
            here, there = (("artifact", edge.version_pk), ("run", edge.run_pk))[:: 1 if kind == "artifact" else -1]
            if there not in self.depth:
                if len(self.depth) >= self.max_nodes:
                    self.truncated = True
                    continue
                self.depth[there] = depth
                reached.append(there)
            shown[here[1]] = shown.get(here[1], 0) + 1
            # Edges point the way data flows: the run logged the version (output), the run used it (input).
            pair = (("run", edge.run_pk), ("artifact", edge.version_pk))
            flow = pair if direction == "output" else (pair[1], pair[0])
            if flow not in self.seen_edges:
                self.seen_edges.add(flow)
                self.edges.append(flow)
        for pk, total in totals.items():
            if total > shown.get(pk, 0):
                self.hidden[(kind, pk)] = self.hidden.get((kind, pk), 0) + total - shown.get(pk, 0)
        return reached

    def _graph(self, start: tuple[str, int], hops: int) -> LineageGraph:
        runs, versions = self.store.lineage_nodes(
            run_pks=[pk for kind, pk in self.depth if kind == "run"],
            version_pks=[pk for kind, pk in self.depth if kind == "artifact"],
        )
        nodes: dict[tuple[str, int], LineageNode] = {}
        for r in runs:
            key = ("run", r.pk)
            nodes[key] = LineageNode(
                key=f"run:{r.pk}", kind="run", depth=self.depth[key], entity=r.entity, project=r.project,
                name=r.display_name or r.run_id, state=r.state, run_id=r.run_id, job_type=r.job_type,
                hidden=self.hidden.get(key, 0),
            )
        for v in versions:
            key = ("artifact", v.pk)
            version = None if v.index is None else f"v{v.index}"
            nodes[key] = LineageNode(
                key=f"artifact:{v.pk}", kind="artifact", depth=self.depth[key], entity=v.entity, project=v.project,
                name=f"{v.collection}:{version or 'deleted'}", state=v.state, collection=v.collection, type=v.type,
                version=version, artifact_id=v.public_id, hidden=self.hidden.get(key, 0),
            )
        # A node deleted between the walk and this read is left out, with its edges.
        ordered = [nodes[k] for k in sorted(nodes, key=lambda k: (abs(self.depth[k]), self.depth[k], k))]
        edges = [(f"{a[0]}:{a[1]}", f"{b[0]}:{b[1]}") for a, b in self.edges if a in nodes and b in nodes]
        return LineageGraph(start=f"{start[0]}:{start[1]}", nodes=ordered, edges=edges, hops=hops,
                            truncated=self.truncated)
