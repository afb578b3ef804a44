"""Credentials inside reference URIs are used to read the object and never stored (docs/behaviour.md section 3, Ours).

The test logs such references, then searches every byte the workspace wrote (the SQLite file and its WAL,
caches, blobs) and, on PostgreSQL, a text dump of every row of every table, plus the manifests."""

from __future__ import annotations

from pathlib import Path

import pytest

import wandb_dagster as wandb
from wandb_dagster.sdk.workspace import Workspace
from wandb_dagster.storage.uri_credentials import strip_credentials

SECRETS = [
    "httpuser9", "httppass9", "AMZSIG0123", "AKIAAMZCRED", "AMZTOKEN77", "GOOGSIG456", "GOOGCRED88", "SIGV2SIG",
    "SASSIG999", "BEARERTOKEN5", "S3USERKEY", "S3USERSECRET", "APIKEY31337",
]


def _uris(http_server, s3_bucket: str) -> list[tuple[str, bool]]:
    """(uri, checksum) pairs, each carrying some of the secrets."""
    strong = http_server.put("strong.bin", b"strong")
    weak = http_server.put("weak.bin", b"weak", etag="weak")
    plain = http_server.put("plain.bin", b"plain", etag=None)
    userinfo = strong.replace("http://", "http://httpuser9:httppass9@")
    return [
        (userinfo + "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAAMZCRED%2F20260101&"
         "X-Amz-Security-Token=AMZTOKEN77&X-Amz-Signature=AMZSIG0123&keep=1", True),
        (weak + "?X-Goog-Credential=GOOGCRED88&X-Goog-Signature=GOOGSIG456", True),
        (plain + "?Signature=SIGV2SIG&Expires=1700000000&sig=SASSIG999&token=BEARERTOKEN5", True),
        (strong + "?api_key=APIKEY31337&sig=SASSIG999", False),
        (f"s3://S3USERKEY:S3USERSECRET@{s3_bucket}/obj.txt", True),
    ]


def test_strip_credentials_examples():
    assert strip_credentials("https://u:p@h/a?X-Amz-Signature=s&versionId=1&b=2") == "https://h/a?versionId=1&b=2"
    assert strip_credentials("https://h/a?x-goog-signature=s") == "https://h/a"
    assert strip_credentials("gs://bucket/key#123") == "gs://bucket/key#123"
    assert strip_credentials("s3://bucket/key?versionId=abc") == "s3://bucket/key?versionId=abc"
    assert strip_credentials("https://h/a?token=t;keep=1") == "https://h/a?keep=1"
    # s3:// and gs:// have no query: "?" and "#" are part of the object name, only userinfo goes.
    assert strip_credentials("s3://k:s@bucket/a?sig=1.csv") == "s3://bucket/a?sig=1.csv"
    assert strip_credentials("gs://bucket/a?token=x#12") == "gs://bucket/a?token=x#12"


def test_no_secret_reaches_the_database_or_manifests(any_ws_env, http_server, s3_server, s3_bucket, tmp_path):
    s3_server.client().put_object(Bucket=s3_bucket, Key="obj.txt", Body=b"object")
    artifact = wandb.Artifact("signed", type="dataset")
    for uri, checksum in _uris(http_server, s3_bucket):
        artifact.add_reference(uri, checksum=checksum, name=None if checksum else "unchecked.bin")
    with wandb.init(project="secrets") as run:
        run.log_artifact(artifact)
    logged = wandb.Api(overrides={"project": "secrets"}).artifact("signed:v0")
    # Downloads work with the stored (clean) URIs: this server and moto need no signature.
    root = Path(logged.download(root=str(tmp_path / "out")))
    assert (root / "strong.bin").read_bytes() == b"strong" and (root / "obj.txt").read_bytes() == b"object"
    entries = {e.path: e for e in logged.manifest}
    assert entries["strong.bin"].ref.endswith("/strong.bin?keep=1")
    assert entries["weak.bin"].ref == http_server.url("weak.bin")
    assert entries["obj.txt"].ref == f"s3://{s3_bucket}/obj.txt"

    texts = [logged.manifest_json(), artifact.manifest_json(), Workspace.default().store.manifest(logged._record.pk)]
    store = Workspace.default().store
    blobs = b""
    if store.dialect == "postgresql":
        texts.append(_postgres_dump(store.url))
    Workspace.close_all()  # SQLite: the WAL is checkpointed into the file; both are searched anyway
    for path in tmp_path.rglob("*"):
        if path.is_file() and "out" not in path.relative_to(tmp_path).parts:
            blobs += path.read_bytes()
    assert len(blobs) > 0
    if store.dialect == "sqlite":
        assert b"signed" in blobs  # the search does look at the database's bytes
    else:
        assert "signed" in texts[-1]
    for secret in SECRETS:
        assert secret.encode() not in blobs, secret
        for text in texts:
            assert secret not in text, secret


def _postgres_dump(url: str) -> str:
    """Every row of every table as text (PostgreSQL's row-to-text cast covers all columns, JSON included)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            tables = sa.inspect(conn).get_table_names()
            assert tables
            rows = []
            for table in tables:
                quoted = conn.dialect.identifier_preparer.quote(table)
                rows += [r[0] for r in conn.execute(sa.text(f"SELECT t::text FROM {quoted} AS t"))]
    finally:
        engine.dispose()
    return "\n".join(rows)


@pytest.mark.parametrize("template", ["http://user:password@127.0.0.1:{port}/x", "http://127.0.0.1:{port}/x?X-Amz-Signature=zzz"])
def test_error_messages_do_not_echo_secrets(ws_env, template):
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectionError) as err:
        wandb.Artifact("x", type="t").add_reference(template.format(port=port))
    assert f"127.0.0.1:{port}/x" in str(err.value)
    assert "password" not in str(err.value) and "zzz" not in str(err.value)


@pytest.mark.parametrize("uri", ["file://user:FILEPASSWORD@host/x", "file:///no/such/file?token=FILEPASSWORD"])
def test_file_reference_errors_do_not_echo_secrets(ws_env, uri):
    with pytest.raises((ValueError, FileNotFoundError)) as err:
        wandb.Artifact("x", type="t").add_reference(uri)
    assert "FILEPASSWORD" not in str(err.value) and ("'host'" in str(err.value) or "/no/such/file" in str(err.value))


# ---------------------------------------------------------------------------------------- messages
# docs/architecture.md invariant 7: one helper (uri_credentials.redact) masks credentials in every message.


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("not in this workspace ('postgresql://postgres:hunter2@127.0.0.1:5432/db')",
         "not in this workspace ('postgresql://postgres:***@127.0.0.1:5432/db')"),
        ("postgresql+psycopg://u:p@ss@host/db", "postgresql+psycopg://u:***@host/db"),  # an unencoded "@"
        ("s3://AKIAKEY:S3SECRET@bucket/k and ftp://a:b@c/", "s3://AKIAKEY:***@bucket/k and ftp://a:***@c/"),
        ("redis://:onlypw@h:6379/0", "redis://:***@h:6379/0"),
        # requests quotes the path and query without the scheme: parameters are masked wherever they are
        ("Max retries exceeded with url: /a.csv?X-Amz-Credential=AKIA%2F2026&X-Amz-Signature=abc&v=2 (Caused by x)",
         "Max retries exceeded with url: /a.csv?X-Amz-Credential=***&X-Amz-Signature=***&v=2 (Caused by x)"),
        ("https://h/a?X-Amz-Security-Token=T&X-Goog-Signature=G&X-Goog-Credential=C&AWSAccessKeyId=K&Signature=S",
         "https://h/a?X-Amz-Security-Token=***&X-Goog-Signature=***&X-Goog-Credential=***&AWSAccessKeyId=***"
         "&Signature=***"),
        ("https://h/a?sig=S;token=T&access_token=A&keep=1", "https://h/a?sig=***;token=***&access_token=***&keep=1"),
        ("host=127.0.0.1 user=postgres password=hunter2 dbname=x", "host=127.0.0.1 user=postgres password=*** dbname=x"),
        ("{'key': 'AKIA', 'secret': 'xyz'}", "{'key': 'AKIA', 'secret': '***'}"),
        # storage options quoted by s3fs/gcsfs: a session token, a service-account dict
        ("{'key': 'AKIA', 'token': 'FwoGZX', 'client_kwargs': {}}", "{'key': 'AKIA', 'token': '***', 'client_kwargs': {}}"),
        ('{"type": "service_account", "private_key_id": "ab12", "private_key": "-----BEGIN PRIVATE KEY-----\\nMIIE"}',
         '{"type": "service_account", "private_key_id": "ab12", "private_key": "***"}'),
        # nothing secret: unchanged, even where an "@" or a port looks like userinfo
        ("postgresql://me@db/ws", "postgresql://me@db/ws"),
        ("http://host:8080/a@b?versionId=3", "http://host:8080/a@b?versionId=3"),
        ("sqlite:////tmp/a:b@c/store.db", "sqlite:////tmp/a:b@c/store.db"),
        # a mistyped scheme separator: these are the URLs that end up quoted in errors
        ("postgresql:/u:pw@h/db and postgresql//u:pw@h/db", "postgresql:/u:***@h/db and postgresql//u:***@h/db"),
    ],
)
def test_redact_masks_credentials_in_any_text(text, shown):
    from wandb_dagster.storage.uri_credentials import redact

    assert redact(text) == shown
    assert redact(shown) == shown  # idempotent: a message redacted twice stays the same


def test_redact_exception_copies_a_chain_only_when_it_leaks():
    import traceback

    from wandb_dagster.storage.uri_credentials import RedactedError, redact_exception

    clean = ValueError("nothing secret")
    assert redact_exception(clean) is clean
    url = "postgresql://u:" + "hunter2" + "@h/db"  # not one literal: tracebacks print source lines
    try:
        try:
            raise OSError(f"connect to {url} failed")
        except OSError as inner:
            raise RuntimeError("wrapper, clean itself") from inner
    except RuntimeError as outer:
        copy = redact_exception(outer)
    assert isinstance(copy, RedactedError) and str(copy) == "RuntimeError: wrapper, clean itself"
    assert str(copy.__cause__) == "OSError: connect to postgresql://u:***@h/db failed"
    printed = "".join(traceback.format_exception(copy))
    assert "hunter2" not in printed and "raise OSError" in printed  # the original tracebacks are kept


SIGNED = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIASIGNEDCRED%2F20260101&X-Amz-Signature=SIGNEDSIG77"


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _printed(exc: BaseException) -> str:
    """Everything a traceback (and Dagster, which follows the same rules) prints of ``exc``'s chain."""
    import traceback

    return "".join(traceback.format_exception(exc))


def test_log_artifact_of_a_signed_url_keeps_its_credentials_out_of_errors(any_ws_env):
    """Before: the default name was the URL's basename with its query, and the invalid-name error quoted the
    signature and the credential."""
    url = f"http://127.0.0.1:{_closed_port()}/data/a.csv?{SIGNED}"
    with wandb.init(project="secrets") as run, pytest.raises(ConnectionError) as err:
        run.log_artifact(url, type="dataset")
    assert "/data/a.csv" in str(err.value)
    for secret in ("AKIASIGNEDCRED", "SIGNEDSIG77"):
        assert secret not in _printed(err.value), secret


def test_log_artifact_of_a_signed_url_is_named_from_its_path(ws_env, http_server):
    url = http_server.put("report.csv", b"a,b\n") + f"?{SIGNED}"
    with wandb.init(project="secrets") as run:
        logged = run.log_artifact(url, type="dataset")
        assert logged.name == f"run-{run.id}-report.csv:v0"
    assert [e.ref for e in logged.manifest] == [http_server.url("report.csv")]


@pytest.mark.parametrize(
    "template",
    ["http://user:PWSECRET9@/x?sig=SIGSECRET9",  # requests: "Invalid URL '<url>': No host supplied"
     "http://user:PWSECRET9@127.0.0.1:99999/x?sig=SIGSECRET9"],  # urllib3: "Failed to parse: <url>"
)
def test_invalid_url_errors_do_not_quote_the_url_credentials(ws_env, template):
    with pytest.raises(ValueError) as err:
        wandb.Artifact("x", type="t").add_reference(template)
    assert "not a valid URL" in str(err.value)
    assert "PWSECRET9" not in _printed(err.value) and "SIGSECRET9" not in _printed(err.value)


@pytest.mark.postgres
def test_a_password_in_the_database_url_query_is_hidden_as_the_userinfo_one(ws_env, postgres_url, tmp_path,
                                                                              monkeypatch):
    """libpq also takes the password as ``?password=...``; SQLAlchemy hides only ``user:password@``. Before,
    ``run.url`` (then the database URL), ``repr(store)`` and the cannot-connect error quoted it."""
    import secrets as tokens

    from sqlalchemy.engine import make_url

    from wandb_dagster.store import DatabaseUnreachableError

    secret = f"querypw{tokens.token_hex(6)}"  # not a literal: tracebacks print source lines
    url = make_url(postgres_url).set(password=None, query={"password": secret})
    monkeypatch.setenv("WANDB_DAGSTER_DATABASE_URL", url.render_as_string(hide_password=False))
    monkeypatch.setenv("WANDB_DAGSTER_STORAGE", str(tmp_path / "blobs"))
    with wandb.init(project="secrets") as run:  # the test server trusts loopback: the password is ignored
        shown = [run.url, repr(run.workspace.store)]
    # run.url is the app's page now (no database URL in it); the store's repr shows the URL, masked.
    assert all(secret not in text for text in shown) and "password=***" in shown[1], shown

    down = url.set(port=_closed_port()).render_as_string(hide_password=False)
    monkeypatch.setenv("WANDB_DAGSTER_DATABASE_URL", down)
    with pytest.raises(DatabaseUnreachableError) as err:
        wandb.init(project="secrets")
    assert "password=***" in str(err.value) and secret not in _printed(err.value)


@pytest.mark.parametrize(
    "url",
    ["postgresql:/postgres:{secret}@127.0.0.1/db",  # SQLAlchemy: "Could not parse SQLAlchemy URL"
     "postgresql://postgres:{secret}@127.0.0.1:54x32/db"],  # a bad port: "invalid literal for int()"
)
def test_an_unparsable_database_url_is_named_with_its_password_hidden(ws_env, monkeypatch, url):
    """Before: SQLAlchemy's ArgumentError, which does not say which URL or what to do."""
    import secrets as tokens

    secret = f"parsepw{tokens.token_hex(6)}"
    monkeypatch.setenv("WANDB_DAGSTER_DATABASE_URL", url.format(secret=secret))
    with pytest.raises(ValueError) as err:
        wandb.init(project="secrets")
    assert "cannot be parsed" in str(err.value) and "postgres:***@127.0.0.1" in str(err.value)
    assert secret not in _printed(err.value)


def test_errors_quoting_a_malformed_uri_mask_its_credentials(ws_env):
    """Before: "not a URI" and "not a workspace URL" errors quoted the value as given."""
    from wandb_dagster.api import Api

    secrets = ["AKIA" + "MALFORMED", "S1G" + "9", "APIKEY" + "4242"]  # not literals: tracebacks print source
    with pytest.raises(ValueError) as err:
        wandb.Artifact("x", type="t").add_reference(
            f"host/a.csv?X-Amz-Credential={secrets[0]}&X-Amz-Signature={secrets[1]}")
    assert "is not a URI" in str(err.value) and "host/a.csv?X-Amz-Credential=***" in str(err.value)
    with pytest.raises(ValueError) as api_err:
        Api(overrides={"base_url": f"https://user:{secrets[2]}@api.wandb.ai"})
    assert "https://user:***@api.wandb.ai" in str(api_err.value)
    for secret in secrets:
        assert secret not in _printed(err.value) + _printed(api_err.value), secret
