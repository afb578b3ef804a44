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
