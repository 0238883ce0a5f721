"""Child processes of a run: one way to start, wait for, register and stop them.

Every child (adb server, twins, the reaper itself, impairment relays, UDP sinks) is started in
its own process group, recorded in the run's reaper ledger (harness.farm.reaper) right after it
is spawned and before anything waits on it, and stopped by its group: SIGTERM (or the signal the
child prefers), then SIGKILL after a grace period. Stopping never raises; it logs.

The run's ledger is found in $HIL_REAPER_LEDGER (set by the Reaper that watches the run, and
inherited by xdist workers), so a child started anywhere in the run, by a fixture or by a test
that starts its own adb server and twins, is reaped when the run is killed outright.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

LEDGER_ENV = "HIL_REAPER_LEDGER"
STOP_GRACE_S = 5.0
READY_POLL_S = 0.2


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22); None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields and fields[0] == "Z":  # a zombie has finished: it counts as gone
        return None
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def alive(pid: int, started: int | None) -> bool:
    """True while pid runs and (if given) started at `started` (a reused PID is not alive)."""
    st = start_time(pid)
    return st is not None and (started is None or st == started)


def run_ledger() -> Path | None:
    """The ledger of the run this process belongs to ($HIL_REAPER_LEDGER), or None."""
    value = os.environ.get(LEDGER_ENV)
    return Path(value) if value else None


def _append(ledger: Path | None, line: str, what: str) -> bool:
    """Append one line to the run's ledger (one short O_APPEND write). Never raises."""
    ledger = ledger or run_ledger()
    if ledger is None:
        return False
    try:
        fd = os.open(ledger, os.O_WRONLY | os.O_APPEND)  # no O_CREAT: see register()
    except OSError as e:
        log.warning("reaper ledger %s: %s (%s not recorded)", ledger, e, what)
        return False
    try:
        os.write(fd, line.encode())  # atomic between the run's processes
        return True
    except OSError as e:
        log.warning("reaper ledger %s: %s (%s not recorded)", ledger, e, what)
        return False
    finally:
        os.close(fd)


def register(pid: int, ledger: Path | None = None, group: bool = True) -> bool:
    """Record a process group leader (group=True) or one process in the run's ledger; True if
    recorded. Never raises.

    A ledger that is gone belongs to a run that already cleaned up: it is not recreated.
    """
    kind = "" if group else " pid"
    return _append(ledger, f"{pid} {start_time(pid) or 0}{kind}\n", f"pid {pid}")


def register_dir(path: Path, ledger: Path | None = None) -> bool:
    """Record a temporary directory of the run: the reaper removes it if the run is killed."""
    if "\n" in str(path):
        return False
    return _append(ledger, f"dir {path}\n", str(path))


def stop_group(
    proc: subprocess.Popen,
    name: str,
    first: signal.Signals = signal.SIGTERM,
    grace_s: float = STOP_GRACE_S,
) -> int | None:
    """Stop a child started in its own process group: `first` to the group, SIGKILL to the group
    after grace_s. Returns its exit code (None if it could not be reaped). Never raises."""
    try:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, first)
            except (ProcessLookupError, PermissionError):
                proc.send_signal(first)
            try:
                return proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                log.warning(
                    "%s (pid %d) ignored %s for %.1f s: SIGKILL",
                    name,
                    proc.pid,
                    first.name,
                    grace_s,
                )
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass  # the leader is gone and its group with it
        return proc.wait(grace_s)
    except Exception as e:  # noqa: BLE001 -- cleanup never raises: it logs
        log.warning("could not stop %s (pid %d): %s", name, proc.pid, e)
        return None


class Child:
    """One child process of the run, in its own process group, registered with the reaper.

    Args:
        name: what the logs and errors call it ("adb server on 5038", "twin fire-hdx-7").
        cmd: argv.
        env: its environment (default: this process's).
        stdout, stderr: as for subprocess.Popen (PIPE to read its ready line).
        text: decode its pipes as text.
        ledger: the reaper ledger (default: the run's, $HIL_REAPER_LEDGER).
        cwd: its working directory (default: this process's).
        preexec_fn: as for subprocess.Popen (e.g. signal dispositions back to their defaults).
    """

    def __init__(
        self,
        name: str,
        cmd: Sequence[str],
        env: Mapping[str, str] | None = None,
        stdout: int | IO | None = subprocess.DEVNULL,
        stderr: int | IO | None = subprocess.DEVNULL,
        text: bool = False,
        ledger: Path | None = None,
        cwd: Path | None = None,
        preexec_fn: Callable[[], object] | None = None,
    ):
        self.name = name
        self.cmd = list(cmd)
        self.env = dict(env) if env is not None else None
        self.stdout = stdout
        self.stderr = stderr
        self.text = text
        self.ledger = ledger
        self.cwd = cwd
        self.preexec_fn = preexec_fn
        self.proc: subprocess.Popen | None = None
        self.registered = False
        self._buf = b""
        self._eof = False

    def spawn(self) -> Child:
        """Start it in its own session and record it in the ledger before returning.

        Raises:
            OSError: the program could not be started.
        """
        self.proc = subprocess.Popen(
            self.cmd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self.stdout,
            stderr=self.stderr,
            text=self.text,
            cwd=self.cwd,
            preexec_fn=self.preexec_fn,
            start_new_session=True,
        )
        self.registered = register(self.proc.pid, self.ledger)
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def poll(self) -> int | None:
        """Its exit code, or None while it runs (or was never started)."""
        return self.proc.poll() if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def eof(self) -> bool:
        """True once its stdout ended (it exited or closed it)."""
        return self._eof

    def read_line(self, timeout_s: float) -> str | None:
        """The next line of its stdout (without the newline), waiting at most timeout_s.

        Returns None past the deadline and once its stdout ended (see .eof). Lines are read
        from the raw pipe, so a partial line is kept for the next call.
        """
        if self.proc is None or self.proc.stdout is None:
            raise ValueError(f"{self.name}: started without stdout=PIPE")
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._buf:
            if self._eof:
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], min(remaining, READY_POLL_S))
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                self._eof = True
                return None
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode("utf-8", "replace").rstrip("\r")

    def wait_ready(self, ready, timeout_s: float) -> str | None:
        """Read lines until `ready(line)` is true; the line, or None past timeout_s or at exit."""
        deadline = time.monotonic() + timeout_s
        while True:
            line = self.read_line(max(0.0, deadline - time.monotonic()))
            if line is None:
                return None
            if ready(line):
                return line

    def communicate(self, timeout_s: float) -> tuple[str | bytes, str | bytes]:
        """Whatever is left on its pipes, once it exited (bounded).

        Raises:
            subprocess.TimeoutExpired: it is still running after timeout_s.
        """
        assert self.proc is not None
        out, err = self.proc.communicate(timeout=timeout_s)
        if self._buf:
            head = self._buf.decode("utf-8", "replace") if self.text else self._buf
            out = head + (out or ("" if self.text else b""))
            self._buf = b""
        return out or ("" if self.text else b""), err or ("" if self.text else b"")

    def send_signal(self, sig: signal.Signals) -> None:
        """Send sig to its process group (if it still runs). Never raises."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except OSError as e:
            log.info("%s (pid %d): %s: %s", self.name, self.proc.pid, sig.name, e)

    def stop(
        self, first: signal.Signals = signal.SIGTERM, grace_s: float = STOP_GRACE_S
    ) -> int | None:
        """Stop its process group (first, then SIGKILL after grace_s); its exit code. Never raises."""
        if self.proc is None:
            return None
        return stop_group(self.proc, self.name, first, grace_s)

    def close_pipes(self) -> None:
        """Close our ends of its pipes (after it stopped). Never raises."""
        if self.proc is None:
            return
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                try:
                    pipe.close()
                except OSError as e:
                    log.debug("%s: closing a pipe: %s", self.name, e)
