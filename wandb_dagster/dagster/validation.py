"""Check every ``metadata={"wandb": ...}`` of a code location when its definitions load.

Example::

    import dagster as dg
    from wandb_dagster.dagster import validate_definitions

    @dg.asset(metadata={"wandb": {"serialiser": "joblib"}})      # typo: fails when the module loads
    def model() -> dict: ...

    defs = validate_definitions(dg.Definitions(assets=[model], resources=...))

The IO manager reads the options only when an output is stored or an input loaded, which is after the
asset's body has run. ``validate_definitions`` reads them all up front (assets' outputs, their inputs'
``AssetIn`` metadata, and the ops of jobs), so a misspelled key or a bad value fails the module's import:
``dagster definitions validate``, ``dagster dev`` and the code server report it, naming the asset (or op),
the bad key and the valid ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dagster as dg

from wandb_dagster.dagster.options import METADATA_KEY, InputOptions, OutputOptions, parse_options


def _ops(node_def: Any) -> Iterator[Any]:
    """The op definitions of ``node_def`` (itself, or the ops of a graph, recursively)."""
    if isinstance(node_def, dg.GraphDefinition):
        for child in node_def.node_defs:
            yield from _ops(child)
    else:
        yield node_def


def _check(raw: Any, model: type, where: str, problems: list[str]) -> None:
    if raw is None:
        return
    try:
        parse_options(raw, model, where)
    except ValueError as exc:
        problems.append(str(exc))


def _check_asset(assets_def: Any, problems: list[str]) -> set[str]:
    """Problems of one AssetsDefinition's outputs and inputs; returns the names of the ops it covers."""
    for spec in assets_def.specs:
        _check(spec.metadata.get(METADATA_KEY), OutputOptions, f"asset {spec.key.to_user_string()!r}", problems)
    if not assets_def.is_executable:  # an external asset (AssetSpec, SourceAsset): nothing runs, nothing loads
        return set()
    node_def = assets_def.node_def
    downstream = ", ".join(repr(k.to_user_string()) for k in sorted(assets_def.keys, key=lambda k: k.path))
    upstream_of = {name: key.to_user_string() for name, key in assets_def.keys_by_input_name.items()}
    names = set()
    for op in _ops(node_def):
        names.add(op.name)
        for input_def in op.input_defs:
            upstream = upstream_of.get(input_def.name)
            reads = f" (reads asset {upstream!r})" if upstream else ""
            where = f"input {input_def.name!r} of asset {downstream}{reads}"
            _check(input_def.metadata.get(METADATA_KEY), InputOptions, where, problems)
    return names


def validate_definitions(defs: dg.Definitions) -> dg.Definitions:
    """Validate the W&B options of every asset, asset input and job op in ``defs``; return ``defs``.

    Raises ValueError listing every problem (each names the asset or op, the bad key and the valid keys or
    the closest one), so a typo fails when the code location loads rather than after a step has computed.

    >>> defs = validate_definitions(dg.Definitions(assets=[features, model], resources=resources))  # doctest: +SKIP
    """
    problems: list[str] = []
    checked_ops: set[str] = set()
    for assets_def in defs.resolve_asset_graph().assets_defs:
        checked_ops |= _check_asset(assets_def, problems)
    for job in defs.resolve_all_job_defs():
        for op in _ops(job.graph):
            if op.name in checked_ops:  # an asset's op (in an asset job), checked above under the asset's name
                continue
            checked_ops.add(op.name)
            for output_def in op.output_defs:
                _check(output_def.metadata.get(METADATA_KEY), OutputOptions,
                       f"output {output_def.name!r} of op {op.name!r}", problems)
            for input_def in op.input_defs:
                _check(input_def.metadata.get(METADATA_KEY), InputOptions,
                       f"input {input_def.name!r} of op {op.name!r}", problems)
    if problems:
        count = f"{len(problems)} problem" + ("s" if len(problems) > 1 else "")
        raise ValueError(
            f"wandb_dagster: invalid metadata[{METADATA_KEY!r}] options ({count}):\n"
            + "\n".join(f"  - {p}" for p in problems)
        )
    return defs
