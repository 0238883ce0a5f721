"""The reaper: stops a run's processes when the run itself dies without cleaning up.

A run starts its adb server and twins in their own sessions (so a Ctrl-C meant for pytest does
not hit them half-way) and stops them by PID when it ends. A run killed outright (SIGKILL, the
OOM killer, a CI runner tearing the job down) runs no cleanup at all: those processes would
live on. So a run also starts one small reaper process that watches it: when the run's process
is gone, the reaper stops every process group listed in its ledger (SIGTERM, then SIGKILL after
REAP_GRACE_S) and exits. When the run stops normally it removes the ledger and stops the reaper.

Ledger: one line per process group, "PGID STARTTIME" (STARTTIME from /proc/PID/stat, so a
reused PID is never killed by mistake). Entry kind "stf-lease URL SERIAL": a device leased from
an STF farm; "stf-released URL SERIAL" cancels it. The reaper releases what is still leased
(DELETE remoteConnect, DELETE the lease) with the token from its environment (HIL_STF_TOKEN,
never in the ledger) before it stops the processes.

    python -m harness.farm.reaper PARENT_PID PARENT_STARTTIME LEDGER
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)

POLL_S = 0.25
REAP_GRACE_S = 3.0
MAX_WATCH_S = 7 * 86_400.0  # a reaper never outlives a week, whatever happens
STF_LEASE = "stf-lease"
STF_RELEASED = "stf-released"
STF_TOKEN_ENV = "HIL_STF_TOKEN"
STF_RELEASE_TIMEOUT_S = 5.0


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
    st = start_time(pid)
    return st is not None and (started is None or st == started)


class Reaper:
    """The run's side: start the reaper, record process groups in its ledger, stop it."""

    def __init__(self, ledger: Path):
        self.ledger = ledger
        self.proc: subprocess.Popen | None = None

    def start(self, env: dict[str, str] | None = None) -> Reaper:
        """Start watching this process. Never raises: without a reaper the run still works, and
        its normal cleanup still stops everything (a warning says what is lost). env: added to
        the reaper's environment (the STF token: HIL_STF_TOKEN)."""
        me = os.getpid()
        try:
            self.ledger.parent.mkdir(parents=True, exist_ok=True)
            self.ledger.write_text("")
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "harness.farm.reaper",
                    str(me),
                    str(start_time(me) or 0),
                    str(self.ledger),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, **env} if env else None,
            )
        except OSError as e:
            log.warning("no reaper (%s): a run killed outright would leave its processes behind", e)
            self.proc = None
        return self

    def watch(self, pid: int) -> None:
        """Record a process group leader (started with start_new_session=True). Never raises."""
        if self.proc is None:
            return
        try:
            with self.ledger.open("a") as f:
                f.write(f"{pid} {start_time(pid) or 0}\n")
        except OSError as e:
            log.warning("reaper ledger %s: %s", self.ledger, e)

    def watch_stf_lease(self, url: str, serial: str) -> None:
        """Record a device leased from the STF farm at url. Never raises."""
        self._append(f"{STF_LEASE} {url} {serial}\n")

    def forget_stf_lease(self, url: str, serial: str) -> None:
        """The run released it itself. Never raises."""
        self._append(f"{STF_RELEASED} {url} {serial}\n")

    def _append(self, line: str) -> None:
        if self.proc is None:
            return
        try:
            with self.ledger.open("a") as f:
                f.write(line)
        except OSError as e:
            log.warning("reaper ledger %s: %s", self.ledger, e)

    def stop(self, timeout_s: float = 3.0) -> None:
        """The run cleaned up itself: drop the ledger, stop the reaper by its PID. Never raises."""
        try:
            self.ledger.unlink(missing_ok=True)
        except OSError:
            pass
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            proc.terminate()
            proc.wait(timeout_s)
        except Exception:  # cleanup never raises
            try:
                proc.kill()
                proc.wait(timeout_s)
            except Exception as e:
                log.warning("reaper %s did not stop: %s", proc.pid, e)


def _read_ledger(ledger: Path) -> list[tuple[int, int]]:
    out = []
    try:
        text = ledger.read_text()
    except OSError:
        return out
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
            out.append((int(parts[0]), int(parts[1])))
    return out


def _read_stf_leases(ledger: Path) -> list[tuple[str, str]]:
    """(url, serial) of every STF lease in the ledger not released since."""
    held: dict[tuple[str, str], None] = {}
    try:
        text = ledger.read_text()
    except OSError:
        return []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == STF_LEASE:
            held[(parts[1], parts[2])] = None
        elif len(parts) == 3 and parts[0] == STF_RELEASED:
            held.pop((parts[1], parts[2]), None)
    return list(held)


def release_stf_leases(leases: list[tuple[str, str]], token: str | None) -> int:
    """DELETE remoteConnect and the lease of each; the number released. Never raises."""
    import urllib.error
    import urllib.request

    released = 0
    for url, serial in leases:
        ok = True
        for path in (
            f"/api/v1/user/devices/{serial}/remoteConnect",
            f"/api/v1/user/devices/{serial}",
        ):
            req = urllib.request.Request(
                url + path, method="DELETE", headers={"Authorization": f"Bearer {token or ''}"}
            )
            try:
                with urllib.request.urlopen(req, timeout=STF_RELEASE_TIMEOUT_S) as resp:
                    ok = ok and bool(json.loads(resp.read() or b"{}").get("success", True))
            except (urllib.error.URLError, OSError, ValueError) as e:
                ok = False
                log.info("reaper: STF %s %s: %s", url, path, e)
        released += ok
    return released


def reap(entries: list[tuple[int, int]], grace_s: float = REAP_GRACE_S) -> list[int]:
    """SIGTERM each live process group, SIGKILL what is left after grace_s; the PIDs signalled."""
    live = [(pid, st) for pid, st in entries if alive(pid, st or None)]
    for pid, _ in live:
        try:
            os.killpg(pid, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(alive(pid, st or None) for pid, st in live):
        time.sleep(0.05)
    for pid, st in live:
        if alive(pid, st or None):
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
    return [pid for pid, _ in live]


def main(argv: list[str]) -> int:
    parent, parent_start, ledger = int(argv[0]), int(argv[1]), Path(argv[2])
    signal.signal(
        signal.SIGTERM, lambda *_: sys.exit(0)
    )  # the run stopped us: it cleaned up itself
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C for the run is not for us
    end = time.monotonic() + MAX_WATCH_S
    while time.monotonic() < end:
        if not ledger.exists():
            return 0  # the run cleaned up itself
        if not alive(parent, parent_start or None):
            release_stf_leases(_read_stf_leases(ledger), os.environ.get(STF_TOKEN_ENV))
            reap(_read_ledger(ledger))
            try:
                ledger.unlink()
            except OSError:
                pass
            return 0
        time.sleep(POLL_S)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
