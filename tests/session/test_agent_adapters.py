"""Agent adapters as plugins: a tiny adapter package, built here as a wheel and pip-installed into
a test-private site directory on PYTHONPATH (the venv itself is left alone, so tests running
beside it under xdist never see a half-installed package), is discovered through the
entry-point group mayday_hil.agents and used by `--agent NAME` in a real run against a twin;
`--agent none` skips the media tests with the reason and measures connect time by onset; an
unknown name is one error naming the installed adapters."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from harness.session.agents import AgentAdapter, available_agents, load_agent

DIST = "mayday_hil_tiny_agent"
ADAPTER = '''"""A tiny agent adapter: the reference bot, counting what the harness asked of it."""
from pathlib import Path
import os

from harness.session.agents.aiortc import AiortcAdapter


class TinyAgent(AiortcAdapter):
    name = "tiny"
    cooperative = True

    def start(self):
        Path(os.environ["TINY_AGENT_LOG"]).open("a").write(f"start {self.bot.device}\\n")
        super().start()

    def send_stroke(self, points, color=(255, 0, 0), width=6, stroke_id=None):
        Path(os.environ["TINY_AGENT_LOG"]).open("a").write("stroke\\n")
        return super().send_stroke(points, color, width, stroke_id)
'''
INSTALL_TIMEOUT_S = 120.0


def _wheel(tmp: Path) -> Path:
    """A pure-Python wheel (PEP 427) written by hand: no build tools or network needed."""
    files = {
        "tiny_agent.py": ADAPTER.encode(),
        f"{DIST}-0.1.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {DIST}\nVersion: 0.1\n"
            "Summary: a tiny mayday-hil agent adapter (test)\n"
        ).encode(),
        f"{DIST}-0.1.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
        f"{DIST}-0.1.dist-info/entry_points.txt": b"[mayday_hil.agents]\ntiny = tiny_agent:TinyAgent\n",
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{DIST}-0.1.dist-info/RECORD,,")
    files[f"{DIST}-0.1.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    path = tmp / f"{DIST}-0.1-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


@pytest.fixture
def tiny_agent_installed(tmp_path, monkeypatch):
    """The wheel pip-installed into tmp_path/site, which child Pythons find on PYTHONPATH."""
    wheel = _wheel(tmp_path)
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps"]
        + ["--target", str(site), str(wheel)],
        check=True,
        timeout=INSTALL_TIMEOUT_S,
    )
    assert (site / f"{DIST}-0.1.dist-info" / "entry_points.txt").is_file()
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    )
    return wheel


def test_builtin_adapters_are_entry_points():
    assert {"twin", "none"} <= set(available_agents())
    assert load_agent("twin").cooperative and not load_agent("none").cooperative
    from harness.session.agents.base import AgentContext

    assert isinstance(load_agent("none").from_context(AgentContext(device="x")), AgentAdapter)


def test_unknown_agent_is_one_error_naming_the_installed_ones():
    from harness.errors import HarnessError

    with pytest.raises(HarnessError, match=r"--agent nosuch: no adapter .*installed: .*none.*twin"):
        load_agent("nosuch")


def test_a_built_adapter_package_is_discovered_and_used(
    tiny_agent_installed, pytester, tmp_path, monkeypatch
):
    log = tmp_path / "tiny.log"
    monkeypatch.setenv("TINY_AGENT_LOG", str(log))
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from harness.session.agents import load_agent; print(load_agent('tiny').__name__)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.strip() == "TinyAgent"
    suites = Path(__file__).resolve().parents[2] / "suites"
    pytester.copy_example(str(suites / "test_media.py"))
    result = pytester.runpytest_subprocess(
        "test_media.py",
        "-k",
        "strokes",
        "--twin",
        "android-emulator-api34",
        "--agent",
        "tiny",
        "--hil-reports",
        str(tmp_path / "reports"),
        "-p",
        "no:cacheprovider",
        timeout=300,
    )
    result.assert_outcomes(passed=1)
    lines = log.read_text().splitlines()
    assert lines[0].startswith("start ") and lines.count("stroke") == 3


def test_agent_none_skips_media_with_the_reason_and_connects_by_onset(pytester, tmp_path):
    suites = Path(__file__).resolve().parents[2] / "suites"
    pytester.copy_example(str(suites / "test_media.py"))
    pytester.copy_example(str(suites / "test_connect.py"))
    result = pytester.runpytest_subprocess(
        "test_media.py",
        "test_connect.py",
        "-k",
        "strokes or connect_time_within",
        "--twin",
        "android-emulator-api34",
        "--agent",
        "none",
        "--hil-reports",
        str(tmp_path / "reports"),
        "-p",
        "no:cacheprovider",
        "-rs",
        timeout=300,
    )
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(
        ["*--agent none: a human agent; this test needs the agent's cooperation*"]
    )
    import json

    (results,) = list((tmp_path / "reports").glob("*/results.jsonl"))
    records = [json.loads(line) for line in results.read_text().splitlines()]
    connect = next(r for r in records if r.get("metric") == "connect_time_s")
    assert connect["meta"]["mode"] == "onset", connect
