"""The report tests' records are made under fixed host conditions: the regression detector
compares only runs of comparable conditions (harness.report.conditions), and a unit test's
verdicts must not depend on how loaded the machine running it is."""

from __future__ import annotations

import pytest

FIXED_HOST = {"load_1min": 0.4, "cpus": 2}


@pytest.fixture(autouse=True)
def _fixed_host_conditions(monkeypatch):
    monkeypatch.setattr("harness.report.record.host_conditions", lambda: dict(FIXED_HOST))
