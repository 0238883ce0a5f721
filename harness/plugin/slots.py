"""Media slots: how many live media sessions the host runs at once, across xdist workers.

The host decodes the agent's video, encodes and decodes the share and analyses frames for every
live session; on a small machine two sessions at once starve each other and the figures measure
the host, not the product. A slot is an flock()ed file in the run directory, so every worker of
a run shares the same slots; the lock dies with its holder, so a crashed worker never keeps one.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from pathlib import Path

from harness.errors import HarnessError

log = logging.getLogger(__name__)

SLOT_WAIT_S = 900.0
_POLL_S = 0.2


def default_slots() -> int:
    """One live session per two cores (the media benchmark's real-time figure), at least one."""
    return max(1, (os.cpu_count() or 1) // 2)


class MediaSlot:
    """Hold one of `slots` media slots of the run in `run_dir` (a context manager)."""

    def __init__(self, run_dir: Path, slots: int, wait_s: float = SLOT_WAIT_S, who: str = ""):
        if slots < 1:
            raise HarnessError(f"media slots must be at least 1, got {slots}")
        self.run_dir, self.slots, self.wait_s, self.who = Path(run_dir), slots, wait_s, who
        self._fd: int | None = None
        self.waited_s = 0.0

    def __enter__(self) -> MediaSlot:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        while True:
            for i in range(self.slots):
                fd = os.open(self.run_dir / f".media-slot-{i}", os.O_CREAT | os.O_RDWR, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                self._fd = fd
                self.waited_s = time.monotonic() - t0
                if self.waited_s > 1.0:
                    log.info("%s: waited %.1f s for a media slot", self.who, self.waited_s)
                return self
            if time.monotonic() - t0 > self.wait_s:
                raise HarnessError(
                    f"{self.who}: no media slot of {self.slots} free within {self.wait_s:g} s "
                    "(raise --media-slots, or run fewer workers)"
                )
            time.sleep(_POLL_S)

    def __exit__(self, *exc: object) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
            except OSError:  # cleanup never raises
                pass
