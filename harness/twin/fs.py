"""The twin's file system: an in-memory tree with Unix modes and mtimes."""

from __future__ import annotations

import posixpath
import stat as st
import time
from dataclasses import dataclass, field

DIR_MODE = st.S_IFDIR | 0o771
FILE_MODE = st.S_IFREG | 0o644
CHR_MODE = st.S_IFCHR | 0o666
LINK_MODE = st.S_IFLNK | 0o777
DEVICES = ("/dev/null", "/dev/zero", "/dev/random", "/dev/urandom", "/dev/tty")
_MAX_LINKS = 40  # ELOOP after this many symlinks, as Linux
MAX_FILE_BYTES = 512 << 20  # one file's cap: `yes > f` ends with ENOSPC, not the twin's memory
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
    target: str | None = None  # a symlink's target

    @property
    def is_link(self) -> bool:
        return st.S_ISLNK(self.mode)

    @property
    def is_chr(self) -> bool:
        return st.S_ISCHR(self.mode)

    @property
    def is_dir(self) -> bool:
        return st.S_ISDIR(self.mode)

    @property
    def size(self) -> int:
        if self.is_link:
            return len(self.target or "")
        if self.is_chr:
            return 0
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
ELOOP = "Too many levels of symbolic links"
ENOSPC = "No space left on device"


EROFS = "Read-only file system"
READ_ONLY_DIRS = ("/system",)  # mounted read-only: the shell user cannot change them


class FileSystem:
    def __init__(self) -> None:
        self.root = Node(DIR_MODE, int(time.time()))
        self.sealed = False  # the image is built; from now on READ_ONLY_DIRS refuse writes
        for d in _INITIAL_DIRS:
            self.mkdir(d, parents=True)
        dev = self.lookup("/dev")
        for path in DEVICES:
            dev.children[posixpath.basename(path)] = Node(CHR_MODE, self.root.mtime, bytearray())
        self.sealed = True

    def check_writable(self, path: str) -> None:
        """Raise FsError(EROFS) for a path on a read-only mount (once the image is sealed)."""
        path = self.norm(path)
        if self.sealed and any(path == d or path.startswith(d + "/") for d in READ_ONLY_DIRS):
            raise FsError(path, EROFS)

    @staticmethod
    def norm(path: str, cwd: str = "/") -> str:
        return posixpath.normpath(posixpath.join(cwd, path)) if path else cwd

    def lookup(self, path: str, follow: bool = True) -> Node | None:
        """The node at path (symlinks followed; the last one only with follow=True)."""
        try:
            return self._walk(self.norm(path), follow, 0)[0]
        except FsError:
            return None

    def _walk(self, path: str, follow: bool, depth: int) -> tuple[Node | None, str]:
        node, real = self.root, "/"
        parts = [p for p in path.strip("/").split("/") if p]
        for i, part in enumerate(parts):
            if not node.is_dir or part not in node.children:
                return None, path
            child = node.children[part]
            here = posixpath.join(real, part)
            if child.is_link and (follow or i < len(parts) - 1):
                if depth >= _MAX_LINKS:
                    raise FsError(path, ELOOP)
                dest = self.norm(child.target or "", real)
                child, here = self._walk(dest, True, depth + 1)
                if child is None:
                    return None, path
            node, real = child, here
        return node, real

    def realpath(self, path: str) -> str:
        """The path with every symlink resolved (the path itself when it does not exist)."""
        node, real = self._walk(self.norm(path), True, 0)
        return real if node is not None else self.norm(path)

    def symlink(self, target: str, path: str) -> None:
        parent, name = self._parent(path)
        if name in parent.children:
            raise FsError(self.norm(path), EEXIST)
        parent.children[name] = Node(LINK_MODE, int(time.time()), None, target=target)

    def rename(self, src: str, dst: str) -> None:
        sparent, sname = self._parent(src)
        node = sparent.children.get(sname)
        if node is None:
            raise FsError(self.norm(src), ENOENT)
        dparent, dname = self._parent(dst)
        old = dparent.children.get(dname)
        if old is not None and old.is_dir and not node.is_dir:
            raise FsError(self.norm(dst), EISDIR)
        del sparent.children[sname]
        dparent.children[dname] = node

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
        if node is not None and node.is_link:
            node = self.lookup(path)
            if node is None:
                parent, name = self._parent(self.realpath(path))
                node = parent.children.get(name)
        if node is not None and node.is_dir:
            raise FsError(path, EISDIR)
        if node is not None and node.is_chr:
            return  # /dev/null and friends swallow writes
        now = int(time.time()) if mtime is None else mtime
        if node is None:
            perm = mode if mode is not None else FILE_MODE
            node = Node(st.S_IFREG | st.S_IMODE(perm), now, bytearray())
            parent.children[name] = node
        if (len(node.data or b"") if append else 0) + len(data) > MAX_FILE_BYTES:
            raise FsError(path, ENOSPC)
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
