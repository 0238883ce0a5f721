"""`hil walt ...` against the simulated WALT."""

from __future__ import annotations

from serial.tools import list_ports

from harness.cli import main


def test_hil_walt_check_syncs_and_checks_drift(make_walt_sim, capsys):
    sim = make_walt_sim(drift_ppm=400)
    assert main(["walt", "check", "--port", sim.path, "--wait-s", "0.3"]) == 0
    out = capsys.readouterr().out
    assert "firmware protocol 6" in out and "sync:  lag in [0, " in out and "drift:" in out


def test_hil_walt_sample_and_find(make_walt_sim, capsys, monkeypatch):
    sim = make_walt_sim()
    assert main(["walt", "sample", "--port", sim.path, "--count", "2"]) == 0
    assert capsys.readouterr().out.count("PD_screen:") == 2
    monkeypatch.setattr(list_ports, "comports", lambda: [])
    assert main(["walt", "find"]) == 1
    assert main(["walt", "check"]) == 2
    assert "no WALT found on USB" in capsys.readouterr().err
