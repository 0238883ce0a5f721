"""Small validation helpers shared by the profile and budget loaders.

Every check raises ProfileError naming the file and the dotted key at fault.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from harness.errors import ProfileError


def read_yaml(path: Path) -> Any:
    """Read one YAML file, turning I/O and syntax errors into ProfileError."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ProfileError(str(path), "-", f"cannot read: {e.strerror or e}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "-"
        raise ProfileError(str(path), where, f"invalid YAML: {getattr(e, 'problem', e)}") from None


class Fields:
    """Typed access to one mapping of a YAML file, with the file and key path in every error."""

    def __init__(self, file: Path | str, data: Any, key: str = ""):
        self.file = str(file)
        self.key = key
        if not isinstance(data, dict):
            raise ProfileError(self.file, key or "-", f"expected a mapping, got {_kind(data)}")
        self.data = data
        self.used: set[str] = set()

    def path(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def error(self, name: str, msg: str) -> ProfileError:
        return ProfileError(self.file, self.path(name), msg)

    def get(
        self,
        name: str,
        kind: type | tuple[type, ...],
        default: Any = ...,
        *,
        min_value=None,
        max_value=None,
    ):
        self.used.add(name)
        if name not in self.data:
            if default is ...:
                raise self.error(name, "missing required key")
            return default
        value = self.data[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # YAML ints are acceptable where floats are asked for; bools are never numbers.
        if (
            float in kinds
            and int not in kinds
            and isinstance(value, int)
            and not isinstance(value, bool)
        ):
            value = float(value)
        if isinstance(value, bool) and bool not in kinds:
            raise self.error(name, f"expected {_names(kinds)}, got a boolean")
        if not isinstance(value, kinds):
            raise self.error(name, f"expected {_names(kinds)}, got {_kind(value)} {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.error(name, f"must be a finite number, got {value}")
        if min_value is not None and value < min_value:
            raise self.error(name, f"must be >= {min_value}, got {value}")
        if max_value is not None and value > max_value:
            raise self.error(name, f"must be <= {max_value}, got {value}")
        return value

    def sub(self, name: str, default: Any = ...) -> Fields:
        self.used.add(name)
        if name not in self.data:
            if default is ...:
                raise self.error(name, "missing required section")
            return Fields(self.file, default, self.path(name))
        return Fields(self.file, self.data[name], self.path(name))

    def finish(self) -> None:
        """Reject keys nobody asked for (typos must not pass silently)."""
        extra = sorted(set(map(str, self.data)) - self.used)
        if extra:
            raise self.error(
                extra[0], "unknown key" + (f" (also: {', '.join(extra[1:])})" if extra[1:] else "")
            )


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__


def _names(kinds: tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in kinds)
