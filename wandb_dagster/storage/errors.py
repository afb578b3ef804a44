"""Errors raised by the storage layer: content that was not what it claimed (ValueError subclasses), a storage
root that cannot be used, a missing blob, a folder where a file was expected.

Example::

    >>> from wandb_dagster.storage.errors import CorruptBlobError
    >>> err = CorruptBlobError("0" * 32, "f" * 32, "/data/blobs")
    >>> isinstance(err, ValueError), err.expected_hex
    (True, '00000000000000000000000000000000')
"""

from __future__ import annotations

import errno
import os
import shutil

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
"""The errnos of a full filesystem or an exhausted quota."""


class ContentChangedError(ValueError):
    """A file's content differed from the digest computed for it moments before (it is being written)."""

    def __init__(self, path: str | os.PathLike[str], expected_hex: str, actual_hex: str) -> None:
        self.path = os.fspath(path)
        self.expected_hex = expected_hex
        self.actual_hex = actual_hex
        super().__init__(
            f"{self.path!r} changed while it was being logged (expected MD5 {expected_hex}, read {actual_hex}); "
            "nothing was stored for it. Log it again once whatever is writing the file has finished."
        )

    def __reduce__(self):  # keep the exception picklable across processes despite the custom __init__
        return (type(self), (self.path, self.expected_hex, self.actual_hex))


class CorruptBlobError(ValueError):
    """Stored bytes do not hash to the digest that names them.

    The blob store knows only the digest and where the blob is; the layer that knows which artifact entries
    (and which version) name it adds them with :meth:`for_entries`, so the message says what to re-log.
    """

    def __init__(
        self, hexdigest: str, actual_hex: str, location: str, entries: tuple[str, ...] = (), version: str | None = None
    ) -> None:
        self.expected_hex = hexdigest
        self.actual_hex = actual_hex
        self.location = location
        self.entries = tuple(entries)
        self.version = version
        named = ""
        if self.entries:
            shown = ", ".join(repr(e) for e in self.entries[:5])
            more = f" and {len(self.entries) - 5} more" if len(self.entries) > 5 else ""
            named = f"artifact entry {shown}{more}" + (f" of {version!r}" if version else "") + ": "
        super().__init__(
            f"{named}blob {hexdigest} at {location!r} is corrupt: its content hashes to {actual_hex}. "
            "Nothing was written to the destination; restore the blob from a backup or log the file again."
        )

    def for_entries(self, entries: tuple[str, ...], version: str | None) -> CorruptBlobError:
        """The same refusal, naming the artifact entries that hold this blob and their version."""
        return CorruptBlobError(self.expected_hex, self.actual_hex, self.location, entries, version)

    def __reduce__(self):
        return (type(self), (self.expected_hex, self.actual_hex, self.location, self.entries, self.version))


class StorageAccessError(OSError):
    """The workspace's storage root cannot be used: missing bucket, refused credentials, unreachable endpoint."""


def missing_blob(hexdigest: str, root: str) -> FileNotFoundError:
    """The error every blob store raises for a blob it does not hold, naming the digest and the root."""
    return FileNotFoundError(
        f"blob {hexdigest} is not in the blob store at {root!r}; the version that names it is "
        "incomplete or the blob was deleted (log the file again to restore it)"
    )


class MissingBlobsError(FileNotFoundError):
    """Blobs that metadata was about to name are not in the store (deleted by hand or by gc, or lost by a
    crash): :meth:`~wandb_dagster.storage.backend.BlobBackend.sync` raises it, so no version names them."""

    def __init__(self, hexdigests: list[str], root: str) -> None:
        self.hexdigests = sorted(hexdigests)
        self.root = root
        more = len(self.hexdigests) - 3
        shown = ", ".join(self.hexdigests[:3]) + (f" and {more} more" if more > 0 else "")
        super().__init__(
            errno.ENOENT,
            f"{len(self.hexdigests)} blob(s) are not in the blob store at {root!r} ({shown}); nothing that "
            "names them was committed (log the files again to restore them)",
        )

    def __reduce__(self):  # picklable across processes despite the custom __init__
        return (type(self), (self.hexdigests, self.root))


class StorageFullError(OSError):
    """The filesystem (or quota, or database server) holding part of the workspace has no room left.

    An OSError with errno ENOSPC, so code that handles a full disk already handles it; the message names
    the location, the bytes needed when known and the bytes free."""

    def __init__(self, location: str, needed: int | None = None, free: int | None = None, what: str = "") -> None:
        self.location, self.needed, self.free = location, needed, free
        amounts = []
        if needed is not None:
            amounts.append(f"{needed:,} bytes needed")
        if free is not None:
            amounts.append(f"{free:,} bytes free")
        detail = f" ({', '.join(amounts)})" if amounts else ""
        super().__init__(
            errno.ENOSPC,
            f"No space left for {what or 'the workspace'} at {location!r}{detail}; nothing was committed. "
            "Free some space (or point the workspace elsewhere) and try again.",
        )

    def __reduce__(self):  # picklable across processes despite the custom __init__
        return (type(self), (self.location, self.needed, self.free))


def free_bytes(path: str | os.PathLike[str]) -> int | None:
    """Bytes available to this user on the filesystem holding ``path`` (its nearest existing parent)."""
    p = os.path.abspath(os.fspath(path))
    while not os.path.exists(p) and os.path.dirname(p) != p:
        p = os.path.dirname(p)
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return None


def out_of_space(path: str | os.PathLike[str], needed: int | None = None, what: str = "") -> StorageFullError:
    """The error for a write that failed with ENOSPC/EDQUOT under ``path``."""
    return StorageFullError(os.fspath(path), needed, free_bytes(path), what)


def is_a_directory(path: str | os.PathLike[str]) -> IsADirectoryError:
    """What storing or hashing a folder as if it were a file raises (instead of EISDIR from deep inside)."""
    return IsADirectoryError(
        errno.EISDIR,
        f"{os.fspath(path)!r} is a directory, not a file: only files can be stored or hashed one by one; "
        "use add_dir to log a folder",
    )
