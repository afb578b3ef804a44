"""A version's manifest as a tree of folders and files, for a file browser.

Entry paths are ``/``-separated (validated when the manifest is read: no ``..``, no leading ``/``), so the
tree is built from names alone and nothing here touches a file system. Example::

    >>> from wandb_dagster.sdk.manifest import Manifest, ManifestEntry
    >>> m = Manifest()
    >>> m.add(ManifestEntry(path="data/train.csv", digest="sZRqySSS0jR8YjW00mERhA==", size=6))
    >>> m.add(ManifestEntry(path="README.md", digest="1B2M2Y8AsgTpgAmY7PhCfg==", size=0))
    >>> root = file_tree(m)
    >>> [(c.name, c.is_dir, c.size) for c in root.children]
    [('data', True, 6), ('README.md', False, 0)]
    >>> root.find("data/train.csv").hex
    'b1946ac92492d2347c6235b4d2611184'
"""

from __future__ import annotations

import dataclasses

from wandb_dagster.sdk.manifest import Manifest, ManifestEntry
from wandb_dagster.storage.hashing import b64_to_hex


@dataclasses.dataclass
class FileNode:
    """A folder (``entry`` None, ``children`` sorted: folders first, then files, each by name) or a file.

    ``size`` is the file's size, or the sum of the sizes of the files below a folder (files of unknown size,
    some references, count 0); ``file_count`` the number of files below (1 for a file).
    """

    name: str
    path: str  # "" for the root
    entry: ManifestEntry | None = None
    children: list[FileNode] = dataclasses.field(default_factory=list)
    size: int = 0
    file_count: int = 0

    @property
    def is_dir(self) -> bool:
        return self.entry is None

    @property
    def digest(self) -> str | None:
        """The manifest's digest of the file (base64 MD5 for a stored file; for a reference, what its
        handler recorded, e.g. an ETag)."""
        return None if self.entry is None else self.entry.digest

    @property
    def ref(self) -> str | None:
        """The URI of a reference entry (``add_reference``); None for a stored file or a folder."""
        return None if self.entry is None else self.entry.ref

    @property
    def hex(self) -> str | None:
        """The blob's name (MD5 hex) of a stored file; None for a folder or a reference."""
        if self.entry is None or self.entry.ref is not None:
            return None
        try:
            return b64_to_hex(self.entry.digest)
        except ValueError:
            return None  # a tampered digest names no blob; the browser shows the file as missing

    def find(self, path: str) -> FileNode:
        """The node at ``path`` below this one (``""``: this one). KeyError naming the path when absent."""
        node = self
        for part in [p for p in path.split("/") if p] if path else []:
            child = next((c for c in node.children if c.name == part), None)
            if child is None:
                raise KeyError(f"no file or folder {path!r} in this version")
            node = child
        return node


def file_tree(manifest: Manifest) -> FileNode:
    """The folders and files of ``manifest``, with folder sizes and file counts summed up."""
    root = FileNode(name="", path="")
    folders: dict[str, FileNode] = {"": root}
    for entry in manifest:
        parent = root
        parts = entry.path.split("/")
        for i, part in enumerate(parts[:-1]):
            prefix = "/".join(parts[: i + 1])
            folder = folders.get(prefix)
            if folder is None:
                folder = folders[prefix] = FileNode(name=part, path=prefix)
                parent.children.append(folder)
            parent = folder
        parent.children.append(FileNode(name=parts[-1], path=entry.path, entry=entry, size=entry.size or 0,
                                        file_count=1))  # fmt: skip
    _total(root)
    return root


def _total(root: FileNode) -> None:
    # Iterative post-order: a manifest can nest deeper than Python's recursion limit allows.
    stack: list[tuple[FileNode, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if not node.is_dir:
            continue
        if done:
            node.children.sort(key=lambda c: (not c.is_dir, c.name))
            node.size = sum(c.size for c in node.children)
            node.file_count = sum(c.file_count for c in node.children)
        else:
            stack.append((node, True))
            stack.extend((c, False) for c in node.children if c.is_dir)
