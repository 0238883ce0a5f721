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
import shutil
import signal
import sys
import time
from pathlib import Path

from harness.farm.process import LEDGER_ENV, Child, alive, register, register_dir, start_time

__all__ = ["Reaper", "alive", "main", "read_ledger", "reap", "remove_dirs", "start_time"]

log = logging.getLogger(__name__)

POLL_S = 0.25
REAP_GRACE_S = 3.0
MAX_WATCH_S = 7 * 86_400.0  # a reaper never outlives a week, whatever happens
STF_LEASE = "stf-lease"
STF_RELEASED = "stf-released"
STF_TOKEN_ENV = "HIL_STF_TOKEN"
STF_RELEASE_TIMEOUT_S = 5.0


class Reaper:
    """The run's side: start the reaper, record process groups in its ledger, stop it."""

    def __init__(self, ledger: Path):
        self.ledger = ledger
        self.proc = None  # the reaper's subprocess.Popen while it watches
        self._child: Child | None = None
        self._previous_env: str | None = None

    def start(self, env: dict[str, str] | None = None) -> Reaper:
        """Start watching this process. Never raises: without a reaper the run still works, and
        its normal cleanup still stops everything (a warning says what is lost).

        While it watches, $HIL_REAPER_LEDGER names its ledger, so every child this run (or an
        xdist worker of it) starts through harness.farm.process is recorded there. env: added to
        the reaper's environment (the STF token: HIL_STF_TOKEN)."""
        me = os.getpid()
        try:
            self.ledger.parent.mkdir(parents=True, exist_ok=True)
            self.ledger.write_text("")
            child = Child(
                "reaper",
                [sys.executable, "-m", "harness.farm.reaper", str(me), str(start_time(me) or 0)]
                + [str(self.ledger)],
                env={**os.environ, **env} if env else None,
            ).spawn()  # an outer run's ledger (if any) records this reaper
        except OSError as e:
            log.warning("no reaper (%s): a run killed outright would leave its processes behind", e)
            self.proc = None
            return self
        self.proc = child.proc
        self._child = child
        self._previous_env = os.environ.get(LEDGER_ENV)
        os.environ[LEDGER_ENV] = str(self.ledger)
        return self

    def watch(self, pid: int) -> None:
        """Record a process group leader (started with start_new_session=True). Never raises."""
        if self.proc is None:
            return
        register(pid, self.ledger)

    def track_dir(self, path: Path) -> None:
        """Record a temporary directory of the run (removed by the reaper if the run is killed)."""
        if self.proc is not None:
            register_dir(path, self.ledger)

    def reap_leftovers(self, grace_s: float = REAP_GRACE_S) -> list[int]:
        """Stop what is still running of the run's recorded processes (those a worker or a test
        started and did not stop: a worker killed mid-test runs no cleanup). Never raises."""
        if self.proc is None:
            return []
        procs, _ = read_ledger(self.ledger)
        try:
            pids = reap(procs, grace_s)
        except Exception as e:  # noqa: BLE001 -- cleanup never raises: it logs
            log.warning("reaping the run's leftover processes: %s", e)
            return []
        if pids:
            log.warning("stopped %d process(es) the run left running: %s", len(pids), pids)
        return pids

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
        if os.environ.get(LEDGER_ENV) == str(self.ledger):
            if self._previous_env is None:
                os.environ.pop(LEDGER_ENV, None)
            else:
                os.environ[LEDGER_ENV] = self._previous_env
        try:
            self.ledger.unlink(missing_ok=True)
        except OSError as e:
            log.warning("reaper ledger %s: %s", self.ledger, e)
        child, self._child, self.proc = self._child, None, None
        if child is not None:
            child.stop(grace_s=timeout_s)


Entry = tuple[int, int] | tuple[int, int, bool]


def read_ledger(ledger: Path) -> tuple[list[tuple[int, int, bool]], list[Path]]:
    """The ledger's processes (pid, start time, is a group) and temporary directories."""
    procs: list[tuple[int, int, bool]] = []
    dirs: list[Path] = []
    try:
        text = ledger.read_text()
    except OSError:
        return procs, dirs
    for line in text.splitlines():
        if line.startswith("dir "):
            dirs.append(Path(line[4:]))
            continue
        parts = line.split()
        if len(parts) in (2, 3) and parts[0].isdigit() and parts[1].isdigit():
            procs.append((int(parts[0]), int(parts[1]), parts[2:] != ["pid"]))
    return procs, dirs


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


def _kill(pid: int, group: bool, sig: signal.Signals) -> None:
    try:
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except OSError as e:
        log.info("reap: %s to %s %d: %s", sig.name, "group" if group else "pid", pid, e)


def reap(entries: list[Entry], grace_s: float = REAP_GRACE_S) -> list[int]:
    """SIGTERM each live process group (or process), SIGKILL what is left after grace_s; the
    PIDs signalled. Entries: (pid, start time) of group leaders, or (pid, start time, group)."""
    full = [(e[0], e[1], e[2] if len(e) > 2 else True) for e in entries]
    live = [(pid, st, group) for pid, st, group in full if alive(pid, st or None)]
    for pid, _, group in live:
        _kill(pid, group, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(alive(pid, st or None) for pid, st, _ in live):
        time.sleep(0.05)
    for pid, st, group in live:
        if alive(pid, st or None):
            _kill(pid, group, signal.SIGKILL)
    return [pid for pid, _, _ in live]


def remove_dirs(dirs: list[Path]) -> None:
    """Remove the run's temporary directories. Never raises."""
    for d in dirs:
        shutil.rmtree(d, onerror=lambda _f, p, e: log.info("removing %s: %s", p, e[1]))


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
            procs, dirs = read_ledger(ledger)
            reap(procs)
            remove_dirs(dirs)
            ledger.unlink(missing_ok=True)
            return 0
        time.sleep(POLL_S)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
