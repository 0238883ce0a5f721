"""Ground truth: what the twin really did, on the host's monotonic clock.

Every event is one JSON line: {"t": time.monotonic(), "event": name, ...fields}. The harness
reads this file to prove its measurements; the twin never reads it back.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class GroundTruth:
    def __init__(self, path: Path | None, twin: str = ""):
        self.path = path
        self.twin = twin
        self._lock = threading.Lock()
        self._file = path.open("a", buffering=1, encoding="utf-8") if path else None
        self.counts: dict[str, int] = {}

    def record(self, event: str, t: float | None = None, **fields: Any) -> float:
        """Append one event; returns its time. Thread-safe; never raises on I/O errors."""
        t = time.monotonic() if t is None else t
        self.counts[event] = self.counts.get(event, 0) + 1
        if self._file is not None:
            line = json.dumps({"t": t, "event": event, "twin": self.twin, **fields}, default=str)
            with self._lock:
                try:
                    self._file.write(line + "\n")
                except (OSError, ValueError):
                    pass
        return t

    def close(self) -> None:
        if self._file is not None:
            with self._lock:
                try:
                    self._file.close()
                except OSError:
                    pass
                self._file = None


def read_truth(path: Path | str, event: str | None = None) -> list[dict[str, Any]]:
    """Events from a ground-truth file, optionally of one kind only."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            item = json.loads(line)
            if event is None or item.get("event") == event:
                out.append(item)
    return out


def times_after(
    path: Path | str, event: str, sent: Mapping[Any, float], key: str = "frame_no"
) -> dict[Any, float]:
    """{value of `key`: time of its first `event` at or after its time in `sent`}, e.g. when
    each agent frame was shown after its newest capture: right for a sender whose numbers repeat
    (the agents' 60 s loops), where first_times gives an earlier pass. Values not in `sent`
    are left out."""
    out: dict[Any, float] = {}
    for item in read_truth(path, event):
        v = item.get(key)
        if v is not None and v not in out and v in sent and item["t"] >= sent[v]:
            out[v] = item["t"]
    return out


def first_times(path: Path | str, event: str, key: str = "frame_no") -> dict[Any, float]:
    """{value of `key`: time of its first `event`}, e.g. when each agent frame was first shown."""
    out: dict[Any, float] = {}
    for item in read_truth(path, event):
        if item.get(key) is not None:
            out.setdefault(item[key], item["t"])
    return out
