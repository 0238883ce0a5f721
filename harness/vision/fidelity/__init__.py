"""Fidelity: how faithful is the received picture (SSIM, PSNR, frozen and dropped frames).

Rooms: similarity (SSIM as scikit-image computes it, PSNR), alignment (affine fit in space),
freeze (WebRTC's freeze definition), comparison (compare(): a received video against its
reference, aligned in time by timecode or best SSIM; the report), libvmaf (optional VMAF
through ffmpeg).
"""

from harness.vision.fidelity.alignment import Geometry, fit_geometry, warp_to_reference
from harness.vision.fidelity.comparison import (
    ALIGN_MAX_SKIP_FRAMES,
    FidelityReport,
    FrameFidelity,
    compare,
    compare_files,
    report_dict,
)
from harness.vision.fidelity.freeze import (
    FREEZE_MEAN_FACTOR,
    FREEZE_MIN_EXTRA_S,
    FREEZE_WINDOW_FRAMES,
    Freeze,
    freezes,
)
from harness.vision.fidelity.libvmaf import VMAF_TIMEOUT_S, vmaf, vmaf_unavailable
from harness.vision.fidelity.similarity import (
    PSNR_CAP_DB,
    SSIM_K1,
    SSIM_K2,
    SSIM_SIGMA,
    SSIM_TRUNCATE,
    psnr,
    ssim,
)

__all__ = [
    "ALIGN_MAX_SKIP_FRAMES",
    "FREEZE_MEAN_FACTOR",
    "FREEZE_MIN_EXTRA_S",
    "FREEZE_WINDOW_FRAMES",
    "PSNR_CAP_DB",
    "SSIM_K1",
    "SSIM_K2",
    "SSIM_SIGMA",
    "SSIM_TRUNCATE",
    "VMAF_TIMEOUT_S",
    "FidelityReport",
    "FrameFidelity",
    "Freeze",
    "Geometry",
    "compare",
    "compare_files",
    "fit_geometry",
    "freezes",
    "psnr",
    "report_dict",
    "ssim",
    "vmaf",
    "vmaf_unavailable",
    "warp_to_reference",
]
