"""Remote blob storage benchmark: a workspace whose storage root is on S3 (moto), against s3fs's own put/get.

    .venv/bin/python bench/bench_remote.py             # 1,000 x 1 KiB (3 runs), 256 MiB (2 runs), references
    .venv/bin/python bench/bench_remote.py --quick     # smaller sizes, one run each: a smoke test of the bench

The bench starts moto's ThreadedMotoServer itself, in a child process (so the server's Python does not share
the GIL with the client being measured), wrapped to count the requests it answers. For each measurement:

- many small files: wandb_dagster ``add_dir`` + ``log_artifact`` of 1,000 x 1 KiB files in a run of a fresh
  workspace (created, and the run started, before the clock starts) versus ``s3fs.put(dir, recursive=True)``;
  download of the logged version into a cold download cache versus ``s3fs.get(prefix, dir, recursive=True)``;
- one 256 MiB file: ``add_file`` + ``log_artifact`` versus ``s3fs.put_file``; download versus ``s3fs.get_file``;
- re-logging an unchanged ``s3://`` prefix reference of 1,000 objects: the requests the server answered.

Medians of the runs; every ratio is ours / s3fs in the same run. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

KEY, SECRET, REGION = "bench-key", "bench-secret", "us-east-1"


# ------------------------------------------------------------------------------------------- moto server


def _serve(port: int, ready: Any) -> None:
    """Child process: ThreadedMotoServer on 127.0.0.1:port, quiet, counting requests (GET /_bench/requests)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from moto.server import ThreadedMotoServer
    from werkzeug.serving import make_server

    counts: collections.Counter = collections.Counter()

    class Quiet(MotoRequestHandler):
        def log_request(self, code: object = "-", size: object = "-") -> None:
            pass

    class Server(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = DomainDispatcherApplication(create_backend_app)

            def counting(environ, start_response):
                path, query = environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")
                if path == "/_bench/requests":
                    body = json.dumps(counts).encode()
                    counts.clear()
                    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
                    return [body]
                method = environ["REQUEST_METHOD"]
                if method == "GET" and ("list-type=2" in query or path.rstrip("/").count("/") == 1):
                    kind = "LIST"  # ListObjectsV2, or V1 (a GET of the bucket itself)
                elif method == "GET" and ("versionId=" in query or path.count("/") >= 2):
                    kind = "GET object"
                else:
                    kind = method
                counts[kind] += 1
                return app(environ, start_response)

            self._server = make_server(self._ip_address, self._port, counting, True, request_handler=Quiet)
            self._server_ready_event.set()
            self._server.serve_forever()

    server = Server(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    ready.set()
    while True:
        time.sleep(3600)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _requests(endpoint: str) -> dict[str, int]:
    import requests

    return requests.get(f"{endpoint}/_bench/requests", timeout=30).json()


# ------------------------------------------------------------------------------------------- helpers


def _timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _tree_equal(a: Path, b: Path) -> bool:
    files_a = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file())
    return files_a == files_b and all((a / f).read_bytes() == (b / f).read_bytes() for f in files_a)


class Bench:
    def __init__(self, endpoint: str, work: Path) -> None:
        import s3fs

        self.endpoint = endpoint
        self.work = work
        client_kwargs = {"endpoint_url": endpoint, "region_name": REGION}
        self.options = {"key": KEY, "secret": SECRET, "client_kwargs": client_kwargs}
        self.fs = s3fs.S3FileSystem(skip_instance_cache=True, **self.options)
        self.bucket = "bench"
        # Not mkdir: it would send a location constraint that moto refuses for us-east-1.
        self.fs.call_s3("create_bucket", Bucket=self.bucket)
        self.counter = 0

    def _settings(self, tag: str, cache: str) -> dict[str, Any]:
        return {
            "database_url": f"sqlite:///{self.work / 'db' / tag / 'store.db'}",
            "create": True,
            "storage_root": f"s3://{self.bucket}/ws-{tag}",
            "storage_options": self.options,
            "cache_dir": str(self.work / "cache" / cache),
            "root_dir": str(self.work / "ws" / tag),
        }

    def _open(self, settings: dict[str, Any]) -> None:
        """Create (migrate) the workspace and reach the bucket before the clock starts."""
        from wandb_dagster.sdk.workspace import Workspace
        from wandb_dagster.settings import Settings

        Workspace.for_settings(Settings.resolve(**settings))

    def ours_log(self, add: Callable[[Any], None], name: str) -> tuple[float, str]:
        import wandb_dagster as wandb

        self.counter += 1
        tag = f"{name}-{self.counter}"
        settings = self._settings(tag, f"{tag}-up")
        self._open(settings)

        # The clock covers the transfer work (add + log_artifact), not the run's own bookkeeping in init/finish.
        with wandb.init(project="bench", settings=settings) as run:

            def log() -> None:
                artifact = wandb.Artifact(name, type="dataset")
                add(artifact)
                run.log_artifact(artifact)

            took = _timed(log)
        return took, tag

    def ours_download(self, tag: str, name: str, dest: Path) -> float:
        import wandb_dagster as wandb

        settings = self._settings(tag, f"{tag}-down")  # a cold download cache
        self._open(settings)

        with wandb.init(project="bench", settings=settings) as run:
            took = _timed(lambda: run.use_artifact(f"{name}:v0").download(root=str(dest)))
        return took

    def s3fs_put_dir(self, src: Path) -> tuple[float, str]:
        self.counter += 1
        prefix = f"{self.bucket}/s3fs-{self.counter}"
        return _timed(lambda: self.fs.put(str(src) + "/", prefix, recursive=True)), prefix

    def s3fs_get_dir(self, prefix: str, dest: Path) -> float:
        self.fs.invalidate_cache()
        return _timed(lambda: self.fs.get(prefix + "/", str(dest) + "/", recursive=True))

    def s3fs_put_file(self, src: Path) -> tuple[float, str]:
        self.counter += 1
        key = f"{self.bucket}/s3fs-{self.counter}/{src.name}"
        return _timed(lambda: self.fs.put_file(str(src), key)), key

    def s3fs_get_file(self, key: str, dest: Path) -> float:
        self.fs.invalidate_cache()
        return _timed(lambda: self.fs.get_file(key, str(dest)))


def _small_files(folder: Path, count: int, size: int) -> Path:
    folder.mkdir(parents=True)
    for i in range(count):
        (folder / f"{i:05d}.bin").write_bytes(os.urandom(size))
    return folder


def run(args: argparse.Namespace) -> None:
    from wandb_dagster.sdk.workspace import Workspace

    work = Path(tempfile.mkdtemp(prefix="bench-remote-", dir=args.tmp))
    port = _free_port()
    ready = multiprocessing.get_context("spawn").Event()
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(port, ready), daemon=True)
    server.start()
    if not ready.wait(60):
        raise SystemExit("moto did not start within 60 s")
    endpoint = f"http://127.0.0.1:{port}"
    # References read the usual environment (no storage options), so point it at moto too.
    os.environ.update(
        AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET, AWS_DEFAULT_REGION=REGION, AWS_ENDPOINT_URL=endpoint
    )
    os.environ["WANDB_DAGSTER_DIR"] = str(work / "default")
    os.environ["WANDB_ENTITY"] = "bench"
    try:
        bench = Bench(endpoint, work)
        rows: list[tuple[str, ...]] = []
        # Warm up both clients (imports, sessions, connection pools) so the first measurement is not penalized.
        warm = _small_files(work / "warm", 3, 10)
        bench.s3fs_put_dir(warm)
        _, tag = bench.ours_log(lambda a: a.add_dir(str(warm)), "warm")
        bench.ours_download(tag, "warm", work / "warm-out")

        # -- many small files
        n_small, small_size = (100, 1024) if args.quick else (1000, 1024)
        src = _small_files(work / "small", n_small, small_size)
        ours_up, theirs_up, ours_down, theirs_down = [], [], [], []
        for rep in range(1 if args.quick else args.small_runs):
            t, prefix = bench.s3fs_put_dir(src)
            theirs_up.append(t)
            t, tag = bench.ours_log(lambda a: a.add_dir(str(src)), "small")
            ours_up.append(t)
            dest = work / f"small-s3fs-{rep}"
            theirs_down.append(bench.s3fs_get_dir(prefix, dest))
            assert _tree_equal(src, dest), "s3fs get returned other files"
            dest = work / f"small-ours-{rep}"
            ours_down.append(bench.ours_download(tag, "small", dest))
            assert _tree_equal(src, dest), "our download returned other files"
        label = f"{n_small:,} x {small_size // 1024} KiB"
        rows += _pair(f"{label}: log (add_dir + log_artifact) vs s3fs put", ours_up, theirs_up, "<= 1.0x")
        rows += _pair(f"{label}: download (cold cache) vs s3fs get", ours_down, theirs_down, "<= 1.0x")
        Workspace.close_all()

        # -- one large file
        big_mib = 32 if args.quick else 256
        big = work / "big" / "model.bin"
        big.parent.mkdir()
        with open(big, "wb") as f:
            for _ in range(big_mib):
                f.write(os.urandom(1024 * 1024))
        ours_up, theirs_up, ours_down, theirs_down = [], [], [], []
        for rep in range(1 if args.quick else args.large_runs):
            t, key = bench.s3fs_put_file(big)
            theirs_up.append(t)
            t, tag = bench.ours_log(lambda a: a.add_file(str(big)), "large")
            ours_up.append(t)
            dest = work / f"large-s3fs-{rep}"
            dest.mkdir()
            theirs_down.append(bench.s3fs_get_file(key, dest / big.name))
            dest = work / f"large-ours-{rep}"
            ours_down.append(bench.ours_download(tag, "large", dest))
            shutil.rmtree(work / f"large-s3fs-{rep}")
            shutil.rmtree(dest)
            Workspace.close_all()
        label = f"{big_mib} MiB file: log (add_file + log_artifact) vs s3fs put_file"
        rows += _pair(label, ours_up, theirs_up, "<= 1.2x")
        rows += _pair(f"{big_mib} MiB file: download (cold cache) vs s3fs get_file", ours_down, theirs_down, "<= 1.2x")

        # -- re-logging an unchanged s3:// prefix reference
        n_refs = 100 if args.quick else 1000
        bench.fs.pipe({f"{bench.bucket}/refs/{i:05d}.txt": f"object {i}".encode() for i in range(n_refs)})
        rows.append(_relog_reference(bench, n_refs))

        print()
        print("| measurement | ours | s3fs | ratio (ours / s3fs) | goal |")
        print("|---|---|---|---|---|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
    finally:
        server.terminate()
        server.join(10)
        shutil.rmtree(work, ignore_errors=True)


def _pair(label: str, ours: list[float], theirs: list[float], goal: str) -> list[tuple[str, ...]]:
    o, t = statistics.median(ours), statistics.median(theirs)
    if len(ours) == 1:
        runs = ""
    else:
        runs = f" (runs: {', '.join(f'{x:.2f}' for x in ours)} / {', '.join(f'{x:.2f}' for x in theirs)})"
    print(f"{label}: ours {o:.3f} s, s3fs {t:.3f} s, ratio {o / t:.2f}x{runs}", flush=True)
    return [(label, f"{o:.3f} s", f"{t:.3f} s", f"**{o / t:.2f}x**", goal)]


def _relog_reference(bench: Bench, n_refs: int) -> tuple[str, ...]:
    import wandb_dagster as wandb

    label = f"re-log unchanged s3:// prefix reference of {n_refs:,} objects: requests to S3"
    settings = bench._settings("refs", "refs")
    bench._open(settings)
    try:
        for _attempt in range(2):
            _requests(bench.endpoint)  # reset the count
            with wandb.init(project="bench", settings=settings) as run:
                artifact = wandb.Artifact("refs", type="dataset")
                artifact.add_reference(f"s3://{bench.bucket}/refs/")
                run.log_artifact(artifact)
            counts = _requests(bench.endpoint)
            assert len(artifact.manifest) == n_refs, f"{len(artifact.manifest)} entries"
    except Exception as exc:  # the s3 reference handler is another engineer's work in progress
        print(f"{label}: not measured ({type(exc).__name__}: {exc})", flush=True)
        return (label, "not measured", "", f"{type(exc).__name__}", "one listing")
    listings = counts.get("LIST", 0)
    other = {k: v for k, v in counts.items() if k != "LIST"}
    print(f"{label}: {listings} listing request(s), other requests {other or 'none'}", flush=True)
    return (label, f"{listings} LIST, {sum(other.values())} other", "", "", "one listing, nothing per object")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, one run: check that the bench works")
    parser.add_argument("--small-runs", type=int, default=3)
    parser.add_argument("--large-runs", type=int, default=2)
    parser.add_argument("--tmp", default=None, help="folder for the bench's files (default: the system temp)")
    args = parser.parse_args()
    os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    run(args)


if __name__ == "__main__":
    main()
