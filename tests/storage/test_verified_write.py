"""The one verified write (storage/verified_write.py) and the one reachability probe (storage/access.py)."""

from __future__ import annotations

import hashlib
import os
import socket
from pathlib import Path

import pytest

from wandb_dagster.storage import access
from wandb_dagster.storage.verified_write import NAME_MAX, file_chunks, temp_beside, write_verified

HELLO = b"hello\n"
HELLO_HEX = hashlib.md5(HELLO).hexdigest()


def expect(hexdigest: str, size: int | None = None):
    def check(actual: str, written: int) -> None:
        if actual != hexdigest or (size is not None and written != size):
            raise ValueError(f"got {actual} ({written} bytes)")

    return check


@pytest.mark.parametrize(
    "name",
    [
        "model.pt",
        "n" * 250,
        "é" * 125,  # 250 bytes of two-byte characters
        "日" * 83,  # 249 bytes of three-byte characters
        os.fsdecode(b"\xff" * 200 + b"x" * 50),  # not UTF-8 at all (surrogate-escaped bytes)
    ],
    ids=["short", "ascii-250", "2-byte-250", "3-byte-249", "undecodable-250"],
)
def test_temp_names_stay_within_name_max(tmp_path: Path, name: str) -> None:
    dest = f"{tmp_path}/{name}"
    tmp = temp_beside(dest)
    parent, tmp_name = os.path.split(tmp)
    assert parent == str(tmp_path) and tmp_name.startswith(".") and tmp_name.endswith(".part")
    assert len(os.fsencode(tmp_name)) <= NAME_MAX
    if len(os.fsencode(name)) < 200:
        assert tmp_name.startswith(f".{name}.")  # short names are kept whole, for whoever finds a leftover
    assert temp_beside(dest) != tmp
    with open(tmp, "wb"):  # the filesystem accepts it
        pass


def test_only_checked_content_is_placed(tmp_path: Path) -> None:
    dest = tmp_path / "out" / "file.bin"
    assert write_verified([HELLO[:2], HELLO[2:]], dest, expect(HELLO_HEX, 6)) == (HELLO_HEX, 6)
    assert dest.read_bytes() == HELLO
    dest.write_bytes(b"previous")
    with pytest.raises(ValueError, match="got"):
        write_verified([b"other"], dest, expect(HELLO_HEX))
    with pytest.raises(ValueError, match="5 bytes"):
        write_verified([HELLO[:5]], dest, expect(hashlib.md5(HELLO[:5]).hexdigest(), 6))
    assert dest.read_bytes() == b"previous" and os.listdir(dest.parent) == ["file.bin"], "no temp file left"


def test_a_failing_source_leaves_nothing(tmp_path: Path) -> None:
    def broken():
        yield b"half of it"
        raise ConnectionError("the transfer broke off")

    with pytest.raises(ConnectionError):
        write_verified(broken(), tmp_path / "x", expect(HELLO_HEX))
    assert os.listdir(tmp_path) == []


def test_temp_elsewhere_sealed_and_placed_by_the_caller(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.write_bytes(HELLO)
    placed = []

    def place(tmp: str, dest: str) -> None:
        placed.append((tmp, dest))
        os.replace(tmp, dest)

    dest = tmp_path / "entries" / "b1"
    dest.parent.mkdir()
    with open(src, "rb", buffering=0) as f:
        write_verified(
            file_chunks(f), dest, expect(HELLO_HEX), tmp=str(tmp_path / "tmp" / "fill-1"), mode=0o444,
            seal=lambda fd: os.utime(fd, ns=(0, 946_684_800_000_000_000)), place=place,
        )
    assert placed == [(str(tmp_path / "tmp" / "fill-1"), str(dest))]
    st = dest.stat()
    assert dest.read_bytes() == HELLO and st.st_mtime_ns == 946_684_800_000_000_000 and st.st_mode & 0o777 == 0o444


def test_file_chunks_reads_everything_in_one_buffer(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 5)
    (tmp_path / "f").write_bytes(data)
    with open(tmp_path / "f", "rb", buffering=0) as f:
        assert b"".join(bytes(c) for c in file_chunks(f)) == data


def test_the_probe_connects_once_or_raises() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        access.probe(f"http://127.0.0.1:{port}/some/path")
        access.probe(f"127.0.0.1:{port}")  # STORAGE_EMULATOR_HOST may be host:port without a scheme
    with pytest.raises(OSError):
        access.probe(f"http://127.0.0.1:{port}", timeout=2)  # nobody listens there any more
    access.probe("file:///no/host")  # nothing to probe
