"""The layers as docs/architecture.md (and DESIGN.md) draw them: no module imports upward.

Every module's imports are parsed (ast), including imports inside functions and under
TYPE_CHECKING, and each import of a harness module is checked against the order below.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# bottom to top; a room may import its own modules and any room on a lower rank
RANK = {
    "errors": 0,
    "native": 0,  # harness/native.py: the process's C allocator, used by every process
    "profiles": 1,
    "measure": 2,
    "farm": 3,
    "device": 4,
    "instruments": 5,
    "network": 5,
    "vision": 5,
    "session": 6,
    "report": 7,
    "plugin": 8,
    "cli": 9,  # harness/cli.py: `hil`, dispatching to each room's own cli
    "suites": 10,
}
SIBLINGS = {"instruments", "network", "vision"}  # side by side: none imports another
# the twin is a world apart: it uses only these; the harness reaches it through adb, its
# console, its sockets, its web pages and its ground-truth log (harness.twin.truth)
TWIN_MAY_USE = {"harness.errors", "harness.native", "harness.profiles", "harness.vision.timecode"}
TWIN_OPEN_TO_ALL = {"harness.twin.truth"}
TWIN_OPEN_TO = {"cli": {"harness.twin.cli"}}  # `hil twin ...` starts it
# Pending, each with its reason; an entry that no longer occurs fails (the list only shrinks).
PENDING: dict[tuple[str, str], str] = {}


def _modules() -> list[Path]:
    return sorted(
        [p for p in (ROOT / "harness").rglob("*.py")] + [p for p in (ROOT / "suites").glob("*.py")]
    )


def _room(path: Path) -> str:
    rel = path.relative_to(ROOT)
    if rel.parts[0] == "suites":
        return "suites"
    if len(rel.parts) == 2:  # harness/cli.py, harness/errors.py, harness/__init__.py
        return {
            "cli.py": "cli",
            "errors.py": "errors",
            "native.py": "native",
            "__init__.py": "errors",
        }[rel.parts[1]]
    return rel.parts[1]


def _room_of_module(name: str) -> str:
    parts = name.split(".")
    if len(parts) == 1:
        return "errors"  # `import harness`: the package itself holds nothing
    return "cli" if parts[1] in ("cli", "__main__") else parts[1]


def _package(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts if parts[-1] == "__init__" else parts[:-1]).removesuffix(".__init__")


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every harness import in the file, at any depth."""
    tree = ast.parse(path.read_text(), str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "harness"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = _package(path).split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.split(".")[0] == "harness":
                if name == "harness":  # `from harness import twin` names a room
                    out += [(node.lineno, f"harness.{a.name}") for a in node.names]
                else:
                    out.append((node.lineno, name))
    return out


def _violation(room: str, target: str) -> str | None:
    """Why `room` may not import `target` (None: it may)."""
    target_room = _room_of_module(target)
    if target_room == room:
        return None
    if room == "twin":
        if any(target == m or target.startswith(m + ".") for m in TWIN_MAY_USE):
            return None
        return "the twin uses only errors, profiles and vision's pure codecs"
    if target_room == "twin":
        if target in TWIN_OPEN_TO_ALL or target in TWIN_OPEN_TO.get(room, set()):
            return None
        return "the harness reaches the twin only through its sockets (harness.farm.control)"
    if room in SIBLINGS and target_room in SIBLINGS:
        return f"{room} and {target_room} sit side by side"
    if RANK[target_room] > RANK[room]:
        return f"{room} (rank {RANK[room]}) imports upward into {target_room} (rank {RANK[target_room]})"
    return None


def _all_violations() -> dict[tuple[str, str], list[str]]:
    found: dict[tuple[str, str], list[str]] = {}
    for path in _modules():
        room = _room(path)
        assert room in RANK or room == "twin", f"{path}: a room docs/architecture.md does not draw"
        for line, target in _imports(path):
            why = _violation(room, target)
            if why:
                rel = str(path.relative_to(ROOT))
                found.setdefault((rel, target), []).append(f"{rel}:{line} imports {target}: {why}")
    return found


def test_no_module_imports_upward():
    found = _all_violations()
    new = [msg for key, msgs in found.items() if key not in PENDING for msg in msgs]
    assert new == [], "\n".join(new)


def test_pending_exceptions_still_exist():
    """A pending exception that was fixed must leave the list (so it cannot hide a new one)."""
    found = _all_violations()
    stale = [f"{f} -> {t}" for f, t in PENDING if (f, t) not in found]
    assert stale == [], f"fixed, remove from PENDING: {stale}"


@pytest.mark.parametrize(
    "room, target, ok",
    [
        ("device", "harness.vision.timecode", False),
        ("farm", "harness.device.adb", False),
        ("vision", "harness.network.impairment", False),
        ("plugin", "harness.twin.control", False),
        ("twin", "harness.farm.control", False),
        ("twin", "harness.vision.timecode", True),
        ("suites", "harness.twin.truth", True),
        ("network", "harness.measure", True),
        ("device", "harness.farm.hostprotocol", True),
        ("cli", "harness.twin.cli", True),
    ],
)
def test_the_rule_itself(room, target, ok):
    assert (_violation(room, target) is None) == ok


def test_imports_inside_functions_are_seen(tmp_path):
    src = tmp_path / "m.py"
    src.write_text(
        "def f():\n    from harness.session import driver\n    import harness.report.html\n"
    )
    assert [t for _, t in _imports(src)] == ["harness.session", "harness.report.html"]
