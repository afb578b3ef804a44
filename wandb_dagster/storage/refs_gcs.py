"""``gs://`` references (docs/behaviour.md section 3): md5Hash (else ETag) + size + generation, prefixes in one listing.

Example::

    >>> from wandb_dagster.storage import references
    >>> [r.path for r in references.resolve("gs://my-bucket/images")]            # doctest: +SKIP
    ['cat.png', 'dog.png']
    >>> references.resolve("gs://my-bucket/model.h5#1712345678901234")[0].extra    # doctest: +SKIP
    {'versionID': 1712345678901234}

Credentials come from the usual Google environment (``GOOGLE_APPLICATION_CREDENTIALS``, gcloud's application
default credentials, the GCE metadata server) through gcsfs. With ``STORAGE_EMULATOR_HOST`` set (fake-gcs-
server and the like) requests go to the emulator, unauthenticated. Emulator users must also set
``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false`` before gcsfs is imported, or each call hangs for 45-95 s.

The digest is the object's ``md5Hash`` (base64 MD5 of the bytes, the same form as a stored file's digest),
so a download is checked byte for byte; composite objects have no md5Hash and fall back to the ETag, which
is then compared as an opaque string. ``versionID`` is the object's generation; a download reads exactly
that generation (``path#generation``) while it exists.
"""

from __future__ import annotations

import os
import posixpath
import threading
from pathlib import Path
from typing import Any

from wandb_dagster.storage import references
from wandb_dagster.storage.references import Reference, changed_error, copy_verified, missing_error, too_many
from wandb_dagster.storage.uri_credentials import redact, redact_exception

_ENV_KEYS = ("STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CONFIG")
_fs_lock = threading.Lock()
_fs_cache: dict[tuple, Any] = {}


def _emulator() -> str | None:
    host = os.environ.get("STORAGE_EMULATOR_HOST", "")
    return None if host in ("", "default") else host


def _filesystem(uri: str) -> Any:
    """One gcsfs filesystem per Google environment, never gcsfs's shared instance (skip_instance_cache);
    callers drop its listing cache before each use, so no checksum comes from a stale listing."""
    try:
        import gcsfs
    except ImportError:
        raise ImportError("gs:// references need gcsfs: pip install 'wandb-dagster[gcs]'.") from None
    env = tuple(os.environ.get(k) for k in _ENV_KEYS)
    with _fs_lock:
        fs = _fs_cache.get(env)
        if fs is None:
            emulator = _emulator()
            if emulator:
                _check_reachable(uri, emulator)  # gcsfs would retry a dead emulator for ~30 s
            # An emulator wants no credentials; asking google-auth for some would only be slow there.
            options: dict[str, Any] = {"token": "anon"} if _emulator() else {}
            fs = gcsfs.GCSFileSystem(skip_instance_cache=True, version_aware=True, **options)
            if not _emulator() and getattr(fs.credentials, "method", None) == "anon":
                raise PermissionError(
                    f"Reference {references.strip_credentials(uri)!r}: no Google Cloud credentials found; set "
                    "GOOGLE_APPLICATION_CREDENTIALS to a service-account key file or run `gcloud auth "
                    "application-default login` (for an emulator, set STORAGE_EMULATOR_HOST)."
                )
            _fs_cache.clear()
            _fs_cache[env] = fs
    fs.invalidate_cache()
    return fs


def _check_reachable(uri: str, host: str) -> None:
    from wandb_dagster.storage.access import probe

    try:
        probe(host)
    except OSError as exc:
        raise ConnectionError(
            f"Reference {references.strip_credentials(uri)!r}: cannot reach the GCS emulator at "
            f"STORAGE_EMULATOR_HOST={host} ({redact(str(exc))}); start it, or unset STORAGE_EMULATOR_HOST to use "
            "Google Cloud Storage."
        ) from None


def parse(uri: str) -> tuple[str, str, int | None]:
    """(bucket, key, generation). Only a trailing ``#<digits>`` is a generation; any other ``#`` or ``?``
    is part of the object name. ``user:password@`` before the bucket is ignored."""
    rest = uri.split("://", 1)[1]
    generation = None
    head, sep, fragment = rest.rpartition("#")
    if sep and fragment.isdigit():
        rest, generation = head, int(fragment)
    bucket, _, key = rest.partition("/")
    bucket = bucket.rpartition("@")[2]
    if not bucket:
        raise ValueError(f"Reference {references.strip_credentials(uri)!r} names no bucket: use gs://bucket/key.")
    return bucket, key, generation


def _where() -> str:
    return _emulator() or "Google Cloud Storage"


def _checksum(info: dict) -> str:
    return info.get("md5Hash") or info["etag"]


def _reference(bucket: str, key: str, path: str, info: dict) -> Reference:
    return Reference(
        path=path, digest=_checksum(info), size=int(info["size"]), ref=f"gs://{bucket}/{key}",
        extra={"versionID": int(info["generation"])},
    )


def _translate(uri: str, exc: BaseException) -> BaseException:
    """One clear error for a failed call, naming the URI and what to do (the original is chained)."""
    clean = references.strip_credentials(uri)
    if isinstance(exc, PermissionError):
        return PermissionError(
            f"Reference {clean!r}: access denied by {_where()} ({redact(str(exc))}); check that the credentials "
            "(GOOGLE_APPLICATION_CREDENTIALS / gcloud auth) may list and read this bucket."
        )
    name = type(exc).__name__
    if isinstance(exc, (ConnectionError, TimeoutError)) or name in ("ClientConnectorError", "ServerDisconnectedError"):
        return ConnectionError(
            f"Reference {clean!r}: cannot reach {_where()} ({redact(str(exc))}); check STORAGE_EMULATOR_HOST (for an "
            "emulator) or the network."
        )
    return exc


class GCSHandler:
    cacheable = True

    def resolve(self, uri: str, name: str | None, max_objects: int) -> list[Reference]:
        bucket, key, generation = parse(uri)
        fs = _filesystem(uri)
        clean = references.strip_credentials(uri)
        if generation is not None:
            try:
                info = fs.info(f"{bucket}/{key}#{generation}")
            except FileNotFoundError:
                raise FileNotFoundError(
                    f"Reference {clean!r}: generation {generation} of {key!r} does not exist in bucket {bucket!r}; "
                    "check the object name and generation."
                ) from None
            except Exception as exc:
                raise _translate(uri, exc) from redact_exception(exc)
            return [_reference(bucket, key, name or posixpath.basename(key), info)]
        # A key is a prefix when it is empty, ends in "/", or names no object: one listing (prefix=key)
        # tells which and lists the prefix at the same time.
        try:
            listing = fs.find(bucket, prefix=key, detail=True)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"Reference {clean!r}: bucket {bucket!r} does not exist at {_where()}; check the bucket name."
            ) from None
        except Exception as exc:
            raise _translate(uri, exc) from redact_exception(exc)
        folder = key if key == "" or key.endswith("/") else key + "/"
        found: list[Reference] = []
        for full in sorted(listing):
            info = listing[full]
            k = full.split("/", 1)[1] if "/" in full else ""
            if k == key and folder != key:
                return [_reference(bucket, k, name or posixpath.basename(k), info)]
            if not k.startswith(folder) or k.endswith("/") or info.get("type") == "directory":
                continue
            if len(found) >= max_objects:
                raise too_many(uri, max_objects)
            rel = k[len(folder):]
            found.append(_reference(bucket, k, f"{name}/{rel}" if name else rel, info))
        if not found:
            raise FileNotFoundError(
                f"Reference {clean!r} matches no object in bucket {bucket!r}; check the object name (a prefix "
                "lists everything under 'name/')."
            )
        return found

    def download(self, ref: str, digest: str, size: int | None, extra: dict, dest: Path, entry_path: str) -> str:
        bucket, key, _ = parse(ref)
        path = f"{bucket}/{key}"
        fs = _filesystem(ref)
        try:
            if references.unchecked(ref, digest):  # checksum=False: whatever is there now, not verified
                with fs.open(path, "rb") as src:
                    return copy_verified(src, dest, None, entry_path, ref)
            info = None
            generation = extra.get("versionID")
            if generation is not None:
                try:
                    info = fs.info(f"{path}#{generation}")
                except FileNotFoundError:
                    info = None  # that generation is gone: the live object may still hold the same bytes
            if info is None:
                info = fs.info(path)
            current = _checksum(info)
            if current != digest:
                raise changed_error(entry_path, ref, digest, current)
            # Read the generation just checked, so a concurrent overwrite cannot slip other bytes in; an
            # md5Hash digest is also checked against the bytes themselves.
            expected = digest if info.get("md5Hash") == digest else None
            with fs.open(f"{path}#{info['generation']}", "rb") as src:
                return copy_verified(src, dest, expected, entry_path, ref, size=size)
        except FileNotFoundError:
            raise missing_error(entry_path, ref) from None
        except (ValueError, PermissionError):
            raise
        except Exception as exc:
            raise _translate(ref, exc) from redact_exception(exc)
