"""``wandb-dagster verify`` against the floor (issue 14): checking a workspace costs reading and hashing its
blobs, so verify over ``--files`` files (10,000) is compared with MD5 over the same bytes (the blob files,
read with the same chunk size) in the same run. Goal: at most 1.2x. Not pass/fail.

    .venv/bin/python bench/bench_verify.py                 # 10,000 x 4 KiB, SQLite, local folder
    .venv/bin/python bench/bench_verify.py --files 2000 --size 65536 --rounds 5

Rounds alternate (md5, verify) so that the page cache treats both alike; both run warm (the tree was just
written), which is the harder case for verify: its fixed costs (the manifests, the listing) are not hidden
behind disk reads. The median of each is printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=4096, help="bytes per file")
    parser.add_argument("--versions", type=int, default=10, help="the files are spread over this many versions")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-verify-"))
    os.environ.update({
        "WANDB_DAGSTER_DIR": str(tmp / "ws"), "WANDB_DAGSTER_CACHE_DIR": str(tmp / "cache"), "WANDB_ENTITY": "bench",
    })  # fmt: skip
    for var in ("WANDB_DAGSTER_DATABASE_URL", "WANDB_DAGSTER_STORAGE"):
        os.environ.pop(var, None)
    import wandb_dagster as wandb
    from wandb_dagster.sdk.verify import verify_workspace
    from wandb_dagster.sdk.workspace import Workspace
    from wandb_dagster.storage.hashing import hash_file

    try:
        per = args.files // args.versions
        with wandb.init(project="verify") as run:
            for v in range(args.versions):
                tree = tmp / f"tree{v}"
                tree.mkdir()
                for i in range(per):
                    (tree / f"f{i:05d}.bin").write_bytes(os.urandom(args.size))
                artifact = wandb.Artifact(f"ds{v}", type="dataset")
                artifact.add_dir(str(tree))
                run.log_artifact(artifact)
                shutil.rmtree(tree)
        ws = Workspace.default()
        blob_paths = [ws.blobs.blob_path(h) for h in ws.blobs.iter_hexes()]
        total = per * args.versions
        print(f"{total} files x {args.size} B in {args.versions} versions ({len(blob_paths)} blobs)")

        md5_times, verify_times = [], []
        for _ in range(args.rounds):
            start = time.perf_counter()
            for path in blob_paths:
                hash_file(path)
            md5_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            report = verify_workspace(ws)
            verify_times.append(time.perf_counter() - start)
            assert report.ok and report.blobs == total, report.problems[:3]
        md5_s, verify_s = statistics.median(md5_times), statistics.median(verify_times)
        print(f"md5 over the blob files: {md5_s:.3f} s (median of {args.rounds})")
        print(f"verify_workspace:        {verify_s:.3f} s -> {verify_s / md5_s:.2f}x md5 (goal <= 1.2x)")
    finally:
        Workspace.close_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
