"""Fidelity: SSIM / PSNR against the references, alignment, frozen / dropped frames, freezes."""

from __future__ import annotations

import os
import stat
import sys

import cv2
import numpy as np
import pytest
from skimage.metrics import structural_similarity

from harness.errors import MeasurementError
from harness.vision import fidelity as fi
from harness.vision import synthesis as sy

WANG = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)


def _pairs(truth, image):
    for p in truth["ssim_pairs"]:
        yield p["distorted"], image(p["reference"]), image(p["distorted"])


def test_ssim_equals_scikit_image_on_the_fixtures(truth, image):
    n = 0
    for name, ref, dist in _pairs(truth, image):
        g_ref, g_dist = (
            cv2.cvtColor(ref, cv2.COLOR_BGR2GRAY),
            cv2.cvtColor(dist, cv2.COLOR_BGR2GRAY),
        )
        assert abs(fi.ssim(g_ref, g_dist) - structural_similarity(g_ref, g_dist, **WANG)) <= 1e-3, (
            name
        )
        assert abs(fi.ssim(ref, dist) - structural_similarity(g_ref, g_dist, **WANG)) <= 1e-3, name
        each = structural_similarity(ref, dist, channel_axis=-1, **WANG)
        assert abs(fi.ssim(ref, dist, channels="each") - each) <= 1e-3, name
        n += 1
    assert n >= 4


def test_ssim_equals_scikit_image_on_camera_and_clip_frames(image):
    a = cv2.cvtColor(image("golden/camera_blur.jpg"), cv2.COLOR_BGR2GRAY)
    b = cv2.cvtColor(image("golden/camera_noise.jpg"), cv2.COLOR_BGR2GRAY)
    assert abs(fi.ssim(a, b) - structural_similarity(a, b, **WANG)) <= 1e-3
    odd_a, odd_b = a[3:200, 5:77], b[3:200, 5:77]  # odd sizes, narrower than a strip
    assert abs(fi.ssim(odd_a, odd_b) - structural_similarity(odd_a, odd_b, **WANG)) <= 1e-3
    flat = np.full((64, 64), 7, np.uint8)
    assert fi.ssim(flat, flat) == pytest.approx(1.0)
    assert abs(fi.ssim(flat, 255 - flat) - structural_similarity(flat, 255 - flat, **WANG)) <= 1e-3


def test_psnr_equals_cv2_on_the_fixtures(truth, image):
    for name, ref, dist in _pairs(truth, image):
        assert abs(fi.psnr(ref, dist) - cv2.PSNR(ref, dist)) <= 0.01, name
        g1, g2 = ref[:, :, 1].copy(), dist[:, :, 1].copy()
        assert abs(fi.psnr(g1, g2) - cv2.PSNR(g1, g2)) <= 0.01, name
    ref = image(truth["ssim_pairs"][0]["reference"])
    assert fi.psnr(ref, ref) == float("inf")
    assert fi.psnr(ref, ref, cap_db=fi.PSNR_CAP_DB) == 48.0


def test_metrics_reject_mismatched_inputs():
    a = np.zeros((40, 40), np.uint8)
    with pytest.raises(MeasurementError, match=r"shape \(40, 40\).*shape \(40, 41\)"):
        fi.ssim(a, np.zeros((40, 41), np.uint8))
    with pytest.raises(MeasurementError, match="float32"):
        fi.psnr(a, a.astype(np.float32))
    with pytest.raises(MeasurementError, match="smaller than the 11-px window"):
        fi.ssim(a[:8, :8], a[:8, :8])


def test_freeze_definition():
    regular = [i / 30 for i in range(60)]
    assert fi.freezes(regular) == []
    gap = regular[:30] + [t + 0.2 for t in regular[30:]]  # a 233 ms interval at 30 fps
    (f,) = fi.freezes(gap)
    assert f.duration_s == pytest.approx(0.2 + 1 / 30) and f.threshold_s == pytest.approx(
        1 / 30 + 0.15
    )
    short = regular[:30] + [t + 0.1 for t in regular[30:]]  # 133 ms < max(100, 183) ms
    assert fi.freezes(short) == []
    slow = [i / 10 for i in range(30)]  # 10 fps: the limit is max(300, 250) ms
    assert fi.freezes(slow[:15] + [t + 0.16 for t in slow[15:]]) == []  # 260 ms
    assert len(fi.freezes(slow[:15] + [t + 0.21 for t in slow[15:]])) == 1  # 310 ms


def test_received_clip_against_sent_clip(truth, fixtures_dir):
    c = truth["clips"]["received.mp4"]
    report = fi.compare_files(fixtures_dir / "clips/sent.mp4", fixtures_dir / "clips/received.mp4")
    assert [f.ref_index for f in report.frames] == c["shows"]
    assert report.dropped == c["dropped"]
    assert report.frozen_frames == c["frozen_frames"]
    (freeze,) = report.freezes
    assert freeze.duration_s == pytest.approx((c["frozen_frames"] + 1) / 30, abs=1e-3)
    scale, dx, dy = c["geometry"]
    m = report.geometry.matrix
    assert m[0, 0] == pytest.approx(scale, abs=0.003) and m[1, 1] == pytest.approx(scale, abs=0.003)
    # reference pixel centre (0, 0) lands at dx + (0.5 * scale - 0.5) in the received frame
    assert m[0, 2] == pytest.approx(dx + 0.5 * scale - 0.5, abs=0.5)
    assert m[1, 2] == pytest.approx(dy + 0.5 * scale - 0.5, abs=0.5)
    assert all(f.aligned_by == "timecode" and f.ssim > 0.85 for f in report.frames)
    assert report.vmaf_skipped or report.vmaf is not None
    ms, mp = report.to_measurements()
    assert ms.name == "share_ssim" and len(mp.samples) == len(c["shows"])


def test_alignment_by_ssim_without_timecode():
    clip = sy.ScreenClip(320, 200, seed=9, scroll_px=6)
    refs = [clip.content(i) for i in range(40)]
    shows = [0, 1, 2, 2, 2, 5, 6, 7, 8, 9, 12, 13, 14, 15, 15, 16]
    rec = []
    for i in shows:  # scaled to 90 % and cropped by 8 px at the left
        rec.append(sy.resize(refs[i], 288, 180)[:, 8:])
    report = fi.compare(refs, rec, align="ssim")
    assert [f.ref_index for f in report.frames] == shows
    assert report.dropped == [3, 4, 10, 11]
    assert report.frozen_frames == 3
    assert all(f.ssim > 0.8 for f in report.frames)


def test_cropped_share_scores_only_the_visible_part():
    clip = sy.ScreenClip(640, 400, seed=10)
    refs = [clip.frame(i) for i in range(5)]
    rec = [f[40:360, 60:600] for f in refs]  # the share shows a crop, pixel for pixel
    report = fi.compare(refs, rec)
    assert all(f.ssim > 0.99 and f.psnr_db >= 40 for f in report.frames)


def test_vmaf_is_skipped_with_a_reason(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert "ffmpeg is not on the PATH" in fi.vmaf_unavailable()
    with pytest.raises(MeasurementError, match="ffmpeg is not on the PATH"):
        fi.vmaf(tmp_path / "a.mp4", tmp_path / "b.mp4")


def test_vmaf_through_ffmpeg(monkeypatch, tmp_path, fixtures_dir):
    """A stand-in ffmpeg that answers like one with libvmaf: the plumbing, not the model."""
    fake = tmp_path / "ffmpeg"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import sys, re, json\n"
        "if '-filters' in sys.argv: print(' ... libvmaf VV->V Calculate the VMAF'); sys.exit(0)\n"
        "graph = sys.argv[sys.argv.index('-lavfi') + 1]\n"
        "log = re.search(r'log_path=([^:,\\]]+)', graph).group(1)\n"
        "json.dump({'pooled_metrics': {'vmaf': {'mean': 87.5}}}, open(log, 'w'))\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(tmp_path) + os.pathsep + os.environ.get("PATH", ""))
    assert fi.vmaf_unavailable() is None
    sent = fixtures_dir / "clips/sent.mp4"
    assert fi.vmaf(sent, sent) == 87.5


def test_compare_errors():
    with pytest.raises(MeasurementError, match="no reference frames"):
        fi.compare([], [np.zeros((40, 40), np.uint8)])
    with pytest.raises(MeasurementError, match="no received frames"):
        fi.compare([np.zeros((40, 40), np.uint8)], [])
    with pytest.raises(MeasurementError, match=r"received frame 1: expected dtype uint8"):
        fi.compare(
            [np.zeros((40, 40), np.uint8)], [np.zeros((40, 40), np.uint8), np.zeros((40, 40))]
        )
    with pytest.raises(MeasurementError, match="reference frame 1 is 30x40"):
        fi.compare(
            [np.zeros((40, 40), np.uint8), np.zeros((40, 30), np.uint8)],
            [np.zeros((40, 40), np.uint8)],
        )
