"""harness/native.py: the C allocator's arena cap that keeps a media process's RSS flat.

Each case runs in a fresh interpreter: an arena, once made, stays for the process's life."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.native import arena_count, c_heap_in_use_kib

ROOT = Path(__file__).resolve().parents[1]
THREADS = 6
# THREADS threads allocate at the same time (a barrier holds them alive), as an AgentBot's event
# loop, encoder and decoder threads do: glibc gives each its own arena unless capped.
PROBE = textwrap.dedent(
    f"""
    import sys, threading
    from harness.native import arena_count, limit_malloc_arenas
    if sys.argv[1] == "cap":
        assert limit_malloc_arenas()
    barrier = threading.Barrier({THREADS} + 1)
    keep = []
    def work():
        keep.append([bytearray(8192) for _ in range(50)])  # > 512 B: the C heap, not pymalloc
        barrier.wait(10)
        barrier.wait(10)
    threads = [threading.Thread(target=work) for _ in range({THREADS})]
    for t in threads:
        t.start()
    barrier.wait(10)
    print(arena_count())
    barrier.wait(10)
    for t in threads:
        t.join(10)
    """
)

pytestmark = pytest.mark.skipif(arena_count() is None, reason="glibc only (malloc_info)")


def _arenas(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(out.stdout.strip())


def test_capped_threads_share_two_arenas_and_uncapped_ones_do_not():
    assert _arenas("cap") <= 2
    assert _arenas("default") > 2  # the probe can fail: without the cap each thread gets its own


def test_the_c_heap_in_use_is_counted():
    before = c_heap_in_use_kib()
    block = bytearray(8 * 1024 * 1024)  # 8 MiB: mmapped by malloc, counted in hblkhd
    assert c_heap_in_use_kib() >= before + 8 * 1024 - 64
    del block
