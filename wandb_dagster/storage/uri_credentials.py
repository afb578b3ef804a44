"""Credentials in URIs: removed before anything is stored, masked in every message (docs/architecture.md
invariant 7).

Example::

    >>> strip_credentials("https://user:pw@host/a.csv?X-Amz-Signature=abc&v=2")
    'https://host/a.csv?v=2'
    >>> strip_credentials("s3://bucket/key?versionId=3")
    's3://bucket/key?versionId=3'
    >>> redact("not in this workspace ('postgresql://postgres:hunter2@127.0.0.1:5432/db')")
    "not in this workspace ('postgresql://postgres:***@127.0.0.1:5432/db')"
    >>> redact("GET /a.csv?X-Amz-Signature=abc&v=2 failed")
    'GET /a.csv?X-Amz-Signature=***&v=2 failed'

A reference is resolved with the URI as given (a signed URL needs its signature to be read), then every
URI that goes into the manifest (``ref``, and ``digest`` where it is the URI) is passed through
:func:`strip_credentials`. What counts as a credential: the userinfo part (``user:password@``) and query
parameters of signed URLs (AWS SigV2/V4, Google V2/V4, Azure SAS, CloudFront) or named like a secret.

Messages are different: they must still say which URL failed, so :func:`redact` keeps the URL and masks the
secret parts (``***``, as SQLAlchemy hides a password). It is the one redaction helper: every message, log
line, metadata value, tag and exception the package writes goes through it (or :func:`redact_exception`,
for an exception chain that is passed on as a cause). It works on free text, not on a parsed URL, because
third-party messages quote URLs in every shape (``'url'``, ``url: /path?query``, libpq's
``password=...``).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from urllib.parse import SplitResult, urlsplit, urlunsplit

# Lowercased parameter names. Whole families of signed-URL parameters go (x-amz-*, x-goog-*): the non-secret
# ones (date, expiry, algorithm) are useless without the signature and only make the stored URI expire.
_SECRET_PARAMS = frozenset(
    {
        # AWS SigV2 / CloudFront
        "signature", "awsaccesskeyid", "expires", "policy", "key-pair-id",
        # Google V2 signed URLs
        "googleaccessid",
        # Azure SAS: the signature and what it signs
        "sig", "se", "st", "sp", "sv", "sr", "spr", "srt", "ss", "skoid", "sktid", "skt", "ske", "sks", "skv",
        # generic secrets
        "token", "access_token", "id_token", "refresh_token", "auth", "authorization", "password", "passwd",
        "pwd", "secret", "client_secret", "api_key", "apikey", "api-key", "access_key", "secret_key",
        "credential", "credentials", "security-token", "session_token",
    }
)
_SECRET_PREFIXES = ("x-amz-", "x-goog-", "x-ms-")


def is_secret_param(name: str) -> bool:
    """True for a query parameter name that carries (or only makes sense with) a credential."""
    lowered = name.lower()
    return lowered in _SECRET_PARAMS or lowered.startswith(_SECRET_PREFIXES)


# In these URIs "?" and "#" belong to the object name (refs_s3.parse, refs_gcs.parse): an S3 key may be
# "report?sig=1.csv". Dropping "parameters" there would silently point the stored ref at another object.
_OBJECT_NAME_SCHEMES = frozenset({"s3", "s3a", "gs", "gcs"})


def strip_credentials(uri: str) -> str:
    """``uri`` without userinfo and without credential query parameters; other parts kept byte for byte.

    ``s3://`` and ``gs://`` URIs have no query: only ``user:password@`` before the bucket is removed.
    """
    if "://" not in uri:
        return uri
    scheme, rest = uri.split("://", 1)
    if scheme.lower() in _OBJECT_NAME_SCHEMES:
        bucket, sep, key = rest.partition("/")
        return f"{scheme}://{bucket.rpartition('@')[2]}{sep}{key}" if "@" in bucket else uri
    parts = urlsplit(uri)
    netloc = parts.netloc.rpartition("@")[2] if "@" in parts.netloc else parts.netloc
    query = parts.query
    if query:
        # Split by hand (not parse_qsl) so kept parameters stay exactly as written (encoding, order, blanks).
        kept = [p for p in re.split(r"[&;]", query) if p and not is_secret_param(_param_name(p))]
        query = "&".join(kept)
    if netloc == parts.netloc and query == parts.query:
        return uri
    return urlunsplit(SplitResult(parts.scheme, netloc, parts.path, query, parts.fragment))


def has_credentials(uri: str) -> bool:
    return strip_credentials(uri) != uri


def _param_name(param: str) -> str:
    from urllib.parse import unquote_plus

    return unquote_plus(param.partition("=")[0])


# ---------------------------------------------------------------------------------------- messages

MASK = "***"
# A URI scheme and "://"; the userinfo is looked for in the token that follows (up to a space or a quote).
# A mistyped "scheme:/" or "scheme//" counts too: those are the URLs that end up quoted in an error.
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*(?::/{1,3}|//)")
_TOKEN_END = re.compile(r"[\s'\"`<>]")
# name=value after "?", "&" or ";": a query parameter wherever it is quoted (a URL, or requests' "url: /p?q").
_QUERY_PARAM = re.compile(r"(?<=[?&;])([^=&;#?\s'\"`<>]+)=([^&;#\s'\"`<>]*)")
# libpq keyword/value connection strings (password=...), and secret keys of a dict or JSON text: storage
# options (s3fs secret/token, a gcsfs service-account dict with its private_key) quoted by a library's error.
_KEYWORD_SECRET = re.compile(
    r"(?<![\w.\-])(['\"]?)(password|passwd|pwd|secret|client_secret|aws_secret_access_key|aws_session_token|"
    r"private_key|token|access_token|refresh_token|id_token|session_token|api_key|apikey|account_key|sas_token)\1"
    r"(\s*[=:]\s*)('[^']*'|\"[^\"]*\"|[^\s,;&)}'\"]+)",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """``text`` with every credential masked as ``***``: the password of ``user:password@`` in a URL of any
    scheme, the values of signed-URL and secret query parameters (``X-Amz-Signature``, ``X-Goog-Credential``,
    ``sig``, ``token``, ... wherever a ``?name=value`` or ``&name=value`` appears), and ``password=...``
    keyword values (libpq connection strings). Everything else is kept, so the message still names the URL.

    >>> redact("https://user:pw@host/a?X-Goog-Signature=s&x=1")
    'https://user:***@host/a?X-Goog-Signature=***&x=1'
    >>> redact("postgresql://me@db/ws and http://host:8080/a@b")     # no password: unchanged
    'postgresql://me@db/ws and http://host:8080/a@b'
    >>> redact("postgresql:/u:pw@db/ws")                               # a mistyped URL too
    'postgresql:/u:***@db/ws'
    """
    if not isinstance(text, str):
        text = str(text)
    text = _mask_userinfo(text)
    text = _QUERY_PARAM.sub(_mask_param, text)
    return _KEYWORD_SECRET.sub(_mask_keyword, text)


def _mask_keyword(match: re.Match[str]) -> str:
    quote, key, sep, value = match.groups()
    if value.strip("'\"") in ("", MASK):
        return match.group(0)
    shown = f"{value[0]}{MASK}{value[0]}" if value[0] in "'\"" else MASK
    return f"{quote}{key}{quote}{sep}{shown}"


def _mask_param(match: re.Match[str]) -> str:
    name, value = match.group(1), match.group(2)
    if value and value != MASK and is_secret_param(_param_name(name)):
        return f"{name}={MASK}"
    return match.group(0)


def _mask_userinfo(text: str) -> str:
    out: list[str] = []
    pos = 0
    for match in _SCHEME.finditer(text):
        start = match.end()
        if start < pos:
            continue
        end_match = _TOKEN_END.search(text, start)
        token = text[start : end_match.start() if end_match else len(text)]
        span = _password_span(token)
        if span is not None:
            out.append(text[pos : start + span[0]])
            out.append(MASK)
            pos = start + span[1]
    out.append(text[pos:])
    return "".join(out)


def _password_span(token: str) -> tuple[int, int] | None:
    """Where the password of ``user:password@host...`` is in ``token`` (what follows ``scheme://``)."""
    colon = token.find(":")
    at = token.find("@", colon + 1) if colon != -1 else -1
    if colon == -1 or at == -1 or "/" in token[:colon]:
        return None
    password = token[colon + 1 : at]
    if "/" in password and password.split("/", 1)[0].isdigit():
        return None  # host:port/path@...: an "@" in the path, no userinfo
    # An unencoded "@" in the password (SQLAlchemy takes it so): mask up to the last "@" of the authority.
    while True:
        following = token.find("@", at + 1)
        if following == -1 or any(c in token[at + 1 : following] for c in "/?#"):
            break
        at = following
    if not password or token[colon + 1 : at] == MASK:
        return None
    return colon + 1, at


class RedactedError(Exception):
    """Stands in for an exception whose message (or whose cause's) carried a credential: the original's
    class name and message, credentials masked, with its traceback and its (redacted) cause.

    >>> str(redact_exception(ValueError("bad url http://u:pw@h/x")))
    'ValueError: bad url http://u:***@h/x'
    """

    def __init__(self, message: str, original_type: str) -> None:
        super().__init__(message)
        self.original_type = original_type


def redact_exception(exc: BaseException) -> BaseException:
    """``exc`` itself when nothing in it or in its chain of causes carries a credential; otherwise a
    :class:`RedactedError` copy of the chain. Use it as the cause of an error that is passed on
    (``raise MyError(redact(str(exc))) from redact_exception(exc)``): Dagster and tracebacks print the whole
    chain, so a secret in a cause's message would reach the logs.
    """
    return _redacted(exc, 0)


_MAX_CHAIN = 16


def _next_in_chain(exc: BaseException) -> BaseException | None:
    if exc.__cause__ is not None:
        return exc.__cause__
    return None if exc.__suppress_context__ else exc.__context__


def _message(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # a broken __str__: say what it was, not what it holds
        return f"<{type(exc).__name__} with an unprintable message>"


def _leaks(exc: BaseException) -> bool:
    current: BaseException | None = exc
    for _ in range(_MAX_CHAIN):
        if current is None:
            return False
        message = _message(current)
        if redact(message) != message:
            return True
        current = _next_in_chain(current)
    return False


def _redacted(exc: BaseException, depth: int) -> BaseException:
    if not _leaks(exc):
        return exc
    kind = type(exc)
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    copy = RedactedError(f"{name}: {redact(_message(exc))}", name)
    copy.__traceback__ = exc.__traceback__
    following = _next_in_chain(exc)
    if following is not None and depth < _MAX_CHAIN:
        copy.__cause__ = _redacted(following, depth + 1)
    # The original's context is the secret one: never let a traceback print it.
    copy.__suppress_context__ = True
    return copy


@contextlib.contextmanager
def redacted_errors() -> Iterator[None]:
    """Exceptions leaving the block carry no credential: unchanged when they carry none, else their
    :func:`redact_exception` copy (for boundaries where errors reach logs: Dagster steps, sensors, hooks)."""
    try:
        yield
    except Exception as exc:
        safe = redact_exception(exc)
        if safe is exc:
            raise
        # "from": the original stays only as the suppressed context, which tracebacks and Dagster skip.
        raise safe from safe.__cause__
