"""OpenCV's thread setting around the harness' analysis: set inside, the caller's restored."""

from __future__ import annotations

import threading

import cv2
import pytest

from harness.vision.workers import ANALYSIS_CV2_THREADS, analysis_threads


@pytest.fixture
def cv2_threads():
    before = cv2.getNumThreads()
    yield
    cv2.setNumThreads(before)


def _inside() -> int:
    # cv2 reports 1 for 0 (no pool: the calling thread)
    return max(1, ANALYSIS_CV2_THREADS)


def test_set_inside_and_restored(cv2_threads):
    cv2.setNumThreads(3)
    with analysis_threads():
        assert cv2.getNumThreads() == _inside()
        with analysis_threads():
            assert cv2.getNumThreads() == _inside()
        assert cv2.getNumThreads() == _inside()  # the outer block still runs
    assert cv2.getNumThreads() == 3


def test_restored_after_an_error(cv2_threads):
    cv2.setNumThreads(2)
    with pytest.raises(RuntimeError), analysis_threads():
        raise RuntimeError("analysis failed")
    assert cv2.getNumThreads() == 2


def test_overlapping_blocks_restore_once(cv2_threads):
    cv2.setNumThreads(2)
    entered, release = threading.Event(), threading.Event()

    def other() -> None:
        with analysis_threads():
            entered.set()
            release.wait(5.0)

    t = threading.Thread(target=other)
    t.start()
    assert entered.wait(5.0)
    with analysis_threads():
        pass
    assert cv2.getNumThreads() == _inside()  # the other thread's block is still open
    release.set()
    t.join(5.0)
    assert not t.is_alive()
    assert cv2.getNumThreads() == 2
