"""Shared helpers for the vision tests: the fixtures directory and its ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "vision"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def truth() -> dict:
    return json.loads((FIXTURES / "truth.json").read_text())


def load(name: str) -> np.ndarray:
    img = cv2.imread(str(FIXTURES / name), cv2.IMREAD_COLOR)
    assert img is not None, f"missing fixture {name}: run fixtures/vision/make_fixtures.py"
    return img


@pytest.fixture(scope="session")
def image():
    """load(name) -> BGR fixture image."""
    return load
