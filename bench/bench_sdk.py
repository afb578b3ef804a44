"""SDK benchmarks (issue: foundation). Prints ratios measured in the same run; not a pass/fail test.

    .venv/bin/python bench/bench_sdk.py            # all three, medians of 3
    .venv/bin/python bench/bench_sdk.py --skip-wandb --repeat 5

1. 10,000 files of 1 KiB: ``init`` + ``add_dir`` + ``log_artifact`` + ``finish`` on a fresh (created, empty)
   workspace, against ``cp -r`` of the same tree (and ``cp -r && sync``, since we make blobs durable before a
   version becomes visible) and against wandb 0.31 offline mode (init + add_dir + log_artifact + finish)
   (default mutable policy), installed in its own virtualenv ``bench/.venvs/wandb`` (created on first use;
   ``--skip-wandb`` to leave it out).
2. Re-logging the same unchanged tree (stat cache: no file is read again).
3. One 1 GiB file: ``add_file`` + ``log_artifact`` against ``hashlib.md5`` alone over the same file, and the
   peak RSS of the logging process.

Each measurement runs in a fresh subprocess so that peak RSS and imports are its own.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WANDB_VENV = HERE / ".venvs" / "wandb"
WANDB_VERSION = "0.31.0"

_CHILD_PRELUDE = """
import json, os, resource, sys, time, hashlib
"""


def child(code: str, env: dict | None = None, python: str = sys.executable) -> dict:
    """Run ``code`` in a fresh interpreter; it must print one JSON object as its last line."""
    full_env = dict(os.environ, **(env or {}))
    out = subprocess.run(
        [python, "-c", _CHILD_PRELUDE + textwrap.dedent(code)],
        check=True, capture_output=True, text=True, env=full_env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def make_tree(root: Path, count: int, size: int) -> Path:
    root.mkdir(parents=True)
    for i in range(count):
        sub = root / f"d{i // 500:03d}"
        sub.mkdir(exist_ok=True)
        (sub / f"f{i:05d}.bin").write_bytes(os.urandom(size))
    return root


def ours_env(work: Path, tag: str) -> dict:
    return {
        "WANDB_DAGSTER_DIR": str(work / f"ws-{tag}"),
        "WANDB_DAGSTER_CACHE_DIR": str(work / f"cache-{tag}"),
        "WANDB_DAGSTER_DATABASE_URL": "",
        "WANDB_DAGSTER_STORAGE": "",
    }


LOG_TREE = """
import wandb_dagster as wandb
wandb.Api()  # create the (fresh, empty) workspace outside the timing: a one-time cost, not logging's
tree, times = {tree!r}, []
for attempt in range({logs}):
    t0 = time.perf_counter()
    with wandb.init(project="bench") as run:
        art = wandb.Artifact("tree", type="dataset")
        art.add_dir(tree)
        run.log_artifact(art)
    times.append(time.perf_counter() - t0)
rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"times": times, "version": art.version, "rss_mib": rss_mib}}))
"""

WANDB_LOG_TREE = """
os.environ["WANDB_MODE"] = "offline"
os.environ["WANDB_SILENT"] = "true"
os.environ["WANDB_DIR"] = {wandb_dir!r}
os.environ["WANDB_CACHE_DIR"] = {wandb_dir!r} + "/cache"
os.environ["WANDB_DATA_DIR"] = {wandb_dir!r} + "/data"
import wandb
t0 = time.perf_counter()
run = wandb.init(project="bench")
art = wandb.Artifact("tree", type="dataset")
art.add_dir({tree!r})
run.log_artifact(art)
run.finish()
print(json.dumps({{"seconds": time.perf_counter() - t0}}))
"""

LOG_FILE = """
import wandb_dagster as wandb
wandb.Api()  # create the (fresh, empty) workspace outside the timing
t0 = time.perf_counter()
with wandb.init(project="bench") as run:
    art = wandb.Artifact("big", type="model")
    art.add_file({path!r})
    run.log_artifact(art)
seconds = time.perf_counter() - t0
print(json.dumps({{"seconds": seconds, "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""

MD5_FILE = """
t0 = time.perf_counter()
md5 = hashlib.md5()
with open({path!r}, "rb", buffering=0) as f:
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    while n := f.readinto(buf):
        md5.update(view[:n])
print(json.dumps({{"seconds": time.perf_counter() - t0}}))
"""


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t0


def ensure_wandb() -> str | None:
    python = WANDB_VENV / "bin" / "python"
    if not python.exists():
        print(f"installing wandb=={WANDB_VERSION} into {WANDB_VENV} (once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(WANDB_VENV)], check=True)
        done = subprocess.run([str(python), "-m", "pip", "install", "-q", f"wandb=={WANDB_VERSION}"])
        if done.returncode != 0:
            return None
    return str(python)


def bench_small_files(work: Path, repeat: int, with_wandb: bool, count: int) -> dict:
    tree = make_tree(work / "tree", count, 1024)
    subprocess.run(["sync"], check=True)
    cp, cp_sync, ours, relog, theirs = [], [], [], [], []
    for i in range(repeat):
        dest = work / f"cp-{i}"
        cp.append(timed(["cp", "-r", str(tree), str(dest)]))
        subprocess.run(["sync"], check=True)
        # We make blobs durable (one syncfs) before a version becomes visible; `cp -r && sync` is the
        # like-for-like floor for that.
        cp_sync.append(timed(["sh", "-c", f"cp -r '{tree}' '{dest}-s' && sync"]))
        result = child(LOG_TREE.format(tree=str(tree), logs=2), env=ours_env(work, f"small-{i}"))
        ours.append(result["times"][0])
        relog.append(result["times"][1])
        assert result["version"] == "v0", result
        subprocess.run(["sync"], check=True)
    if with_wandb and (python := ensure_wandb()):
        for i in range(repeat):
            wdir = work / f"wandb-{i}"
            wdir.mkdir()
            theirs.append(child(WANDB_LOG_TREE.format(tree=str(tree), wandb_dir=str(wdir)), python=python)["seconds"])
            subprocess.run(["sync"], check=True)
    out = {
        "files": count,
        "cp_r_s": statistics.median(cp),
        "cp_r_sync_s": statistics.median(cp_sync),
        "ours_s": statistics.median(ours),
        "relog_s": statistics.median(relog),
    }
    if theirs:
        out["wandb_offline_s"] = statistics.median(theirs)
    return out


def bench_large_file(work: Path, repeat: int, size_mib: int) -> dict:
    path = work / "big.bin"
    with open(path, "wb") as f:
        chunk = os.urandom(1 << 20)
        for _ in range(size_mib):
            f.write(chunk)
    subprocess.run(["sync"], check=True)
    md5, cp_sync, ours, rss = [], [], [], []
    for i in range(repeat):
        cp_sync.append(timed(["sh", "-c", f"cp '{path}' '{work}/copy-{i}.bin' && sync"]))
        md5.append(child(MD5_FILE.format(path=str(path)))["seconds"])
        subprocess.run(["sync"], check=True)
        result = child(LOG_FILE.format(path=str(path)), env=ours_env(work, f"large-{i}"))
        ours.append(result["seconds"])
        rss.append(result["rss_mib"])
        subprocess.run(["sync"], check=True)
    return {
        "size_mib": size_mib,
        "md5_s": statistics.median(md5),
        "cp_sync_s": statistics.median(cp_sync),
        "ours_s": statistics.median(ours),
        "peak_rss_mib": max(rss),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--large-mib", type=int, default=1024)
    parser.add_argument("--skip-wandb", action="store_true")
    parser.add_argument("--only", choices=["small", "large"])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="wdbench-", dir=os.environ.get("BENCH_DIR") or None))
    try:
        if args.only != "large":
            s = bench_small_files(work, args.repeat, not args.skip_wandb, args.files)
            print(f"\n{s['files']:,} files of 1 KiB, add_dir + log_artifact (median of {args.repeat}):")
            print(f"  cp -r                 {s['cp_r_s']:8.3f} s")
            print(f"  cp -r && sync         {s['cp_r_sync_s']:8.3f} s")
            print(f"  wandb_dagster         {s['ours_s']:8.3f} s   {s['ours_s'] / s['cp_r_s']:5.2f}x cp -r   "
                  f"(goal <= 1.5x)   {s['ours_s'] / s['cp_r_sync_s']:5.2f}x cp -r && sync")
            if "wandb_offline_s" in s:
                ratio = s["wandb_offline_s"] / s["ours_s"]
                print(f"  wandb {WANDB_VERSION} offline   {s['wandb_offline_s']:8.3f} s   "
                      f"wandb/ours = {ratio:5.2f}x   (goal >= 5x)")
            print(f"  re-log unchanged      {s['relog_s']:8.3f} s   (goal <= 0.2 s, init and finish included)")
        if args.only != "small":
            big = bench_large_file(work, args.repeat, args.large_mib)
            print(f"\nOne {big['size_mib']} MiB file, add_file + log_artifact (median of {args.repeat}):")
            print(f"  hashlib.md5 alone     {big['md5_s']:8.3f} s")
            print(f"  cp && sync            {big['cp_sync_s']:8.3f} s")
            print(f"  wandb_dagster         {big['ours_s']:8.3f} s   {big['ours_s'] / big['md5_s']:5.2f}x md5   "
                  f"(goal <= 1.2x)   {big['ours_s'] / big['cp_sync_s']:5.2f}x cp && sync")
            print(f"  peak RSS              {big['peak_rss_mib']:8.1f} MiB   (goal < 150 MiB)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
