"""Remove credentials from URIs before anything is stored (docs/behaviour.md section 3, **Ours**).

Example::

    >>> strip_credentials("https://user:pw@host/a.csv?X-Amz-Signature=abc&v=2")
    'https://host/a.csv?v=2'
    >>> strip_credentials("s3://bucket/key?versionId=3")
    's3://bucket/key?versionId=3'

A reference is resolved with the URI as given (a signed URL needs its signature to be read), then every
URI that goes into the manifest (``ref``, and ``digest`` where it is the URI) is passed through
:func:`strip_credentials`. What counts as a credential: the userinfo part (``user:password@``) and query
parameters of signed URLs (AWS SigV2/V4, Google V2/V4, Azure SAS, CloudFront) or named like a secret.
"""

from __future__ import annotations

import re
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
