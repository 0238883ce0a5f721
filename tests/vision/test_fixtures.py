"""The fixtures are small, complete, and what the checked-in script generates."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np

MAX_FIXTURE_BYTES = 5_000_000


def test_fixtures_are_small_and_complete(fixtures_dir, truth):
    total = sum(p.stat().st_size for p in fixtures_dir.rglob("*") if p.is_file())
    assert total < MAX_FIXTURE_BYTES
    names = list(truth["frames"]) + [p["distorted"] for p in truth["ssim_pairs"]]
    names += [a["after"] for a in truth["annotations"]] + truth["bad"]
    names += [f"clips/{c}" for c in truth["clips"]] + ["clips/connect.mp4", "clips/sent.jsonl"]
    for name in names:
        assert (fixtures_dir / name).exists(), name


def test_script_regenerates_the_golden_frames(fixtures_dir, tmp_path):
    script = fixtures_dir / "make_fixtures.py"
    run = subprocess.run(
        [sys.executable, str(script), "--out", str(tmp_path), "--only", "frames,ssim"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    fresh = json.loads((tmp_path / "truth.json").read_text())
    checked_in = json.loads((fixtures_dir / "truth.json").read_text())
    assert (
        fresh["frames"] == checked_in["frames"] and fresh["ssim_pairs"] == checked_in["ssim_pairs"]
    )
    for name in list(fresh["frames"]) + [p["distorted"] for p in fresh["ssim_pairs"]]:
        a = cv2.imread(str(tmp_path / name), cv2.IMREAD_UNCHANGED)
        b = cv2.imread(str(fixtures_dir / name), cv2.IMREAD_UNCHANGED)
        assert a.shape == b.shape and np.array_equal(a, b), name
