"""RelayProcess: `hil net relay` as a child process (harness.farm.process), so its timing
shares no Python lock with the caller's."""

from __future__ import annotations

import logging
from typing import Any

from harness.errors import NetworkShaperError
from harness.farm.process import Child
from harness.network.impairment.settings import Address

log = logging.getLogger(__name__)


class RelayProcess:
    """`hil net relay` as a child process: its timing does not share a Python lock with yours.

    Args:
        profile: library name or FILE.yaml[#NAME].
        target: (host, port) to forward to.
        listen: (host, port); port 0 picks one (see .address after start()).
        protocol: "udp" or "tcp".
        seed: seed of every random decision.
        forward: profile direction of client -> target traffic.
        extra_args: more `hil net relay` arguments.
    """

    def __init__(
        self,
        profile: str,
        target: Address,
        *,
        listen: Address = ("127.0.0.1", 0),
        protocol: str = "udp",
        seed: int = 0,
        forward: str = "up",
        extra_args: tuple[str, ...] = (),
    ):
        import sys

        self.cmd = [
            sys.executable,
            "-m",
            "harness.cli",
            "net",
            "relay",
            "--listen",
            f"{listen[0]}:{listen[1]}",
            "--to",
            f"{target[0]}:{target[1]}",
            "--profile",
            str(profile),
            "--seed",
            str(seed),
            f"--{protocol}",
            "--forward",
            forward,
            "--json",
            *extra_args,
        ]
        self.child: Child | None = None
        self.address: Address | None = None
        self.final: dict[str, Any] | None = None

    def start(self, timeout_s: float = 15.0) -> Address:
        """Start it and wait (bounded) for its listening line.

        Raises:
            NetworkShaperError: it exited or said nothing in time.
        """
        import json
        import subprocess

        self.child = Child(
            "impairment relay", self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ).spawn()
        line = self.child.read_line(timeout_s)
        if not line:
            err = self._stop_now()
            raise NetworkShaperError(
                f"relay process did not start within {timeout_s:g} s: {err[-500:]}"
            )
        info = json.loads(line)
        self.address = (info["listen"][0], int(info["listen"][1]))
        return self.address

    @property
    def proc(self):
        """Its subprocess.Popen while it runs (None before start())."""
        return self.child.proc if self.child is not None else None

    def stop(self, timeout_s: float = 10.0) -> dict[str, Any] | None:
        """SIGINT, then its final counters (a dict as RelayCounters.to_dict()); never raises."""
        import json
        import signal
        import subprocess

        if self.child is None or self.child.proc is None:
            return self.final
        try:
            self.child.send_signal(signal.SIGINT)
            out, err = self.child.communicate(timeout_s)
        except subprocess.TimeoutExpired:
            self._stop_now()
            log.error("relay process did not stop within %.1f s; killed", timeout_s)
            return None
        except (OSError, ValueError) as e:
            log.error("relay process: %s", e)
            return None
        for line in out.splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if item.get("event") == "stopped":
                self.final = item["counters"]
        if self.final is None:
            log.error("relay process gave no counters: %s", err[-500:])
        return self.final

    def _stop_now(self) -> str:
        """SIGKILL its group; what it wrote to stderr. Never raises."""
        import signal
        import subprocess

        assert self.child is not None
        self.child.stop(first=signal.SIGKILL)
        try:
            _, err = self.child.communicate(5.0)
        except (subprocess.TimeoutExpired, OSError, ValueError) as e:
            log.info("relay process: reading its stderr: %s", e)
            err = ""
        return err or ""

    def __enter__(self) -> RelayProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
