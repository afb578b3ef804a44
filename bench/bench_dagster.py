"""Benchmark: 50 small assets in one Dagster run, WandbArtifactIOManager vs Dagster's FilesystemIOManager.

    .venv/bin/python bench/bench_dagster.py            # median of 3 alternating rounds
    .venv/bin/python bench/bench_dagster.py --rounds 5 --assets 50

The assets form chains (each loads its upstream and returns a small dict), so every step stores an output
and all but the chain heads load one. Both IO managers run in the same process, in process (Dagster's
in-process executor), on a fresh Dagster instance and a fresh workspace per measurement (created before the
clock starts). Goal (issue 5): at most 1.5x the FilesystemIOManager's wall time.
"""


import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

warnings.filterwarnings("ignore")

import dagster as dg  # noqa: E402

from wandb_dagster.dagster import WandbArtifactIOManager, WandbResource  # noqa: E402
from wandb_dagster.sdk.workspace import Workspace  # noqa: E402


def build_assets(count: int, chains: int = 5) -> list[dg.AssetsDefinition]:
    assets = []
    for i in range(count):
        upstream = f"a{i - chains}" if i >= chains else None

        if upstream is None:
            @dg.asset(name=f"a{i}")
            def head(context: dg.AssetExecutionContext) -> dict:
                return {"name": context.asset_key.path[-1], "values": list(range(32))}

            assets.append(head)
        else:
            @dg.asset(name=f"a{i}", ins={"up": dg.AssetIn(key=upstream)})
            def link(context: dg.AssetExecutionContext, up: dict) -> dict:
                return {"name": context.asset_key.path[-1], "values": [v + 1 for v in up["values"]]}

            assets.append(link)
    return assets


def measure(kind: str, assets: list, base: Path, instance_kind: str = "sqlite") -> float:
    work = Path(tempfile.mkdtemp(prefix=f"bench-{kind}-", dir=base))
    if kind == "filesystem":
        resources: dict[str, Any] = {"io_manager": dg.FilesystemIOManager(base_dir=str(work / "fs"))}
    else:
        wandb = WandbResource(
            database_url=f"sqlite:///{work / 'store.db'}", storage_root=str(work / "blobs"), project="bench"
        )
        wandb.api()  # create the workspace (schema, folders) before the clock starts
        resources = {"wandb": wandb, "io_manager": WandbArtifactIOManager(wandb=wandb, download_dir=str(work / "in"))}
    config = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    (work / "dagster").mkdir()
    make_instance = (
        dg.DagsterInstance.ephemeral
        if instance_kind == "ephemeral"
        else lambda: dg.instance_for_test(temp_dir=str(work / "dagster"))
    )
    with make_instance() as instance:
        start = time.perf_counter()
        result = dg.materialize(assets, resources=resources, instance=instance, run_config=config)
        elapsed = time.perf_counter() - start
    assert result.success
    Workspace.close_all()
    return elapsed


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assets", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--instance", choices=("sqlite", "ephemeral"), default="sqlite",
        help="Dagster instance: a SQLite one on disk (as `dagster dev`), or in memory (less Dagster overhead, "
        "so the IO managers' share of the time is larger)",
    )
    args = parser.parse_args(argv)
    assets = build_assets(args.assets)
    base = Path(tempfile.mkdtemp(prefix="bench-dagster-"))
    os.environ.setdefault("WANDB_DAGSTER_CACHE_DIR", str(base / "cache"))
    try:
        measure("filesystem", assets, base, args.instance)  # warm-up: imports, first-run caches
        measure("wandb", assets, base, args.instance)
        times: dict[str, list[float]] = {"filesystem": [], "wandb": []}
        for _ in range(args.rounds):
            for kind in ("filesystem", "wandb"):
                times[kind].append(measure(kind, assets, base, args.instance))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    fs, wb = statistics.median(times["filesystem"]), statistics.median(times["wandb"])
    print(
        f"{args.assets} small assets in one run, in-process executor, {args.instance} Dagster instance, "
        f"median of {args.rounds}"
    )
    print(f"  FilesystemIOManager     {fs:7.3f} s   (rounds: {', '.join(f'{t:.3f}' for t in times['filesystem'])})")
    print(f"  WandbArtifactIOManager  {wb:7.3f} s   (rounds: {', '.join(f'{t:.3f}' for t in times['wandb'])})")
    ratio = wb / fs
    print(f"  ratio {ratio:.2f}x  (goal <= 1.5x: {'met' if ratio <= 1.5 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
