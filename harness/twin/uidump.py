"""`uiautomator dump`: the window hierarchy XML of the twin's screen (API 16+)."""

from __future__ import annotations

from dataclasses import replace
from xml.sax.saxutils import quoteattr

from harness.twin.proc import Proc
from harness.twin.screen import UiNode

DEFAULT_DUMP_PATH = "/sdcard/window_dump.xml"


CONTENT_ID = "android:id/content"


def window_tree(root: UiNode) -> UiNode:
    """The screen's tree as a window has it: the app's views under a FrameLayout
    `android:id/content` (as PhoneWindow's DecorView puts them), in every app window."""
    if any(c.rid == CONTENT_ID for c in root.children):
        return root
    content = UiNode(bounds=root.bounds, pkg=root.pkg, rid=CONTENT_ID, children=list(root.children))
    return replace(root, children=[content])


def hierarchy_xml(root: UiNode, rotation: int = 0) -> str:
    """The XML uiautomator writes: <hierarchy rotation> of nested <node> elements."""
    root = window_tree(root)
    out = [
        "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>",
        f'<hierarchy rotation="{rotation}">',
    ]
    _node(root, 0, out)
    out.append("</hierarchy>")
    return "".join(out)


def _node(node: UiNode, index: int, out: list[str]) -> None:
    x1, y1, x2, y2 = node.bounds
    attrs = {
        "index": str(index),
        "text": node.text,
        "resource-id": node.rid,
        "class": node.cls,
        "package": node.pkg,
        "content-desc": node.desc,
        "checkable": "false",
        "checked": "false",
        "clickable": str(node.clickable).lower(),
        "enabled": str(node.enabled).lower(),
        "focusable": str(node.clickable).lower(),
        "focused": "false",
        "scrollable": "false",
        "long-clickable": "false",
        "password": "false",
        "selected": "false",
        "visible-to-user": "true",
        "bounds": f"[{x1},{y1}][{x2},{y2}]",
    }
    text = " ".join(f"{k}={quoteattr(v)}" for k, v in attrs.items())
    if not node.children:
        out.append(f"<node {text} />")
        return
    out.append(f"<node {text}>")
    for i, child in enumerate(node.children):
        _node(child, i, out)
    out.append("</node>")


async def uiautomator(p: Proc) -> int:
    args = p.argv[1:]
    if args[:1] != ["dump"]:
        await p.eprint(
            "Usage: uiautomator <subcommand> [options]\n\nAvailable subcommands:\n\ndump: creates an XML dump of current UI hierarchy"
        )
        return 1
    rest = [a for a in args[1:] if not a.startswith("--")]
    path = rest[0] if rest else DEFAULT_DUMP_PATH
    if path == "/dev/tty":
        await p.print(hierarchy_xml(p.twin.screen.root()))
        return 0
    p.twin.fs.write(p.twin.fs.norm(path, p.shell.cwd), hierarchy_xml(p.twin.screen.root()).encode())
    p.twin.truth.record("ui_dump", path=path, screen_version=p.twin.screen.version)
    await p.print(f"UI hierchary dumped to: {path}")  # sic: Android's own spelling
    return 0
