"""VMAF (optional): through ffmpeg's libvmaf filter when it is on the PATH."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from harness.errors import MeasurementError

VMAF_TIMEOUT_S = 600.0


def vmaf_unavailable() -> str | None:
    """None when ffmpeg with the libvmaf filter is on the PATH, else the reason it is not."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        return "VMAF skipped: ffmpeg is not on the PATH"
    try:
        out = subprocess.run(
            [exe, "-hide_banner", "-filters"], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"VMAF skipped: cannot run {exe} ({e})"
    if "libvmaf" not in out.stdout:
        return f"VMAF skipped: {exe} has no libvmaf filter"
    return None


def vmaf(
    reference: str | os.PathLike, distorted: str | os.PathLike, *, timeout_s: float = VMAF_TIMEOUT_S
) -> float:
    """Mean VMAF (0-100) of a distorted video against its reference, via ffmpeg's libvmaf.

    The distorted video is scaled to the reference's size first (bicubic).

    Raises:
        MeasurementError: ffmpeg or libvmaf missing, ffmpeg failed or timed out, or no score.
    """
    from harness.vision.video import probe

    reason = vmaf_unavailable()
    if reason:
        raise MeasurementError(reason)
    info = probe(reference)
    probe(distorted)
    with tempfile.TemporaryDirectory(prefix="hil-vmaf-") as tmp:
        log = Path(tmp) / "vmaf.json"
        graph = (
            f"[0:v]scale={info.width}:{info.height}:flags=bicubic,setpts=PTS-STARTPTS[d];"
            f"[1:v]setpts=PTS-STARTPTS[r];[d][r]libvmaf=log_fmt=json:log_path={log}"
        )
        cmd = [
            shutil.which("ffmpeg") or "ffmpeg",
            "-hide_banner",
            "-nostats",
            "-i",
            str(distorted),
            "-i",
            str(reference),
            "-lavfi",
            graph,
            "-f",
            "null",
            "-",
        ]
        try:
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired as e:
            raise MeasurementError(
                f"VMAF: ffmpeg timed out after {timeout_s:g} s on {distorted}"
            ) from e
        if run.returncode != 0 or not log.exists():
            tail = (run.stderr or "").strip().splitlines()[-1:] or ["no output"]
            raise MeasurementError(
                f"VMAF: ffmpeg failed on {distorted} (exit {run.returncode}): {tail[0]}"
            )
        try:
            data = json.loads(log.read_text())
            return float(data["pooled_metrics"]["vmaf"]["mean"])
        except (ValueError, KeyError, TypeError) as e:
            raise MeasurementError(
                f"VMAF: no score in ffmpeg's libvmaf log for {distorted} ({e})"
            ) from e
