"""Why a bucket cannot be used: the one quick reachability probe, and errors that say what to do.

s3fs and gcsfs retry an unreachable endpoint with backoff for 6-35 s (gcsfs retries a dead emulator for
about 30 s) before they give up, which is far too long to say "wrong address": :func:`probe` makes one TCP
connection with a short timeout first. :func:`describe_error` turns what s3fs/gcsfs raised into a message
naming the root and the setting to fix.

Example::

    >>> probe("http://127.0.0.1:9")         # nobody listens there   # doctest: +SKIP
    Traceback (most recent call last):
    ConnectionRefusedError: [Errno 111] Connection refused
"""

from __future__ import annotations

import socket
import urllib.parse

from wandb_dagster.storage.uri_credentials import redact

PROBE_TIMEOUT_S = 5.0

_UNREACHABLE_ERRORS = frozenset({
    "EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError", "ClientConnectorError",
    "ServerDisconnectedError", "ClientOSError", "ServerTimeoutError",
})


def probe(endpoint: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """One TCP connection to the host and port of ``endpoint`` (a URL, or ``host:port``), closed at once.

    OSError (refused, timed out, unknown host) if it cannot be made; nothing for an endpoint without a host.
    The port defaults to the scheme's (443 for https, else 80).
    """
    parsed = urllib.parse.urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
    if not parsed.hostname:
        return
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    socket.create_connection((parsed.hostname, port), timeout=timeout).close()


def unreachable(exc: BaseException) -> bool:
    """A connection that could not be made or broke (botocore / aiohttp / builtin), by type, not by text."""
    return type(exc).__name__ in _UNREACHABLE_ERRORS or isinstance(exc, (ConnectionError, TimeoutError))


def describe_error(root: str, exc: BaseException) -> str:
    """What went wrong reaching ``root``, and what to do, from the exception s3fs/gcsfs raised."""
    text = redact(f"{type(exc).__name__}: {exc}")
    low = text.lower()
    if unreachable(exc):  # by type first: the text of a connection error quotes URLs, which may hold "403"
        return (
            f"storage root {root!r} could not be reached ({text}); check the endpoint (AWS_ENDPOINT_URL, "
            "STORAGE_EMULATOR_HOST, or endpoint options in WANDB_DAGSTER_STORAGE_OPTIONS) and the network"
        )
    if isinstance(exc, FileNotFoundError) or "nosuchbucket" in low or "bucket does not exist" in low:
        return (
            f"the bucket of storage root {root!r} does not exist ({text}); create it, or point "
            "WANDB_DAGSTER_STORAGE (or settings storage_root) at an existing bucket"
        )
    if isinstance(exc, PermissionError) or any(
        s in low for s in ("accessdenied", "invalidaccesskeyid", "signaturedoesnotmatch", "forbidden",
                           "unauthorized", "401", "403", "credentials", "token")
    ):
        return (
            f"the credentials for storage root {root!r} were refused or are missing ({text}); set them in the "
            "usual environment or config files (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or ~/.aws for S3, "
            "GOOGLE_APPLICATION_CREDENTIALS for GCS) or in WANDB_DAGSTER_STORAGE_OPTIONS"
        )
    return (
        f"storage root {root!r} could not be reached ({text}); check the endpoint (AWS_ENDPOINT_URL, "
        "STORAGE_EMULATOR_HOST, or endpoint options in WANDB_DAGSTER_STORAGE_OPTIONS) and the network"
    )


def lost_midway(root: str, exc: BaseException) -> str:
    """The endpoint going away (or the network failing) in the middle of a transfer: check_access() proved
    it when the workspace opened. Nothing partial is kept by the callers."""
    return (
        f"storage root {root!r} could not be reached in the middle of a transfer "
        f"({redact(f'{type(exc).__name__}: {exc}')}); nothing partial was kept. Check that the endpoint is up and "
        "reachable (AWS_ENDPOINT_URL, STORAGE_EMULATOR_HOST, or endpoint options in "
        "WANDB_DAGSTER_STORAGE_OPTIONS) and try again."
    )
