"""The share analysis' savings keep its report: each code read once (compare(received_reads=)),
checked against the report that reads every code again."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from harness.errors import MeasurementError
from harness.session import media
from harness.vision import synthesis as sy
from harness.vision.fidelity import comparison as cmp

SCREEN_W, SCREEN_H = 1280, 800
SHARE = (640, 400)
FIRST = 500


@pytest.fixture(scope="module")
def share():
    """(screen, reference frame numbers, received frames) of a 15 fps share of a 30 fps code
    through VP8, the last frame shown twice (a freeze)."""
    clip = sy.ScreenClip(
        SCREEN_W, SCREEN_H, seed=5, layout=media.timecode_layout(SCREEN_W, SCREEN_H)
    )
    screen = clip.content(0)
    every = [FIRST + i for i in range(24)]
    shown = every[::2] + [every[-1]]
    refs = media.share_reference(screen, SHARE, every)
    rec = sy.transcode([refs[n - FIRST] for n in shown], codec="libvpx", bit_rate=600_000, fps=15)
    frames = [SimpleNamespace(image=img, t_arrival=10.0 + i / 15) for i, img in enumerate(rec)]
    return screen, every, frames


def test_codes_read_once_give_the_same_report(share, monkeypatch):
    screen, every, frames = share
    again = media.share_fidelity(media.share_reference(screen, SHARE, every), frames, "right")
    reads = media.share_reads(frames, (SCREEN_W, SCREEN_H))
    assert all(r.ok for r in reads)
    calls = []
    real = cmp.decode_fast
    monkeypatch.setattr(cmp, "decode_fast", lambda *a, **k: calls.append(1) or real(*a, **k))
    once = media.share_fidelity(media.share_reference(screen, SHARE, every), frames, "right", reads)
    assert once.frames == again.frames and once.dropped == again.dropped
    assert [f.aligned_by for f in once.frames] == ["timecode"] * len(frames)
    assert calls == []  # no code read again
    # a frame whose read failed is read here, as without the reads
    reads[3] = SimpleNamespace(ok=False, frame_no=None)
    partly = media.share_fidelity(
        media.share_reference(screen, SHARE, every), frames, "right", reads
    )
    assert partly.frames == again.frames and len(calls) == 1
    with pytest.raises(MeasurementError, match="2 received reads for 13 received frames"):
        media.share_fidelity(
            media.share_reference(screen, SHARE, every), frames, "right", reads[:2]
        )
