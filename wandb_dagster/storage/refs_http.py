"""``http://`` and ``https://`` references (docs/behaviour.md section 3): ETag + Content-Length, never a prefix.

Example::

    >>> from wandb_dagster.storage import references
    >>> [r] = references.resolve("https://example.com/data/table.csv")          # doctest: +SKIP
    >>> (r.path, r.digest, r.size, r.extra)                                      # doctest: +SKIP
    ('table.csv', '5d41402abc4b2a76', 1024, {'etag': '"5d41402abc4b2a76"'})

What is recorded (W&B's rule, plus one decision of ours for weak ETags):

- strong ETag: digest = the ETag without quotes, ``extra["etag"]`` = the header as sent, size =
  Content-Length (None when the server sends none). A download checks the ETag of the response it reads
  (the same response: no race) and the byte count when a size was recorded.
- weak ETag (``W/"..."``): a weak validator says "equivalent", not "the same bytes", so it is not a content
  checksum. **Ours**: the content is read once at add_reference time and the digest is its MD5 (base64, as
  for a stored file); ``extra["etag"]`` keeps the weak header for information. A download is then checked
  byte for byte against that MD5, whatever the server's ETag does.
- no ETag: digest = the URL (the content is not tracked, as with ``checksum=False``); downloads fetch
  whatever is there.

The metadata is read with HEAD; servers that refuse HEAD get a streamed GET whose body is not read
(unless the ETag is weak). Transfers ask for ``Accept-Encoding: identity`` so sizes and hashes are of the
bytes as stored. Credentials in the URL are used for the request and never stored (uri_credentials).
"""

from __future__ import annotations

import posixpath
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from wandb_dagster.storage import references
from wandb_dagster.storage.hashing import CHUNK, hex_to_b64, new_md5
from wandb_dagster.storage.references import Reference, changed_error, copy_verified, missing_error
from wandb_dagster.storage.uri_credentials import redact

_TIMEOUT = (10, 300)  # (connect, read) seconds: fail fast on a dead host, tolerate slow large transfers
_HEADERS = {"Accept-Encoding": "identity"}
_HEAD_REFUSED = {403, 405, 501}  # some servers (and signed URLs, signed for GET only) refuse HEAD


_local = threading.local()


def _session() -> Any:
    """One requests.Session per thread (sessions are not thread-safe), reused for keep-alive connections."""
    session = getattr(_local, "session", None)
    if session is None:
        import requests

        session = _local.session = requests.Session()
    return session


def _is_weak(etag: str) -> bool:
    return etag.startswith(("W/", "w/"))


def _unquote_etag(etag: str) -> str:
    return etag.strip().strip('"')


def _broken(url: str, exc: BaseException, entry_path: str | None = None) -> ConnectionError:
    """A transfer that failed after the request was answered (body cut short, bad chunking, ...).
    Only the exception's type is shown: requests' messages may quote the URL with its credentials."""
    what = f"Reference entry {entry_path!r} ({references.strip_credentials(url)})" if entry_path else (
        f"Reference {references.strip_credentials(url)!r}"
    )
    return ConnectionError(
        f"{what}: the transfer from {urlsplit(url).hostname!r} broke off ({type(exc).__name__}); nothing was "
        "kept. Try again; if it keeps failing, check the server and any proxy in between."
    )


class _ChunkReader:
    """``read(n)`` over a streamed requests response (copy_verified reads file-like objects)."""

    def __init__(self, response: Any, url: str, entry_path: str) -> None:
        self._chunks: Iterator[bytes] = response.iter_content(CHUNK)
        self._buffer = b""
        self._url = url
        self._entry_path = entry_path

    def read(self, n: int = -1) -> bytes:
        import requests

        while n < 0 or len(self._buffer) < n:
            try:
                chunk = next(self._chunks, None)
            except requests.exceptions.RequestException as exc:
                raise _broken(self._url, exc, self._entry_path) from None
            if chunk is None:
                break
            self._buffer += chunk
        if n < 0:
            out, self._buffer = self._buffer, b""
        else:
            out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out


class HTTPHandler:
    cacheable = True

    def _request(self, method: str, url: str, stream: bool = False) -> Any:
        import requests

        clean = references.strip_credentials(url)
        try:
            return _session().request(
                method, url, headers=_HEADERS, stream=stream, timeout=_TIMEOUT, allow_redirects=True
            )
        except requests.exceptions.InvalidURL as exc:
            raise ValueError(f"Reference {clean!r} is not a valid URL ({redact(str(exc))}); check it.") from None
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            host = urlsplit(url).hostname
            raise ConnectionError(
                f"Reference {clean!r}: cannot reach {host!r} ({type(exc).__name__}); check the URL and that the "
                "server is up and reachable from here (proxy settings: HTTP(S)_PROXY)."
            ) from None
        except requests.exceptions.RequestException as exc:  # too many redirects, a malformed answer, ...
            raise ConnectionError(
                f"Reference {clean!r}: the request failed ({type(exc).__name__}); check the URL (open it with "
                "curl -IL to see where it leads) and the server."
            ) from None

    def _check_status(self, response: Any, url: str, entry_path: str | None = None) -> None:
        clean = references.strip_credentials(url)
        status = response.status_code
        if status < 400:
            return
        response.close()
        if status in (404, 410):
            if entry_path is not None:
                raise missing_error(entry_path, clean, f" (HTTP {status})")
            raise FileNotFoundError(f"Reference {clean!r}: the server answered HTTP {status}; check the URL.")
        if status in (401, 403):
            raise PermissionError(
                f"Reference {clean!r}: the server refused access (HTTP {status}); check the URL's credentials. "
                "Note that credentials in the URL are never stored, so a download needs a URL that works "
                "without them."
            )
        raise ValueError(f"Reference {clean!r}: the server answered HTTP {status} {response.reason}; check the URL.")

    def _metadata(self, url: str) -> Any:
        response = self._request("HEAD", url)
        if response.status_code in _HEAD_REFUSED:
            response.close()
            response = self._request("GET", url, stream=True)  # headers only; the body is left unread
        self._check_status(response, url)
        return response

    def resolve(self, uri: str, name: str | None, max_objects: int) -> list[Reference]:
        response = self._metadata(uri)
        etag = response.headers.get("ETag")
        length = response.headers.get("Content-Length")
        size = int(length) if length is not None and length.isdigit() else None
        response.close()
        default = posixpath.basename(unquote(urlsplit(uri).path.rstrip("/"))) or urlsplit(uri).hostname or "index"
        path = name or default
        if etag is None:  # nothing identifies the content: recorded as untracked
            return [Reference(path=path, digest=uri, size=size, ref=uri)]
        if _is_weak(etag):
            digest, size = self._hash(uri)
            return [Reference(path=path, digest=digest, size=size, ref=uri, extra={"etag": etag})]
        return [Reference(path=path, digest=_unquote_etag(etag), size=size, ref=uri, extra={"etag": etag})]

    def _hash(self, uri: str) -> tuple[str, int]:
        import requests

        with self._request("GET", uri, stream=True) as response:
            self._check_status(response, uri)
            h, size = new_md5(), 0
            try:
                for chunk in response.iter_content(CHUNK):
                    h.update(chunk)
                    size += len(chunk)
            except requests.exceptions.RequestException as exc:
                raise _broken(uri, exc) from None
        return hex_to_b64(h.hexdigest()), size

    def download(self, ref: str, digest: str, size: int | None, extra: dict, dest: Path, entry_path: str) -> str:
        with self._request("GET", ref, stream=True) as response:
            self._check_status(response, ref, entry_path)
            etag = response.headers.get("ETag")
            if references.unchecked(ref, digest):
                return copy_verified(_ChunkReader(response, ref, entry_path), dest, None, entry_path, ref)
            recorded = extra.get("etag")
            if recorded is not None and _is_weak(recorded):
                # Recorded digest is the MD5 of the content: check the bytes, not the validator.
                return copy_verified(_ChunkReader(response, ref, entry_path), dest, digest, entry_path, ref, size=size)
            current = _unquote_etag(etag) if etag is not None else None
            if current != digest:
                raise changed_error(entry_path, ref, digest, current if current is not None else "no ETag")
            return copy_verified(_ChunkReader(response, ref, entry_path), dest, None, entry_path, ref, size=size)
