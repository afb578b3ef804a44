"""Download benchmark (issue 17): a 10,000-file artifact, against ``cp -r`` of the same tree, in the same run.
Not pass/fail.

    .venv/bin/python bench/bench_download.py                # 10,000 x 1 KiB, median of 3
    .venv/bin/python bench/bench_download.py --repeat 5 --files 2000

The artifact is logged once into a fresh workspace (not timed). Each round then runs in a fresh subprocess
with a fresh, empty download cache (and stat cache), ``Api()`` created before the clock starts, and times:

1. cold: ``api.artifact(name).download(root1)``: every blob is read from the blob store, verified while it
   is written into the cache, and placed into ``root1`` (goal: at most 1.5x ``cp -r`` of the tree);
2. warm cache, fresh root: ``download(root2)`` in the same process: every file comes from a verified cache
   entry (goal: at most 0.3 s);
3. already there: ``download(root1)`` again: the files in place are vouched for by the stat cache, which
   recorded them when they were verified (goal: at most 0.2 s);

and checks afterwards that every file of both roots has the logged content.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_sdk import child, make_tree, ours_env, timed  # noqa: E402

LOG = """
import wandb_dagster as wandb
with wandb.init(project="bench") as run:
    art = wandb.Artifact("tree", type="dataset")
    art.add_dir({tree!r})
    run.log_artifact(art)
print(json.dumps({{"name": art.qualified_name}}))
"""

DOWNLOAD = """
import wandb_dagster as wandb
api = wandb.Api()  # opens the workspace: not a download's cost
times = []
for root in ({root1!r}, {root2!r}, {root1!r}):
    t0 = time.perf_counter()
    api.artifact({name!r}).download(root)
    times.append(time.perf_counter() - t0)
print(json.dumps({{"times": times}}))
"""


def same_tree(a: Path, b: Path) -> bool:
    for dirpath, _, files in os.walk(a):
        rel = os.path.relpath(dirpath, a)
        for f in files:
            if not filecmp.cmp(os.path.join(dirpath, f), b / rel / f, shallow=False):
                return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument(
        "--hardlinks", action="store_true",
        help="WANDB_DAGSTER_DOWNLOAD_HARDLINKS=1: files placed from the cache are read-only hard links (opt-in)",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="wdbench-dl-", dir=os.environ.get("BENCH_DIR") or None))
    try:
        tree = make_tree(work / "tree", args.files, args.size)
        env = ours_env(work, "dl")
        if args.hardlinks:
            env["WANDB_DAGSTER_DOWNLOAD_HARDLINKS"] = "1"
        name = child(LOG.format(tree=str(tree)), env=env)["name"]
        subprocess.run(["sync"], check=True)
        cp, cold, warm, there = [], [], [], []
        for i in range(args.repeat):
            cp.append(timed(["cp", "-r", str(tree), str(work / f"cp-{i}")]))
            round_env = dict(env, WANDB_DAGSTER_CACHE_DIR=str(work / f"cache-{i}"))  # cold: an empty cache
            root1, root2 = work / f"dl-{i}-a", work / f"dl-{i}-b"
            times = child(DOWNLOAD.format(name=name, root1=str(root1), root2=str(root2)), env=round_env)["times"]
            cold.append(times[0])
            warm.append(times[1])
            there.append(times[2])
            assert same_tree(tree, root1) and same_tree(tree, root2), "a downloaded file differs from the tree"
            subprocess.run(["sync"], check=True)
        c = statistics.median(cp)
        how = ", hard links from the cache" if args.hardlinks else ""
        print(f"\n{args.files:,} files of {args.size} B, Api().artifact(...).download(root){how} "
              f"(median of {args.repeat}):")
        print(f"  cp -r                          {c:8.3f} s")
        print(f"  cold (empty cache)             {statistics.median(cold):8.3f} s   "
              f"{statistics.median(cold) / c:5.2f}x cp -r   (goal <= 1.5x)")
        print(f"  warm cache, fresh root         {statistics.median(warm):8.3f} s   (goal <= 0.3 s)")
        print(f"  root already holds the files   {statistics.median(there):8.3f} s   (goal <= 0.2 s)")
        print(f"  rounds: cold {', '.join(f'{t:.3f}' for t in cold)}; warm {', '.join(f'{t:.3f}' for t in warm)}; "
              f"there {', '.join(f'{t:.3f}' for t in there)}; cp -r {', '.join(f'{t:.3f}' for t in cp)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
