"""`pm list features`: the system's hardware and software features.

Format: one `feature:<name>` line per feature, sorted by name, the GL ES version first as
`feature:reqGlEsVersion=0x20000` (API 17) / `0x30000`. Since API 24 a feature that has a
version prints `feature:<name>=<version>` (e.g. `feature:android.hardware.vulkan.level=1`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.device.parsers.text import ShellOutputError, check_shell_failure, lines_of

COMMAND = "pm list features"
_FEATURE = re.compile(r"^feature:([A-Za-z0-9_.\-]+)(?:=(-?\d+))?$")
_GLES = re.compile(r"^feature:reqGlEsVersion=0x([0-9a-fA-F]+)$")


@dataclass(frozen=True)
class Features:
    """The features a device declares.

    Attributes:
        names: every feature name (without versions).
        versions: (name, version) for the features printed with `=<version>`.
        gl_es_version: reqGlEsVersion as an int (0x30000 for GL ES 3.0), if printed.
    """

    names: frozenset[str]
    versions: tuple[tuple[str, int], ...] = ()
    gl_es_version: int | None = None

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def version(self, name: str) -> int | None:
        """The declared version of a feature, None when absent or unversioned."""
        return dict(self.versions).get(name)


def parse_pm_list_features(text: str | bytes) -> Features:
    """Parse `pm list features`.

    Raises:
        ShellOutputError: no `feature:` line, pm's error message, or mostly other lines.
    """
    check_shell_failure(COMMAND, text)
    names: set[str] = set()
    versions: dict[str, int] = {}
    gles: int | None = None
    junk = 0
    for line in lines_of(text):
        line = line.strip()
        if not line:
            continue
        m = _GLES.match(line)
        if m:
            gles = int(m.group(1), 16)
            continue
        m = _FEATURE.match(line)
        if m:
            names.add(m.group(1))
            if m.group(2) is not None:
                versions[m.group(1)] = int(m.group(2))
            continue
        junk += 1
    if not names:
        raise ShellOutputError(COMMAND, "no `feature:<name>` line", text)
    if junk > len(names):
        raise ShellOutputError(
            COMMAND, f"{junk} lines are not `feature:` lines against {len(names)} that are", text
        )
    return Features(frozenset(names), tuple(sorted(versions.items())), gles)
