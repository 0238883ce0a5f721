"""The `sync:` service (AOSP adb docs/dev/sync.md, daemon/file_sync_service.cpp)."""

from __future__ import annotations

import logging
import stat as st
import struct
from typing import TYPE_CHECKING

from harness.twin.fs import FsError
from harness.twin.transport import Stream

if TYPE_CHECKING:
    from harness.twin.device import Twin

log = logging.getLogger(__name__)

SYNC_MAX_PATH = 1024
SYNC_DATA_MAX = 64 * 1024
_REQ = struct.Struct("<4sI")
_DRY_RUN = 0x80000000  # sendrecv_v2 flag: check only, write nothing
_STAT_V2 = struct.Struct("<4sIQQIIIIQqqq")


async def serve_sync(twin: Twin, stream: Stream) -> None:  # noqa: C901 -- one branch per sync request id (sync.md)
    """Serve sync requests until QUIT, EOF, or a failure (which closes the stream)."""
    while True:
        try:
            raw = await stream.read_exactly(8)
        except Exception as e:  # noqa: BLE001 -- EOF or a dropped transport ends the service
            log.debug("sync: stream ended: %s", e)
            return
        ident, length = _REQ.unpack(raw)
        name = ident.decode("latin-1")
        if name in ("DATA", "DONE"):
            await _fail(stream, f"unexpected {name} outside SEND")
            return
        if length > SYNC_MAX_PATH:
            twin.truth.record("sync_refused", reason="path too long", length=length)
            await _fail(stream, "path too long")
            return
        path = (await stream.read_exactly(length)).decode("utf-8", "replace") if length else ""
        if name == "QUIT":
            return
        if name == "STAT":
            node = twin.fs.lookup(path)
            record = (
                struct.pack("<4sIII", b"STAT", node.mode, node.size, node.mtime)
                if node
                else struct.pack("<4sIII", b"STAT", 0, 0, 0)
            )
            await stream.write(record)
        elif name in ("STA2", "LST2"):
            await stream.write(_stat_v2(name, twin, path))
        elif name == "LIST":
            await _list(twin, stream, path)
        elif name == "LIS2":
            await _list_v2(twin, stream, path)
        elif name == "SEND":
            if not await _send(twin, stream, path):
                return
        elif name == "SND2":
            # send_v2_setup: id "SND2", mode, flags (compression / dry run)
            _ident, mode, flags = struct.unpack("<4sII", await stream.read_exactly(12))
            if flags & ~_DRY_RUN:
                await _fail(stream, f"unsupported compression flags 0x{flags:x}")
                return
            if not await _send(
                twin, stream, f"{path},{mode}", dry_run=bool(flags & _DRY_RUN), proto="SND2"
            ):
                return
        elif name == "RECV":
            if not await _recv(twin, stream, path):
                return
        elif name == "RCV2":
            _ident, flags = struct.unpack("<4sI", await stream.read_exactly(8))
            if flags:
                await _fail(stream, f"unsupported compression flags 0x{flags:x}")
                return
            if not await _recv(twin, stream, path):
                return
        else:
            await _fail(stream, f"unknown command {ident!r}")
            return


async def _fail(stream: Stream, msg: str) -> None:
    data = msg.encode()
    await stream.write(b"FAIL" + struct.pack("<I", len(data)) + data)


def _stat_v2(name: str, twin: Twin, path: str) -> bytes:
    node = twin.fs.lookup(path)
    # id, error, dev, ino, mode, nlink, uid, gid, size, atime, mtime, ctime
    if node is None:
        return struct.pack("<4sIQQIIIIQqqq", name.encode(), 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    return struct.pack(
        "<4sIQQIIIIQqqq",
        name.encode(),
        0,
        0,
        id(node) & 0xFFFFFFFF,
        node.mode,
        1,
        2000,
        2000,
        node.size,
        node.mtime,
        node.mtime,
        node.mtime,
    )


async def _list(twin: Twin, stream: Stream, path: str) -> None:
    try:
        entries = twin.fs.listdir(path)
    except FsError:
        entries = []
    else:
        node = twin.fs.lookup(path)
        entries = [
            (".", node),
            ("..", twin.fs.lookup(twin.fs.norm(path + "/..")) or node),
        ] + entries
    for name, node in entries:
        raw = name.encode()
        await stream.write(
            struct.pack("<4sIIII", b"DENT", node.mode, node.size, node.mtime, len(raw)) + raw
        )
    await stream.write(b"DONE" + bytes(16))


def _stat_v2_fields(node) -> tuple:
    return (
        0,
        0,
        id(node) & 0xFFFFFFFF,
        node.mode,
        1,
        2000,
        2000,
        node.size,
        node.mtime,
        node.mtime,
        node.mtime,
    )


async def _list_v2(twin: Twin, stream: Stream, path: str) -> None:
    """LIS2: DNT2 records (v2 stat + name length + name), then DONE (a zeroed DNT2)."""
    node = twin.fs.lookup(path)
    if node is None or not node.is_dir:
        await stream.write(_STAT_V2.pack(b"DONE", *([0] * 11)) + bytes(4))
        return
    entries = [(".", node), ("..", twin.fs.lookup(twin.fs.norm(path + "/..")) or node)]
    entries += twin.fs.listdir(path)
    for name, child in entries:
        raw = name.encode()
        await stream.write(
            _STAT_V2.pack(b"DNT2", *_stat_v2_fields(child)) + struct.pack("<I", len(raw)) + raw
        )
    await stream.write(_STAT_V2.pack(b"DONE", *([0] * 11)) + bytes(4))


async def _send(
    twin: Twin, stream: Stream, spec: str, dry_run: bool = False, proto: str = "SEND"
) -> bool:
    path, _, mode_text = spec.rpartition(",")
    if not path:
        path, mode_text = spec, "33188"
    try:
        mode = int(mode_text)
    except ValueError:
        mode = st.S_IFREG | 0o644
    chunks: list[bytes] = []
    total = 0
    while True:
        ident, length = _REQ.unpack(await stream.read_exactly(8))
        if ident == b"DATA":
            if length > SYNC_DATA_MAX:
                await _fail(stream, f"data chunk of {length} bytes exceeds {SYNC_DATA_MAX}")
                return False
            chunks.append(await stream.read_exactly(length))
            total += length
        elif ident == b"DONE":
            mtime = length
            break
        else:
            await _fail(stream, f"unexpected {ident!r} in SEND")
            return False
    if dry_run:
        twin.truth.record("sync_send", path=path, size=total, proto=proto, dry_run=True)
        await stream.write(b"OKAY" + bytes(4))
        return True
    try:
        parent = twin.fs.norm(path).rsplit("/", 1)[0] or "/"
        if twin.fs.lookup(parent) is None:
            twin.fs.mkdir(parent, parents=True)  # adbd's secure_mkdirs: push makes missing dirs
        twin.fs.write(path, b"".join(chunks), mode=mode, mtime=mtime)
    except FsError as e:
        await _fail(stream, f"couldn't create file: {e.reason}")
        return True
    twin.truth.record("sync_send", path=path, size=total, proto=proto)
    await stream.write(b"OKAY" + bytes(4))
    return True


async def _recv(twin: Twin, stream: Stream, path: str) -> bool:
    try:
        data = twin.fs.read(path)
    except FsError as e:
        await _fail(stream, f"open failed: {e.reason}")
        return False
    # one DATA record per WRTE (adbutils reads a record header with one recv)
    step = min(SYNC_DATA_MAX, stream.conn.max_payload - 8)
    view = memoryview(data)
    for i in range(0, len(view), step):
        chunk = view[i : i + step]
        await stream.write(b"DATA" + struct.pack("<I", len(chunk)) + bytes(chunk))
    await stream.write(b"DONE" + bytes(4))
    twin.truth.record("sync_recv", path=path, size=len(data))
    return True
