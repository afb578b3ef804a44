"""file:// references: resolve (walk + checksum) and download (verified copy), on real files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wandb_dagster.storage import hashing, references
from wandb_dagster.storage.hashing import md5_b64

SPECIAL_NAMES = [
    "a#b.txt",
    "x%41.txt",
    "A.txt",  # what x%41.txt used to decode to
    "q?x=1.txt",
    "sp ace.txt",
    "ünï 日本.txt",
    "pct%2Fslash.txt",
    "d#i?r %/in ner#.txt",
]


def _download_all(found: list[references.Reference], out: Path) -> None:
    for r in found:
        references.download(r.ref, r.digest, r.size, r.extra, out / r.path, entry_path=r.path)


def test_special_character_names_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for i, rel in enumerate(SPECIAL_NAMES):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(f"content {i}: {rel}".encode())

    found = references.resolve(src.as_uri())
    assert sorted(r.path for r in found) == sorted(SPECIAL_NAMES)
    for r in found:
        assert references.file_uri_path(r.ref) == str(src / r.path)
        assert r.ref.startswith(src.as_uri() + "/")
        assert r.digest == md5_b64((src / r.path).read_bytes()) and r.size == (src / r.path).stat().st_size

    out = tmp_path / "out"
    _download_all(found, out)
    for rel in SPECIAL_NAMES:
        assert (out / rel).read_bytes() == (src / rel).read_bytes()
    assert not list(out.rglob("*.part"))  # no temp files left behind

    # The same with a name prefix and a trailing slash on the directory URI.
    named = references.resolve(src.as_uri() + "/", name="data")
    assert sorted(r.path for r in named) == sorted(f"data/{n}" for n in SPECIAL_NAMES)
    _download_all(named, tmp_path / "out2")
    for rel in SPECIAL_NAMES:
        assert (tmp_path / "out2" / "data" / rel).read_bytes() == (src / rel).read_bytes()


def test_symlink_loop_yields_each_file_once(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "f.txt").write_bytes(b"once")
    os.symlink(root, root / "sub" / "loop")  # root/sub/loop -> root (unchecked, this gave 41 entries)
    found = references.resolve(root.as_uri())
    assert [r.path for r in found] == ["sub/f.txt"]
    assert references.file_uri_path(found[0].ref) == str(root / "sub" / "f.txt")


def test_directory_linked_twice_is_walked_once(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (root / "a" / "f.txt").write_bytes(b"once")
    os.symlink(root / "a", root / "b")  # root/b -> root/a: the same directory, seen first as a/
    assert [r.path for r in references.resolve(root.as_uri())] == ["a/f.txt"]


def test_max_objects_error_names_limit_before_hashing_extra_file(tmp_path: Path, monkeypatch) -> None:
    for i in range(5):
        (tmp_path / f"f{i}").write_bytes(b"x%d" % i)
    hashed: list[str] = []
    real_hash_file = hashing.hash_file

    def counting_hash_file(path):
        hashed.append(os.fspath(path))
        return real_hash_file(path)

    monkeypatch.setattr(references, "hash_file", counting_hash_file)
    with pytest.raises(ValueError, match=r"max_objects=2\b"):
        references.resolve(tmp_path.as_uri(), max_objects=2)
    assert len(hashed) == 2
    assert len(references.resolve(tmp_path.as_uri(), max_objects=5)) == 5


def test_changed_file_names_entry_and_both_digests(tmp_path: Path) -> None:
    f = tmp_path / "ref.txt"
    f.write_bytes(b"v1")
    [r] = references.resolve(f.as_uri(), name="data/ref.txt")
    f.write_bytes(b"v2")
    dest = tmp_path / "out" / "ref.txt"
    with pytest.raises(ValueError) as err:
        references.download(r.ref, r.digest, r.size, r.extra, dest, entry_path=r.path)
    message = str(err.value)
    assert "data/ref.txt" in message and md5_b64(b"v1") in message and md5_b64(b"v2") in message
    assert not dest.exists() and not list(dest.parent.iterdir())  # nothing placed, no temp file left


def test_missing_file(tmp_path: Path) -> None:
    f = tmp_path / "gone.txt"
    f.write_bytes(b"here")
    [r] = references.resolve(f.as_uri())
    f.unlink()
    with pytest.raises(FileNotFoundError, match="gone.txt"):
        references.download(r.ref, r.digest, r.size, r.extra, tmp_path / "out" / "gone.txt", entry_path=r.path)
    with pytest.raises(FileNotFoundError):
        references.resolve(f.as_uri())


def test_checksum_false_is_one_untracked_entry(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.txt").write_bytes(b"a")
    (tmp_path / "d" / "b.txt").write_bytes(b"b")
    uri = (tmp_path / "d").as_uri()
    [r] = references.resolve(uri, checksum=False)
    assert r.digest == r.ref == uri and r.size is None and r.path == "d"
    f = tmp_path / "d" / "a.txt"
    [r] = references.resolve(f.as_uri(), checksum=False)
    assert r.digest == r.ref == f.as_uri() and r.size is None
    f.write_bytes(b"changed")  # not tracked: any content downloads
    references.download(r.ref, r.digest, r.size, r.extra, tmp_path / "out" / "a.txt", entry_path=r.path)
    assert (tmp_path / "out" / "a.txt").read_bytes() == b"changed"


def test_unknown_scheme_names_scheme_and_supported(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as err:
        references.resolve("ftp://host/x")
    message = str(err.value)
    assert "'ftp'" in message and "file" in message and "supported" in message
    with pytest.raises(ValueError, match="'ftp'"):
        references.resolve("ftp://host/x", checksum=False)
