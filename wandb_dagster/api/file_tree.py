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


@dataclasses.dataclass(slots=True)
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

    def folder_of(path: str) -> FileNode:
        # Made once per folder (its parents first); a file costs one dict lookup of its parent's path.
        found = folders.get(path)
        if found is None:
            parent_path, _, name = path.rpartition("/")
            found = folders[path] = FileNode(name=name, path=path)
            folder_of(parent_path).children.append(found)
        return found

    for entry in manifest:
        parent_path, _, name = entry.path.rpartition("/")
        size = entry.size or 0
        folder_of(parent_path).children.append(FileNode(name, entry.path, entry, [], size, 1))
    # Bottom-up by depth (deepest folders first), so each folder sums finished children; no recursion, as a
    # manifest can nest deeper than Python's recursion limit allows.
    for folder in sorted(folders.values(), key=lambda f: f.path.count("/") + (f.path != ""), reverse=True):
        folder.children.sort(key=_order)
        folder.size = sum(c.size for c in folder.children)
        folder.file_count = sum(c.file_count for c in folder.children)
    return root


def _order(node: FileNode) -> tuple[bool, str]:
    return (node.entry is not None, node.name)  # folders first, then files, each by name
