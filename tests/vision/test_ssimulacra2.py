"""SSIMULACRA2: equal to the pip package on the golden images, monotonic with damage, series."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from harness.errors import MeasurementError
from harness.vision import ssimulacra2 as s2

PIP_TOLERANCE = 0.5  # the brief's bar: our score equals the pip package's within 0.5


def test_equals_the_pip_package_scores_stored_with_the_golden_images(fixtures_dir, image):
    stored = json.loads((fixtures_dir / "ssimulacra2_pip.json").read_text())
    ref = image(stored["reference"])
    assert len(stored["scores"]) >= 5
    for name, want in stored["scores"].items():
        got = s2.ssimulacra2(ref, image(name))
        assert abs(got - want) <= PIP_TOLERANCE, (name, got, want)


def test_equals_the_pip_package_run_now(fixtures_dir, image, tmp_path):
    pip = pytest.importorskip(
        "ssimulacra2", reason="pip ssimulacra2 not installed: pip install -e '.[test]'"
    )
    pairs = [
        (fixtures_dir / "golden/ssim_ref.png", fixtures_dir / "golden/ssim_jpeg.png"),
        (fixtures_dir / "golden/ssim_ref.png", fixtures_dir / "golden/ssim_blur.png"),
    ]
    # a second, larger pair: a 1280x800 screen and its JPEG at quality 30
    screen = image("golden/direct_1280x800.png")
    ok, buf = cv2.imencode(".jpg", screen, [cv2.IMWRITE_JPEG_QUALITY, 30])
    assert ok
    cv2.imwrite(str(tmp_path / "q30.png"), cv2.imdecode(buf, cv2.IMREAD_COLOR))
    pairs.append((fixtures_dir / "golden/direct_1280x800.png", tmp_path / "q30.png"))
    for ref_path, dist_path in pairs:
        want = pip.compute_ssimulacra2(str(ref_path), str(dist_path))
        got = s2.ssimulacra2(cv2.imread(str(ref_path)), cv2.imread(str(dist_path)))
        assert abs(got - want) <= PIP_TOLERANCE, (dist_path.name, got, want)


def test_identical_frames_score_100_and_damage_lowers_the_score(image):
    ref = image("golden/direct_1280x800.png")
    assert s2.ssimulacra2(ref, ref.copy()) == pytest.approx(100.0)
    scores = [
        s2.ssimulacra2(ref, cv2.GaussianBlur(ref, (0, 0), sigma)) for sigma in (0.6, 1.2, 2.4)
    ]
    assert scores[0] > scores[1] > scores[2], scores
    assert scores[0] < 100.0


def test_gray_and_bgra_frames_are_accepted(image):
    ref = image("golden/ssim_ref.png")
    gray = cv2.cvtColor(ref, cv2.COLOR_BGR2GRAY)
    assert s2.ssimulacra2(gray, gray) == pytest.approx(100.0)
    bgra = cv2.cvtColor(ref, cv2.COLOR_BGR2BGRA)
    assert s2.ssimulacra2(bgra, ref) == pytest.approx(100.0)


@pytest.mark.parametrize(
    "a, b, words",
    [
        (np.zeros((40, 40, 3), np.uint8), np.zeros((40, 41, 3), np.uint8), "40x40"),
        (np.zeros((4, 40, 3), np.uint8), np.zeros((4, 40, 3), np.uint8), "smaller than 8x8"),
        (np.zeros((40, 40, 3), np.float32), np.zeros((40, 40, 3), np.uint8), "uint8"),
    ],
)
def test_bad_frames_are_one_clear_error(a, b, words):
    with pytest.raises(MeasurementError, match=words):
        s2.ssimulacra2(a, b)


def test_per_second_series_means_each_second():
    frames = [
        s2.ScoredFrame(10.0, 80.0, 0.99),
        s2.ScoredFrame(10.5, 70.0, 0.97),
        s2.ScoredFrame(11.2, 50.0, 0.9),
        s2.ScoredFrame(13.9, 30.0, None),
    ]
    m = s2.per_second(frames)
    assert m.name == "share_ssimulacra2"
    assert [s.value for s in m.samples] == [75.0, 50.0, 30.0]
    assert [s.t for s in m.samples] == [10.0, 11.0, 13.0]
    assert m.samples[0].meta["frames"] == 2 and m.samples[0].meta["min"] == 70.0
    assert m.samples[0].meta["ssim"] == pytest.approx(0.98)
    with pytest.raises(MeasurementError, match="no frame"):
        s2.per_second([])


def test_score_matched_samples_at_most_one_frame_per_interval(image):
    ref = image("golden/ssim_ref.png")
    blur = cv2.GaussianBlur(ref, (0, 0), 2.0)
    refs, recs = [ref, ref], [ref, blur]
    matches = [(i % 2, i % 2, i * 0.25) for i in range(8)]  # 4 fps for 2 s
    every = s2.score_matched(refs, recs, matches, every_s=1.0)
    assert [f.t_s for f in every] == [0.0, 1.0]
    assert every[0].score == pytest.approx(100.0)
    all_frames = s2.score_matched(refs, recs, matches)
    assert len(all_frames) == 8 and all_frames[1].score < 60
