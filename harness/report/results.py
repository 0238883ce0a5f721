"""results.jsonl: one JSON line per measurement, flushed as soon as it is known.

A crash or an interrupt never loses a line already written: the file is opened in append mode,
line-buffered, and fsync'ed on close.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from harness.report.record import ResultRecord


class ResultsWriter:
    """Appends ResultRecords to results.jsonl, one line each, as they arrive."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._file = self.path.open("a", buffering=1, encoding="utf-8")
        self.count = 0

    def write(self, record: ResultRecord | dict[str, Any]) -> None:
        data = record.to_dict() if isinstance(record, ResultRecord) else record
        line = json.dumps(data, default=_default, sort_keys=True)
        with self._lock:
            if self._file is None:
                return
            self._file.write(line + "\n")
            self.count += 1

    def close(self) -> None:
        """Flush and close. Never raises."""
        with self._lock:
            if self._file is None:
                return
            try:
                self._file.flush()
                os.fsync(self._file.fileno())
                self._file.close()
            except (OSError, ValueError):
                pass
            self._file = None


def _default(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if hasattr(obj, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return sorted(obj) if isinstance(obj, (set, frozenset)) else list(obj)
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def read_records(path: Path | str) -> list[ResultRecord]:
    """Every record of a results.jsonl (older versions upgraded); a torn last line (a run
    killed mid-write) is skipped."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                out.append(ResultRecord.from_dict(json.loads(line)))
            except json.JSONDecodeError:
                continue
    return out


def read_results(path: Path | str) -> list[dict[str, Any]]:
    """read_records as plain dicts (the JSON of the current version)."""
    return [r.to_dict() for r in read_records(path)]
