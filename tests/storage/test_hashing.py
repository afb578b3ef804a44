from __future__ import annotations

import hashlib
import os
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wandb_dagster.storage import hashing
from wandb_dagster.storage.hashing import (
    CHUNK,
    EMPTY_MD5_B64,
    EMPTY_MD5_HEX,
    b64_to_hex,
    check_hex,
    hash_file,
    hex_to_b64,
    md5_b64,
)


def test_w_and_b_vectors_for_bytes():
    assert md5_b64(b"") == EMPTY_MD5_B64 == "1B2M2Y8AsgTpgAmY7PhCfg=="
    assert md5_b64(b"hello\n") == "sZRqySSS0jR8YjW00mERhA=="
    assert hashlib.md5(b"").hexdigest() == EMPTY_MD5_HEX


def test_w_and_b_vectors_for_files(tmp_path: Path):
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    hello = tmp_path / "hello.txt"
    hello.write_bytes(b"hello\n")
    assert hash_file(empty) == (EMPTY_MD5_HEX, 0)
    assert hash_file(hello) == ("b1946ac92492d2347c6235b4d2611184", 6)
    assert hex_to_b64(hash_file(hello)[0]) == "sZRqySSS0jR8YjW00mERhA=="
    assert b64_to_hex("sZRqySSS0jR8YjW00mERhA==") == "b1946ac92492d2347c6235b4d2611184"


@given(st.binary(min_size=16, max_size=16))
def test_hex_and_base64_round_trip(raw: bytes):
    assert b64_to_hex(hex_to_b64(raw.hex())) == raw.hex()


@pytest.mark.parametrize("size", [CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17])
def test_hash_file_across_chunk_boundaries(tmp_path: Path, size: int):
    data = os.urandom(size)
    path = tmp_path / "f"
    path.write_bytes(data)
    assert hash_file(path) == (hashlib.md5(data).hexdigest(), size)


def test_hash_file_memory_is_bounded(tmp_path: Path):
    path = tmp_path / "sparse"
    with open(path, "wb") as f:
        f.truncate(64 * CHUNK)  # 64 MiB of zeros without writing them
    tracemalloc.start()
    try:
        hexdigest, size = hash_file(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (hexdigest, size) == (hashlib.md5(bytes(64 * CHUNK)).hexdigest(), 64 * CHUNK)
    assert peak < 4 * CHUNK, f"hashing a 64 MiB file peaked at {peak} bytes of Python memory"


@pytest.mark.parametrize(
    "bad", ["", "B1946AC92492D2347C6235B4D2611184", "b1946ac92492d2347c6235b4d261118", "../" + "0" * 29, "g" * 32, None]
)
def test_check_hex_rejects_anything_but_32_lowercase_hex(bad):
    with pytest.raises(ValueError) as info:
        check_hex(bad)
    assert repr(bad) in str(info.value)
    with pytest.raises(ValueError):
        hex_to_b64(bad)


@pytest.mark.parametrize("bad", ["", "sZRqySSS0jR8YjW00mERhA", "not base64 at all!!", "AAAA"])
def test_b64_to_hex_rejects_non_digests(bad: str):
    with pytest.raises(ValueError, match="base64 MD5"):
        b64_to_hex(bad)


def test_hash_file_reads_what_is_there_when_the_size_changed(tmp_path: Path, monkeypatch):
    # fstat says 3 bytes but there are 6 (the file grew in between): the digest covers all that was read.
    path = tmp_path / "grows"
    path.write_bytes(b"hello\n")
    real_fstat = os.fstat

    def stale_fstat(fd):
        st = real_fstat(fd)
        return os.stat_result(tuple(st)[:6] + (3,) + tuple(st)[7:])

    monkeypatch.setattr(hashing.os, "fstat", stale_fstat)
    assert hash_file(path) == ("b1946ac92492d2347c6235b4d2611184", 6)


def test_hash_file_of_a_folder_says_so(tmp_path: Path):
    (tmp_path / "data").mkdir()
    with pytest.raises(IsADirectoryError, match=r"'.*data' is a directory.*use add_dir"):
        hash_file(tmp_path / "data")
