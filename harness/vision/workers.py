"""OpenCV's worker threads around the harness' own analysis (the one place they are set).

The harness' frames are small (a share of 640x400, a pane of a few hundred pixels): OpenCV's
thread pool (one worker per core) splits each call into pieces that cost more in hand-offs and
wake-ups than they save. Measured on a share window (90 frames, 2 cores, session 7): 8.2 ms of
process CPU per frame with cv2's default pool, 6.6 ms with no pool (`cv2.setNumThreads(0)`),
the main thread's share the same. So the analysis (fidelity, reference frames, the polled
code reads) runs with `analysis_threads()`, which restores the caller's setting on the way out:
the user's own OpenCV code keeps its pool outside the analysis. The setting is OpenCV's, for
the whole process: while an analysis block runs, other threads' OpenCV calls run without the
pool too (slower in wall time for large images, not in CPU).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

ANALYSIS_CV2_THREADS = 0  # 0: OpenCV runs each call on the calling thread (no pool)

_lock = threading.Lock()
_depth = 0
_saved: int | None = None  # the caller's setting, while the analysis changed it


@contextmanager
def analysis_threads() -> Iterator[None]:
    """Run the block with ANALYSIS_CV2_THREADS OpenCV threads; nested and concurrent blocks
    share one setting, and the outermost restores the previous one."""
    global _depth, _saved
    import cv2

    with _lock:
        if _depth == 0:
            current = cv2.getNumThreads()
            _saved = current if current != ANALYSIS_CV2_THREADS else None
            if _saved is not None:
                cv2.setNumThreads(ANALYSIS_CV2_THREADS)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved is not None:
                cv2.setNumThreads(_saved)
                _saved = None
