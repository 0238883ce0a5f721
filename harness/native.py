"""The process's native memory (glibc's allocator): cap its arenas, return free pages, count
what is in use. Used by the twin process and by the harness process (the pytest process and
its xdist workers, where the AgentBots' threads run), each for itself.

Why: a live media session allocates tens of MiB natively (codec contexts, frames, SRTP buffers)
on several threads (the AgentBot's event loop, encoders, decoders). glibc gives each thread that
meets a busy arena one of its own (up to 8 per core), and memory freed there stays scattered
over them: RSS crept up 0.3-1 MiB per session with the C heap in use flat (benchmarks/soak.py).
With two arenas both processes level off. Every function here is a no-op returning False or
None where there is no glibc (musl, macOS).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

MALLOC_ARENAS = 2  # glibc arenas of a process that runs media sessions (its threads share them)
_M_ARENA_MAX = -8  # mallopt parameter (malloc.h)


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas, as the environment variable MALLOC_ARENA_MAX does, for this
    process only (children are not affected). Arenas made before the call stay: call it at
    start-up, before the threads that run sessions exist. Returns False where there is no glibc."""
    libc = _libc()
    try:
        return bool(libc is not None and libc.mallopt(_M_ARENA_MAX, arenas))
    except AttributeError:
        return False


def release_free_memory() -> bool:
    """Hand the C heap's free pages back to the OS (glibc's malloc_trim, every arena). Blocking
    (tens of ms on a large heap): run it off an event loop. Returns False where there is no glibc."""
    libc = _libc()
    try:
        if libc is None:
            return False
        libc.malloc_trim(0)
    except AttributeError:
        return False
    return True


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def c_heap_in_use_kib() -> int | None:
    """KiB the C heap has handed out and not had back (glibc >= 2.33 mallinfo2: in-use chunks of
    every arena plus mmapped blocks), None elsewhere. Flat while RSS grows: fragmentation, not
    a leak."""
    libc = _libc()
    try:
        fn = libc.mallinfo2 if libc is not None else None
    except AttributeError:
        fn = None
    if fn is None:
        return None
    fn.restype = _Mallinfo2
    info = fn()
    return (info.uordblks + info.hblkhd) // 1024


def arena_count() -> int | None:
    """How many malloc arenas this process has (glibc's malloc_info: one <heap> per arena), None
    where there is no glibc. With limit_malloc_arenas() in effect, at most its cap."""
    import os
    import tempfile

    libc = _libc()
    if libc is None or not hasattr(libc, "malloc_info"):
        return None
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    fd, path = tempfile.mkstemp(prefix="hil-malloc-info-")
    os.close(fd)
    try:
        fp = libc.fopen(path.encode(), b"w")
        if not fp:
            return None
        try:
            libc.malloc_info(0, fp)
        finally:
            libc.fclose(fp)
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().count("<heap nr=")
    finally:
        os.unlink(path)
