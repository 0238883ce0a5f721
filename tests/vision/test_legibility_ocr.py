"""Legibility with the offline OCR: clean text screens read, and the proof that it matters.

The clean screens read exactly at 1280x800 and 1920x1200; each line is read alone and the same
pixels take the same read. Planted damage on the twin's text screens (downscale and back, JPEG,
Gaussian blur, VP8 at falling bit rates down to 150 kbit/s): the CER rises and SSIMULACRA2
falls with the damage, while SSIM stays >= 0.9 on frames whose text is past reading (CER > 20 %).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from harness.twin import textscreens as ts
from harness.vision import fidelity as fi
from harness.vision import legibility as lg
from harness.vision import ssimulacra2 as s2
from harness.vision import synthesis as sy

_REASON = lg.ocr_unavailable()
pytestmark = pytest.mark.skipif(_REASON is not None, reason=_REASON or "")

SIZE = (1280, 800)
CLEAN_CER_MAX = 0.02  # the budget's p95 on good Wi-Fi; the clean screens read far below it
CLEAN_ERRORS_MAX = 2  # of 1,542 characters (both sizes): the OCR's floor, see the test


@pytest.fixture(scope="module")
def engine():
    return lg.OcrEngine.shared()


@pytest.fixture(scope="module")
def screens():
    out = {}
    for name in ts.SCREEN_NAMES:
        rgb, lines = ts.render(name, *SIZE)
        out[name] = (
            cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
            lg.TextTruth.from_record(ts.truth_fields(name, *SIZE, lines)),
        )
    return out


def test_clean_text_screens_read_back_their_truth(engine, screens):
    """0.00 % at 1280x800 and 1920x1200 here (benchmarks/vision_bench.py); the bound allows the
    OCR's floor when a box moves by a pixel or the input height by 2 px (0-4 of 771 characters,
    docs/vision.md: "0x" read "Ox", "Wi-Fi is" read "Wi-Fis"), not a screen that misreads."""
    errors = chars = 0
    misread = []
    for size in (SIZE, (1920, 1200)):
        for name in ts.SCREEN_NAMES:
            if size == SIZE:
                img, truth = screens[name]
            else:
                rgb, lines = ts.render(name, *size)
                img = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
                truth = lg.TextTruth.from_record(ts.truth_fields(name, *size, lines))
            r = lg.read_frame(img, truth, engine)
            misread += [(size, ln.truth.text, ln.read) for ln in r.lines if ln.errors]
            assert r.errors <= 1, misread
            errors, chars = errors + r.errors, chars + r.chars
    assert errors <= CLEAN_ERRORS_MAX, misread
    assert errors / chars <= CLEAN_CER_MAX


def test_a_line_reads_alone_the_same_pixels_the_same_read(engine, screens):
    img, truth = screens["email"]
    boxes = [ln.box for ln in truth.lines]
    together = engine.read_lines(img, boxes)
    # each line is read alone: its read does not depend on the lines read with it
    assert engine.read_lines(img, boxes[3:4]) == together[3:4]
    # the same pixels again take the earlier read (a settled share repeats its lines)
    read, hits = engine.lines_read, engine.cache_hits
    assert engine.read_lines(img.copy(), boxes) == together
    assert (engine.lines_read, engine.cache_hits) == (read, hits + len(boxes))
    # one changed pixel in a line: that line is recognised again, the others are not
    other = img.copy()
    x, y, w, h = boxes[2]
    other[y + h // 2, x + w // 2] = 255 - other[y + h // 2, x + w // 2]
    engine.read_lines(other, boxes)
    assert engine.lines_read == read + 1


def _down(img, f):
    h, w = img.shape[:2]
    small = cv2.resize(img, (int(w * f), int(h * f)), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _jpeg(img, q):
    return cv2.imdecode(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])[1], 1)


def _blur(img, sigma):
    return cv2.GaussianBlur(img, (0, 0), sigma)


def _vp8(img, kbit):  # the first frame of a live share after the screen changed (a keyframe)
    return sy.transcode([img, img], codec="libvpx", bit_rate=kbit * 1000, fps=15)[0]


LADDERS = {
    "downscale and back": (_down, (0.75, 0.5, 0.3)),
    "JPEG quality": (_jpeg, (50, 20, 6)),
    "Gaussian blur sigma": (_blur, (1.0, 2.0, 4.0)),
    "VP8 kbit/s": (_vp8, (600, 300, 150)),
}


@pytest.mark.slow
def test_cer_and_ssimulacra2_move_with_the_damage_while_ssim_does_not(engine, screens):
    def level(fn, arg):
        errors = chars = 0
        s2s, cases = [], []
        for name, (ref, truth) in screens.items():
            img = ref if fn is None else fn(ref, arg)
            r = lg.read_frame(img, truth, engine)
            errors, chars = errors + r.errors, chars + r.chars
            s2s.append(s2.ssimulacra2(ref, img))
            cases.append((name, arg, r.cer, fi.ssim(ref, img)))
        return errors / chars, float(np.mean(s2s)), cases

    clean_cer, clean_s2, _ = level(None, None)
    assert clean_s2 == pytest.approx(100.0)
    unreadable_but_similar = []
    for what, (fn, args) in LADDERS.items():
        cers, s2s = [clean_cer], [clean_s2]
        for arg in args:
            c, s, cases = level(fn, arg)
            cers.append(c)
            s2s.append(s)
            unreadable_but_similar += [x for x in cases if x[2] > 0.20 and x[3] >= 0.9]
        assert all(b >= a for a, b in zip(cers, cers[1:], strict=False)), (what, cers)
        assert cers[-1] > cers[0], (what, cers)
        assert all(b < a for a, b in zip(s2s, s2s[1:], strict=False)), (what, s2s)
    # the reason for the metric: SSIM says "fine" where the text is past reading
    assert unreadable_but_similar, "no frame with SSIM >= 0.9 and CER > 20 %"
    name, arg, c, ssim = unreadable_but_similar[0]
    assert ssim >= 0.9 and c > 0.2


def test_measure_reads_one_frame_per_window_the_worst_by_ssim(engine, screens):
    ref, truth = screens["fonts"]
    frames = [ref, _blur(ref, 4.0), ref, ref, _down(ref, 0.5), ref]
    times = [0.0, 1.0, 2.0, 5.5, 6.0, 7.0]
    ssims = [fi.ssim(ref, f) for f in frames]
    reads = lg.measure(frames, times, truth, ssims=ssims, every_s=5.0, engine=engine)
    assert [r.index for r in reads] == [1, 4]
    assert reads[0].cer > 0.2
    m = lg.to_measurement(reads)
    assert len(m.samples) == 2 and m.stats().max > 20.0
