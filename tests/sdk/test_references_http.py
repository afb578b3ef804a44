"""http(s):// references against a loopback HTTP server: ETag/Content-Length, weak ETags, routes without
Content-Length or HEAD, content that changes, missing content, the cache and clear errors."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest

import wandb_dagster as wandb
from wandb_dagster.storage.hashing import md5_b64


def _log(artifact: wandb.Artifact, project: str = "refs") -> wandb.Artifact:
    with wandb.init(project=project) as run:
        run.log_artifact(artifact)
    return wandb.Api(overrides={"project": project}).artifact(f"{artifact.collection_name}:latest")


def test_strong_etag_and_content_length(ws_env, http_server):
    url = http_server.put("data/table.csv", b"a,b\n1,2\n")
    [entry] = wandb.Artifact("h", type="t").add_reference(url)
    etag = hashlib.md5(b"a,b\n1,2\n").hexdigest()
    assert (entry.path, entry.digest, entry.size, entry.ref) == ("table.csv", etag, 8, url)
    assert entry.extra == {"etag": f'"{etag}"'}
    assert ("HEAD", "/data/table.csv") in http_server.requests
    assert not any(method == "GET" for method, _ in http_server.requests)  # metadata only: the body is not read


def test_route_without_content_length_and_without_head(ws_env, http_server):
    url = http_server.put("nolen", b"no length here", content_length=False, head=False)
    [entry] = wandb.Artifact("h", type="t").add_reference(url, name="renamed.bin")
    assert entry.size is None and entry.digest == hashlib.md5(b"no length here").hexdigest()
    assert entry.path == "renamed.bin"
    artifact = wandb.Artifact("nolen", type="t")
    artifact.add_reference(url)
    assert (Path(_log(artifact).download(root="o")) / "nolen").read_bytes() == b"no length here"


def test_no_etag_is_untracked(ws_env, http_server):
    url = http_server.put("plain", b"v1", etag=None)
    artifact = wandb.Artifact("plain", type="t")
    [entry] = artifact.add_reference(url)
    assert entry.digest == url and entry.ref == url and entry.size == 2 and entry.extra == {}
    logged = _log(artifact)
    http_server.put("plain", b"v2 changed", etag=None)
    assert (Path(logged.download(root="o")) / "plain").read_bytes() == b"v2 changed"


def test_weak_etag_records_content_md5_and_detects_changes_behind_it(ws_env, http_server):
    # A weak ETag that stays the same while the bytes change: exactly why it is not a checksum.
    url = http_server.put("weak.txt", b"original", etag='W/"same"')
    artifact = wandb.Artifact("weak", type="t")
    [entry] = artifact.add_reference(url)
    assert entry.digest == md5_b64(b"original") and entry.size == 8 and entry.extra == {"etag": 'W/"same"'}
    logged = _log(artifact)
    assert (Path(logged.download(root="a")) / "weak.txt").read_bytes() == b"original"
    http_server.put("weak.txt", b"modified", etag='W/"same"')
    with pytest.raises(ValueError) as err:
        logged.download(root="b", skip_cache=True)
    assert "'weak.txt'" in str(err.value) and md5_b64(b"original") in str(err.value) and md5_b64(b"modified") in str(err.value)


def test_content_that_changes_with_strong_etag(ws_env, http_server):
    url = http_server.put("model.bin", b"v1 weights")
    artifact = wandb.Artifact("changing", type="model")
    artifact.add_reference(url)
    logged = _log(artifact)
    http_server.put("model.bin", b"v2 weights!")
    with pytest.raises(ValueError) as err:
        logged.download(root="o", skip_cache=True)
    old, new = hashlib.md5(b"v1 weights").hexdigest(), hashlib.md5(b"v2 weights!").hexdigest()
    assert "'model.bin'" in str(err.value) and old in str(err.value) and new in str(err.value)
    # Logging again records the new content as a new version.
    again = wandb.Artifact("changing", type="model")
    again.add_reference(url)
    relogged = _log(again)
    assert relogged.version == "v1"
    assert (Path(relogged.download(root="v1")) / "model.bin").read_bytes() == b"v2 weights!"


def test_missing_and_allow_missing(ws_env, http_server):
    artifact = wandb.Artifact("m", type="t")
    artifact.add_reference(http_server.put("keep", b"k"))
    artifact.add_reference(http_server.put("gone", b"g"))
    logged = _log(artifact)
    http_server.delete("gone")
    with pytest.raises(FileNotFoundError, match="'gone'.*allow_missing_references"):
        logged.download(root="a", skip_cache=True)
    root = Path(logged.download(root="b", skip_cache=True, allow_missing_references=True))
    assert sorted(p.name for p in root.iterdir()) == ["keep"]
    with pytest.raises(FileNotFoundError, match="HTTP 404"):
        wandb.Artifact("x", type="t").add_reference(http_server.url("never-there"))


def test_downloads_are_cached_by_url_and_etag(ws_env, http_server):
    url = http_server.put("c.bin", b"c" * 5000)
    artifact = wandb.Artifact("c", type="t")
    artifact.add_reference(url)
    logged = _log(artifact)
    logged.download(root="a")
    http_server.requests.clear()
    assert (Path(logged.download(root="b")) / "c.bin").read_bytes() == b"c" * 5000
    assert http_server.requests == []


def test_checksum_false_and_max_objects(ws_env, http_server):
    url = http_server.put("x", b"x")
    http_server.requests.clear()
    [entry] = wandb.Artifact("u", type="t").add_reference(url, checksum=False)
    assert (entry.digest, entry.ref, entry.size) == (url, url, None) and http_server.requests == []
    assert len(wandb.Artifact("u", type="t").add_reference(url, max_objects=1)) == 1  # never a prefix
    with pytest.raises(ValueError, match="max_objects=0"):
        wandb.Artifact("u", type="t").add_reference(url, max_objects=0)


def test_unreachable_server_error(ws_env):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/file.bin"
    with pytest.raises(ConnectionError) as err:
        wandb.Artifact("x", type="t").add_reference(url)
    assert url in str(err.value) and "reachable" in str(err.value)


class _RawServer:
    """A loopback server that answers every request with the same raw bytes, for answers the well-behaved
    fixture cannot give (a body cut short, endless redirects)."""

    def __init__(self, answer, head_answer: bytes | None = None) -> None:
        import threading

        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}/f.bin"
        if callable(answer):  # an answer that names this server's own URL
            answer = answer(self.url)

        def serve() -> None:
            while True:
                try:
                    conn, _ = self._sock.accept()
                except OSError:
                    return
                with conn:
                    request = b""
                    while b"\r\n\r\n" not in request:  # the whole request head: closing on unread bytes resets
                        data = conn.recv(65536)
                        if not data:
                            break
                        request += data
                    conn.sendall(head_answer if head_answer is not None and request.startswith(b"HEAD") else answer)
                    conn.shutdown(socket.SHUT_WR)

        threading.Thread(target=serve, daemon=True).start()

    def close(self) -> None:
        self._sock.close()


def test_a_body_cut_short_is_a_clear_error_and_leaves_nothing(ws_env):
    head = b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\nETag: "abc"\r\nConnection: close\r\n\r\n'
    server = _RawServer(head + b"x" * 10, head_answer=head)
    try:
        artifact = wandb.Artifact("cut", type="t")
        artifact.add_reference(server.url)
        logged = _log(artifact)
        with pytest.raises(ConnectionError) as err:
            logged.download(root="o")
        assert "'f.bin'" in str(err.value) and server.url in str(err.value) and "broke off" in str(err.value)
        assert list(Path("o").iterdir()) == []  # no partial or temp file
        weak = _RawServer(head.replace(b'"abc"', b'W/"abc"') + b"x" * 10, head_answer=head.replace(b'"abc"', b'W/"abc"'))
        try:
            with pytest.raises(ConnectionError, match="broke off"):
                wandb.Artifact("cut", type="t").add_reference(weak.url)  # a weak ETag: the body is hashed
        finally:
            weak.close()
    finally:
        server.close()


def test_endless_redirects_are_a_clear_error(ws_env):
    server = _RawServer(lambda url: f"HTTP/1.1 302 Found\r\nLocation: {url}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
    try:
        with pytest.raises(ConnectionError) as err:
            wandb.Artifact("loop", type="t").add_reference(server.url + "?X-Amz-Signature=SECRETSIG")
        assert server.url in str(err.value) and "TooManyRedirects" in str(err.value)
        assert "SECRETSIG" not in str(err.value)
    finally:
        server.close()


def test_refused_credentials_are_a_clear_error(ws_env):
    server = _RawServer(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    try:
        url = server.url.replace("http://", "http://someone:PASSWORD1@")
        with pytest.raises(PermissionError) as err:
            wandb.Artifact("auth", type="t").add_reference(url)
        assert server.url in str(err.value) and "HTTP 401" in str(err.value) and "credentials" in str(err.value)
        assert "PASSWORD1" not in str(err.value)
    finally:
        server.close()


def test_a_failed_cache_record_leaves_no_temp_file(ws_env, http_server):
    from wandb_dagster.sdk.workspace import Workspace
    from wandb_dagster.storage import refcache

    url = http_server.put("r.bin", b"r" * 100)
    artifact = wandb.Artifact("r", type="t")
    [entry] = artifact.add_reference(url)
    logged = _log(artifact)
    cache = Workspace.default().cache
    index = Path(refcache._index_path(cache, refcache.key(entry.ref, entry.digest, None)))
    index.mkdir(parents=True)  # a directory where the index file goes: recording it fails at the rename
    assert (Path(logged.download(root="o")) / "r.bin").read_bytes() == b"r" * 100  # the download still works
    assert [p.name for p in index.parent.iterdir()] == [index.name]  # and no temp file was left beside it
