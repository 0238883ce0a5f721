"""The twin's file system: an in-memory tree with Unix modes and mtimes."""

from __future__ import annotations

import posixpath
import stat as st
import time
from dataclasses import dataclass, field

DIR_MODE = st.S_IFDIR | 0o771
FILE_MODE = st.S_IFREG | 0o644
_INITIAL_DIRS = (
    "/system/bin",
    "/system/xbin",
    "/system/framework",
    "/system/app",
    "/data/local/tmp",
    "/data/app",
    "/data/misc/adb",
    "/sdcard/DCIM/Camera",
    "/sdcard/Download",
    "/sdcard/Pictures",
    "/storage/emulated/0",
    "/proc",
    "/dev",
    "/mnt/sdcard",
    "/cache",
    "/etc",
)


@dataclass
class Node:
    mode: int
    mtime: int
    data: bytearray | None = None  # None for directories
    children: dict[str, Node] = field(default_factory=dict)

    @property
    def is_dir(self) -> bool:
        return st.S_ISDIR(self.mode)

    @property
    def size(self) -> int:
        return len(self.data) if self.data is not None else 4096


class FsError(Exception):
    """errno-style failure; str() is the message Android's tools print."""

    def __init__(self, path: str, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


ENOENT = "No such file or directory"
EISDIR = "Is a directory"
ENOTDIR = "Not a directory"
EEXIST = "File exists"
ENOTEMPTY = "Directory not empty"


EROFS = "Read-only file system"
READ_ONLY_DIRS = ("/system",)  # mounted read-only: the shell user cannot change them


class FileSystem:
    def __init__(self) -> None:
        self.root = Node(DIR_MODE, int(time.time()))
        self.sealed = False  # the image is built; from now on READ_ONLY_DIRS refuse writes
        for d in _INITIAL_DIRS:
            self.mkdir(d, parents=True)
        self.sealed = True

    def check_writable(self, path: str) -> None:
        """Raise FsError(EROFS) for a path on a read-only mount (once the image is sealed)."""
        path = self.norm(path)
        if self.sealed and any(path == d or path.startswith(d + "/") for d in READ_ONLY_DIRS):
            raise FsError(path, EROFS)

    @staticmethod
    def norm(path: str, cwd: str = "/") -> str:
        return posixpath.normpath(posixpath.join(cwd, path)) if path else cwd

    def lookup(self, path: str) -> Node | None:
        node = self.root
        for part in self.norm(path).strip("/").split("/"):
            if not part:
                continue
            if not node.is_dir or part not in node.children:
                return None
            node = node.children[part]
        return node

    def _parent(self, path: str) -> tuple[Node, str]:
        path = self.norm(path)
        head, name = posixpath.split(path)
        parent = self.lookup(head)
        if parent is None:
            raise FsError(path, ENOENT)
        if not parent.is_dir:
            raise FsError(path, ENOTDIR)
        if not name:
            raise FsError(path, EISDIR)
        return parent, name

    def read(self, path: str) -> bytes:
        node = self.lookup(path)
        if node is None:
            raise FsError(path, ENOENT)
        if node.is_dir:
            raise FsError(path, EISDIR)
        return bytes(node.data or b"")

    def write(
        self,
        path: str,
        data: bytes,
        mode: int | None = None,
        append: bool = False,
        mtime: int | None = None,
    ) -> None:
        self.check_writable(path)
        parent, name = self._parent(path)
        node = parent.children.get(name)
        if node is not None and node.is_dir:
            raise FsError(path, EISDIR)
        now = int(time.time()) if mtime is None else mtime
        if node is None:
            perm = mode if mode is not None else FILE_MODE
            node = Node(st.S_IFREG | st.S_IMODE(perm), now, bytearray())
            parent.children[name] = node
        if append:
            node.data += data
        else:
            node.data = bytearray(data)
        node.mtime = now

    def mkdir(self, path: str, parents: bool = False) -> None:
        path = self.norm(path)
        if path == "/":
            return
        existing = self.lookup(path)
        if existing is not None:
            if parents and existing.is_dir:
                return
            raise FsError(path, EEXIST)
        self.check_writable(path)
        head, name = posixpath.split(path)
        if parents and self.lookup(head) is None:
            self.mkdir(head, parents=True)
        parent, name = self._parent(path)
        parent.children[name] = Node(DIR_MODE, int(time.time()))

    def remove(self, path: str, recursive: bool = False) -> None:
        self.check_writable(path)
        parent, name = self._parent(path)
        node = parent.children.get(name)
        if node is None:
            raise FsError(path, ENOENT)
        if node.is_dir and node.children and not recursive:
            raise FsError(path, ENOTEMPTY)
        if node.is_dir and not recursive:
            raise FsError(path, EISDIR)
        del parent.children[name]

    def listdir(self, path: str) -> list[tuple[str, Node]]:
        node = self.lookup(path)
        if node is None:
            raise FsError(path, ENOENT)
        if not node.is_dir:
            raise FsError(path, ENOTDIR)
        return sorted(node.children.items())
