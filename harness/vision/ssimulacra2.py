"""SSIMULACRA2: a perceptual quality score (0-100) of a received frame against its reference.

Our own numpy/OpenCV implementation of Cloudinary's SSIMULACRA2 (Pearson 0.895 / Spearman 0.904
against ~22,000 subjective scores, SSIM 0.557 / 0.628; shared/reference/measurement-facts.md).
Scale: 90 visually lossless, 70 high, 50 medium, 30 low; it can go negative.

The steps, as the reference: sRGB -> linear RGB -> XYB (opsin absorbance, cube root), made
positive; six scales (linear RGB halved by 2x2 means, edges replicated); at each scale per XYB
channel: a 1 - SSIM' error map (no luma denominator, C2 = 0.0009) and an edge-difference map
(ringing and blurring), each pooled as a mean (L1) and an L4 norm; 108 weighted features, a
cubic and a power law to the score. The Gaussian blur (sigma 1.5, 11 taps) reads zeros beyond
the left and right edges and reflects at the top and bottom, as the pip package `ssimulacra2`
0.3.0 does (tests/vision/test_ssimulacra2.py proves the scores equal within 0.5 on the golden
images of fixtures/vision/; measured: within 0.001).

Why our own: the pip package works through scipy.ndimage and reads only files; this one works
through OpenCV on arrays (colour conversion in float32, the error maps in float64: the
variances are small differences of large terms), several times faster
(benchmarks/vision_bench.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from harness.errors import MeasurementError
from harness.measure import Measurement
from harness.vision.image import check_image

NUM_SCALES = 6
BLUR_SIGMA = 1.5
BLUR_RADIUS_PX = 5  # int(3.33 * 1.5 + 0.5): 11 taps
SSIM_C2 = 0.0009
MIN_SIDE_PX = 8  # a scale smaller than this is not scored
SERIES_BIN_S = 1.0  # the per-second series

# opsin absorbance (libjxl opsin_params.h)
_OPSIN = np.array(
    [
        [0.30, 1.0 - 0.078 - 0.30, 0.078],
        [0.23, 1.0 - 0.078 - 0.23, 0.078],
        [0.24342268924547819, 0.20476744424496821, 1.0 - 0.24342268924547819 - 0.20476744424496821],
    ],
    np.float32,
)
_OPSIN_BIAS = np.float32(0.0037930732552754493)
_CBRT_BIAS = np.float32(np.cbrt(0.0037930732552754493))

# The 108 weights: per channel (X, Y, B), per scale (6), per norm (L1, L4): ssim, ringing, blur.
_WEIGHTS = np.array(
    [
        0.0, 0.0007376606707406586, 0.0, 0.0, 0.0007793481682867309, 0.0, 0.0,
        0.0004371155730107379, 0.0, 1.1041726426657346, 0.00066284834129271,
        0.00015231632783718752, 0.0, 0.0016406437456599754, 0.0, 1.8422455520539298,
        11.441172603757666, 0.0, 0.0007989109436015163, 0.000176816438078653, 0.0,
        1.8787594979546387, 10.94906990605142, 0.0, 0.0007289346991508072, 0.9677937080626833,
        0.0, 0.00014003424285435884, 0.9981766977854967, 0.00031949755934435053,
        0.0004550992113792063, 0.0, 0.0, 0.0013648766163243398, 0.0, 0.0, 0.0, 0.0, 0.0,
        7.466890328078848, 0.0, 17.445833984131262, 0.0006235601634041466, 0.0, 0.0,
        6.683678146179332, 0.00037724407979611296, 1.027889937768264, 225.20515300849274, 0.0,
        0.0, 19.213238186143016, 0.0011401524586618361, 0.001237755635509985,
        176.39317598450694, 0.0, 0.0, 24.43300999870476, 0.28520802612117757,
        0.0004485436923833408, 0.0, 0.0, 0.0, 34.77906344483772, 44.835625328877896, 0.0, 0.0,
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0008680556573291698, 0.0, 0.0, 0.0, 0.0, 0.0,
        0.0005313191874358747, 0.0, 0.00016533814161379112, 0.0, 0.0, 0.0, 0.0, 0.0,
        0.0004179171803251336, 0.0017290828234722833, 0.0, 0.0020827005846636437, 0.0, 0.0,
        8.826982764996862, 23.19243343998926, 0.0, 95.1080498811086, 0.9863978034400682,
        0.9834382792465353, 0.0012286405048278493, 171.2667255897307, 0.9807858872435379, 0.0,
        0.0, 0.0, 0.0005130064588990679, 0.0, 0.00010854057858411537,
    ]
)  # fmt: skip


def _srgb_lut() -> np.ndarray:
    v = np.arange(256, dtype=np.float64) / 255.0
    lin = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
    return lin.astype(np.float32)


_SRGB_TO_LINEAR = _srgb_lut()
_KERNEL = cv2.getGaussianKernel(2 * BLUR_RADIUS_PX + 1, BLUR_SIGMA, cv2.CV_64F)


def _linear_rgb(img: np.ndarray) -> np.ndarray:
    """Linear RGB float32 (h, w, 3) of a uint8 gray, BGR or BGRA frame."""
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    elif img.shape[2] == 1:
        img = cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2RGB)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    else:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return _SRGB_TO_LINEAR[img]


def _xyb(lin: np.ndarray) -> np.ndarray:
    """Positive XYB (MakePositiveXYB) of linear RGB."""
    mixed = cv2.transform(lin, _OPSIN) + _OPSIN_BIAS
    np.maximum(mixed, 0, out=mixed)
    mixed = np.cbrt(mixed) - _CBRT_BIAS
    m0, m1, m2 = mixed[:, :, 0], mixed[:, :, 1], mixed[:, :, 2]
    out = np.empty_like(mixed)
    out[:, :, 0] = (m0 - m1) * np.float32(0.5 * 14.0) + np.float32(0.42)
    y = (m0 + m1) * np.float32(0.5)
    out[:, :, 1] = y + np.float32(0.01)
    out[:, :, 2] = m2 - y + np.float32(0.55)
    return out


def _blur(img: np.ndarray) -> np.ndarray:
    """Gaussian sigma 1.5: zeros beyond the left/right edges, reflected at the top/bottom
    (the pip package pads with zeros along the first axis of its transposed image)."""
    h = cv2.filter2D(img, -1, _KERNEL.T, borderType=cv2.BORDER_CONSTANT)
    return cv2.filter2D(h, -1, _KERNEL, borderType=cv2.BORDER_REFLECT)


def _downsample(lin: np.ndarray) -> np.ndarray:
    """2x2 means; an odd last row/column is averaged with itself (edge replicated)."""
    h, w = lin.shape[:2]
    if h % 2 or w % 2:
        lin = cv2.copyMakeBorder(lin, 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE)
    h2, w2 = lin.shape[0] // 2, lin.shape[1] // 2
    return cv2.resize(lin, (w2, h2), interpolation=cv2.INTER_AREA)  # exact 2x2 means


def _pool(err: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and L4 norm of a non-negative error map (h, w, 3)."""
    n = err.shape[0] * err.shape[1]
    l1 = np.array(cv2.sumElems(err)[:3]) / n  # accumulated in float64
    e2 = cv2.multiply(err, err)
    l4 = (np.array(cv2.sumElems(cv2.multiply(e2, e2))[:3]) / n) ** 0.25
    return l1, l4


def _scale_features(x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """(3 channels, 6 features): ssim L1, ssim L4, ringing L1, ringing L4, blur L1, blur L4.

    In float64: the variances are small differences of large terms (float32 was 1e-4 off).
    """
    x1, x2 = x1.astype(np.float64), x2.astype(np.float64)
    mu1, mu2 = _blur(x1), _blur(x2)
    s11, s22, s12 = _blur(x1 * x1), _blur(x2 * x2), _blur(x1 * x2)
    d = mu1 - mu2
    num_m = 1.0 - d * d
    num_s = 2.0 * (s12 - mu1 * mu2) + SSIM_C2
    den_s = (s11 - mu1 * mu1) + (s22 - mu2 * mu2) + SSIM_C2
    err = 1.0 - num_m * num_s / den_s
    np.maximum(err, 0, out=err)
    s_l1, s_l4 = _pool(err)
    ratio = (1.0 + np.abs(x2 - mu2)) / (1.0 + np.abs(x1 - mu1)) - 1.0
    ring_l1, ring_l4 = _pool(np.maximum(ratio, 0))
    blur_l1, blur_l4 = _pool(np.maximum(-ratio, 0))
    return np.stack([s_l1, s_l4, ring_l1, ring_l4, blur_l1, blur_l4], axis=1)


def _score(features: list[np.ndarray]) -> float:
    total, i = 0.0, 0
    for c in range(3):
        for f in features:
            for n in range(2):
                total += _WEIGHTS[i] * abs(f[c, n])  # ssim
                total += _WEIGHTS[i + 1] * abs(f[c, 2 + n])  # ringing
                total += _WEIGHTS[i + 2] * abs(f[c, 4 + n])  # blurring
                i += 3
    s = total * 0.9562382616834844
    s = 2.326765642916932 * s - 0.020884521182843837 * s * s + 6.248496625763138e-05 * s * s * s
    return float(100.0 - 10.0 * s**0.6276336467831387) if s > 0 else 100.0


def ssimulacra2(reference: np.ndarray, distorted: np.ndarray) -> float:
    """SSIMULACRA2 score of a distorted frame against its reference (100 = identical).

    Args:
        reference, distorted: uint8 frames of the same size (gray, BGR or BGRA; alpha ignored).

    Raises:
        MeasurementError: bad frames, different sizes, or smaller than 8 x 8.
    """
    check_image(reference, "SSIMULACRA2 reference")
    check_image(distorted, "SSIMULACRA2 distorted frame")
    if reference.shape[:2] != distorted.shape[:2]:
        raise MeasurementError(
            f"SSIMULACRA2: the reference is {reference.shape[1]}x{reference.shape[0]} but the "
            f"distorted frame is {distorted.shape[1]}x{distorted.shape[0]}"
        )
    if min(reference.shape[:2]) < MIN_SIDE_PX:
        raise MeasurementError(
            f"SSIMULACRA2: frames of {reference.shape[1]}x{reference.shape[0]} are smaller than "
            f"{MIN_SIDE_PX}x{MIN_SIDE_PX}"
        )
    lin1, lin2 = _linear_rgb(reference), _linear_rgb(distorted)
    features: list[np.ndarray] = []
    for scale in range(NUM_SCALES):
        if scale:
            lin1, lin2 = _downsample(lin1), _downsample(lin2)
        if min(lin1.shape[:2]) < MIN_SIDE_PX:
            break
        features.append(_scale_features(_xyb(lin1), _xyb(lin2)))
    return _score(features)


@dataclass(frozen=True)
class ScoredFrame:
    """One scored frame: its time and SSIMULACRA2 score (with the SSIM beside it, if known)."""

    t_s: float
    score: float
    ssim: float | None = None
    frame: int | None = None


def per_second(frames: Sequence[ScoredFrame], bin_s: float = SERIES_BIN_S) -> Measurement:
    """share_ssimulacra2 as a per-second series: one sample per second that had scored frames,
    the mean of that second's scores, at the second's start; meta lists frames and min.

    Raises:
        MeasurementError: no scored frames.
    """
    if not frames:
        raise MeasurementError("share_ssimulacra2: no frame was scored")
    t0 = min(f.t_s for f in frames)
    bins: dict[int, list[ScoredFrame]] = {}
    for f in frames:
        bins.setdefault(int((f.t_s - t0) // bin_s), []).append(f)
    m = Measurement("share_ssimulacra2", "", meta={"bin_s": bin_s, "frames": len(frames)})
    for k in sorted(bins):
        scores = [f.score for f in bins[k]]
        ssims = [f.ssim for f in bins[k] if f.ssim is not None]
        m.add(
            float(np.mean(scores)),
            t=t0 + k * bin_s,
            frames=len(scores),
            min=float(min(scores)),
            ssim=float(np.mean(ssims)) if ssims else None,
        )
    return m


def score_matched(
    reference: Sequence[np.ndarray],
    received: Sequence[np.ndarray],
    matches: Sequence[tuple[int, int, float]],
    *,
    every_s: float = 0.0,
    ssims: Sequence[float | None] | None = None,
) -> list[ScoredFrame]:
    """SSIMULACRA2 of matched frames (what harness.vision.fidelity.compare matched).

    Args:
        reference: the sent frames; received: the received frames (aligned to the reference's
            size already, e.g. by fidelity.warp_to_reference).
        matches: (received index, reference index, time s) per matched frame.
        every_s: score at most one frame per this many seconds (0: every frame); the cost of a
            1280x800 frame is in benchmarks/vision_bench.py.
        ssims: the SSIM of each match, kept beside the score.
    """
    out: list[ScoredFrame] = []
    next_t = -np.inf
    for k, (i, j, t) in enumerate(matches):
        if t < next_t:
            continue
        out.append(
            ScoredFrame(t, ssimulacra2(reference[j], received[i]), ssims[k] if ssims else None, i)
        )
        next_t = t + every_s
    return out
