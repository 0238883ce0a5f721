"""House style as a test: ruff check and ruff format --check are clean, and every exception to
BLE001 (blind except) and C901 (complexity over 12) carries its written reason."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TREES = ["harness", "tests", "suites", "benchmarks"]
RUFF_TIMEOUT_S = 120.0
_NOQA = re.compile(r"#\s*noqa:\s*([A-Z0-9, ]+)(.*)$")


def _ruff() -> list[str]:
    exe = Path(sys.executable).parent / "ruff"
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("ruff")
    if found is None:
        pytest.skip("ruff is not installed: pip install -e '.[test]'")
    return [found]


@pytest.mark.parametrize("args", [["check"], ["format", "--check"]], ids=["check", "format"])
def test_ruff_is_clean(args):
    proc = subprocess.run(
        [*_ruff(), *args, *TREES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=RUFF_TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_every_blind_except_and_complexity_exception_has_a_reason():
    missing = []
    for tree in TREES:
        for path in sorted((ROOT / tree).rglob("*.py")):
            for n, line in enumerate(path.read_text().splitlines(), 1):
                m = _NOQA.search(line)
                if not m or not {"BLE001", "C901"} & {c.strip() for c in m.group(1).split(",")}:
                    continue
                reason = m.group(2).strip()
                if not reason.startswith("--") or len(reason.strip("- ")) < 10:
                    missing.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert missing == [], "exceptions without a written reason:\n" + "\n".join(missing)


MAX_MODULE_LINES = 500


def test_a_long_module_says_why_at_its_top():
    import ast

    long = []
    for path in sorted((ROOT / "harness").rglob("*.py")):
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            doc = ast.get_docstring(ast.parse(text)) or ""
            if "Size:" not in doc:
                long.append(f"{path.relative_to(ROOT)} ({len(text.splitlines())} lines)")
    assert long == [], "over 500 lines without a 'Size:' reason in the docstring: " + ", ".join(
        long
    )


def test_adbutils_clients_are_pinned():
    """Only harness.farm.adbclient makes adbutils clients: an AdbClient of its own, or the
    module-level `adbutils.adb`, starts an adb server (on another port) when the run's is gone."""
    import ast

    found = []
    for tree in ("harness", "suites"):
        for path in sorted((ROOT / tree).rglob("*.py")):
            if path == ROOT / "harness" / "farm" / "adbclient.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.Attribute)
                    and isinstance(node.value, ast.Name)
                    and node.value.id == "adbutils"
                    and node.attr in ("AdbClient", "adb", "device")
                ) or (
                    isinstance(node, ast.ImportFrom)
                    and node.module == "adbutils"
                    and any(a.name in ("AdbClient", "adb", "device") for a in node.names)
                ):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == [], f"unpinned adbutils clients (use harness.farm.adbclient): {found}"
