"""EmulatorConsoleShaper: a profile through the emulator console (`network speed|delay`).

The console is a text protocol on 127.0.0.1:<console port> (the `emulator-N` serial's N; for a
twin on adb port P it is P - 1). Replies end in `OK` or `KO: ...`; before any command but a few,
the client authenticates with the contents of ~/.emulator_console_auth_token (see
shared/reference/adb-wire-facts.md, section 3).

Mapping: `network speed UP:DOWN` in kbit/s (0 = unlimited, `full` when both are), `network
delay MIN:MAX` in ms with MIN = delay - jitter and MAX = delay + jitter. The console has no
loss, reordering, duplication, queue limit or outages, and one delay for both directions.
On exit the shaper restores what `network status` said before it applied (a journal file keeps
that state until it is restored, so a killed run is undone by the next apply or `hil net clear`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.errors import NetworkShaperError
from harness.network import profiles as P
from harness.network.profiles import NetworkProfile
from harness.network.shaper import Shaper

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_TIMEOUT_S = 5.0
TOKEN_FILE_NAME = ".emulator_console_auth_token"
STATE_DIR_ENV = "HIL_STATE_DIR"
CAPABILITIES = {
    P.DELAY: "network delay MIN:MAX",
    P.JITTER: "network delay MIN:MAX (delay - jitter : delay + jitter)",
    P.RATE: "network speed UP:DOWN (kbit/s)",
}
_MAX_REPLY_LINES = 200
_RECV_BYTES = 4096
_SPEED_TOLERANCE_BPS = 1
_STATUS_LABELS = {
    "down_bps": "download speed",
    "up_bps": "upload speed",
    "min_ms": "minimum latency",
    "max_ms": "maximum latency",
}
_STATUS_PATTERNS = {
    "down_bps": re.compile(r"download\s+speed:\s*(\d+)", re.I),
    "up_bps": re.compile(r"upload\s+speed:\s*(\d+)", re.I),
    "min_ms": re.compile(r"minimum\s+latency:\s*(\d+)", re.I),
    "max_ms": re.compile(r"maximum\s+latency:\s*(\d+)", re.I),
}


@dataclass(frozen=True)
class ConsoleNetwork:
    """What `network status` says: speeds in bit/s (0 = unlimited), latency bounds in ms."""

    up_bps: int
    down_bps: int
    min_ms: int
    max_ms: int

    def speed_arg(self) -> str:
        if self.up_bps == 0 and self.down_bps == 0:
            return "full"
        return f"{_num(self.up_bps / 1000)}:{_num(self.down_bps / 1000)}"

    def delay_arg(self) -> str:
        return f"{self.min_ms}:{self.max_ms}"

    def matches(self, other: ConsoleNetwork) -> bool:
        return (
            abs(self.up_bps - other.up_bps) <= _SPEED_TOLERANCE_BPS
            and abs(self.down_bps - other.down_bps) <= _SPEED_TOLERANCE_BPS
            and (self.min_ms, self.max_ms) == (other.min_ms, other.max_ms)
        )


UNSHAPED = ConsoleNetwork(0, 0, 0, 0)


def parse_network_status(text: str) -> ConsoleNetwork:
    """Parse the lines of `network status`.

    Raises:
        NetworkShaperError: a field is missing.
    """
    values = {}
    for key, pattern in _STATUS_PATTERNS.items():
        m = pattern.search(text)
        if not m:
            raise NetworkShaperError(
                f"`network status` has no '{_STATUS_LABELS[key]}' line: {text.strip()[:300]!r}"
            )
        values[key] = int(m.group(1))
    return ConsoleNetwork(**values)


def console_network_for(profile: NetworkProfile) -> ConsoleNetwork:
    """What `network status` should say once a (console-expressible) profile is applied."""
    d = profile.down
    u = profile.up
    return ConsoleNetwork(
        up_bps=0 if u.rate_kbit is None else round(u.rate_kbit * 1000),
        down_bps=0 if d.rate_kbit is None else round(d.rate_kbit * 1000),
        min_ms=round(d.delay_ms - d.jitter_ms),
        max_ms=round(d.delay_ms + d.jitter_ms),
    )


def console_port(serial_or_port: str | int) -> int:
    """5554 from `emulator-5554`, or the port itself.

    Raises:
        NetworkShaperError: neither.
    """
    if isinstance(serial_or_port, int):
        return serial_or_port
    m = re.fullmatch(r"(?:emulator-)?(\d{2,5})", str(serial_or_port).strip())
    if not m or not 0 < int(m.group(1)) < 65536:
        raise NetworkShaperError(
            f"{serial_or_port!r} is not an emulator serial (emulator-N) or a console port"
        )
    return int(m.group(1))


class EmulatorConsole:
    """One authenticated console session; every read has a timeout.

    Args:
        port: console port.
        host: console host (the console listens on loopback).
        token_file: auth token file (default ~/.emulator_console_auth_token, HOME respected).
        timeout_s: bound on connecting and on each reply.
    """

    def __init__(
        self,
        port: int,
        host: str = DEFAULT_HOST,
        token_file: Path | str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ):
        self.port = port
        self.host = host
        self.token_file = Path(token_file) if token_file else Path.home() / TOKEN_FILE_NAME
        self.timeout_s = timeout_s
        self._sock: socket.socket | None = None
        self._buf = b""
        self.transcript: list[str] = []

    @property
    def where(self) -> str:
        return f"console {self.host}:{self.port}"

    def open(self) -> EmulatorConsole:
        """Connect, read the banner, authenticate if asked.

        Raises:
            NetworkShaperError: cannot connect, no banner, or authentication refused.
        """
        try:
            self._sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
        except OSError as e:
            raise NetworkShaperError(f"{self.where}: cannot connect: {e}") from None
        banner = self._read_reply("banner")
        if any("authentication required" in line.lower() for line in banner):
            token = self._token()
            self.command(f"auth {token}", log_as="auth <token>")
        return self

    def command(self, line: str, log_as: str | None = None) -> list[str]:
        """Send one command; return the lines before its OK.

        Raises:
            NetworkShaperError: KO, timeout, or connection closed.
        """
        if self._sock is None:
            raise NetworkShaperError(f"{self.where}: not open")
        shown = log_as or line
        self.transcript.append(f"> {shown}")
        try:
            self._sock.sendall(line.encode() + b"\n")
        except OSError as e:
            raise NetworkShaperError(f"{self.where}: `{shown}`: send failed: {e}") from None
        return self._read_reply(shown)

    def close(self) -> None:
        """Say quit and close (never raises)."""
        if self._sock is None:
            return
        try:
            self._sock.sendall(b"quit\n")
        except OSError:
            pass
        try:
            self._sock.close()
        except OSError:
            pass
        self._sock = None

    def __enter__(self) -> EmulatorConsole:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _token(self) -> str:
        try:
            token = self.token_file.read_text(encoding="utf-8")
        except OSError as e:
            raise NetworkShaperError(
                f"{self.where} asks for authentication but the token file {self.token_file}"
                f" cannot be read: {e.strerror or e}"
            ) from None
        token = token.rstrip("\r\n")  # a trailing newline would be an extra (empty) command
        if not token:
            raise NetworkShaperError(
                f"{self.where} asks for authentication but {self.token_file} is empty"
            )
        return token

    def _read_reply(self, what: str) -> list[str]:
        deadline = time.monotonic() + self.timeout_s
        lines: list[str] = []
        for _ in range(_MAX_REPLY_LINES):
            line = self._read_line(deadline, what)
            self.transcript.append(f"< {line}")
            if line == "OK":
                return lines
            if line.startswith("KO"):
                raise NetworkShaperError(f"{self.where}: `{what}` refused: {line}")
            lines.append(line)
        raise NetworkShaperError(f"{self.where}: `{what}`: no OK within {_MAX_REPLY_LINES} lines")

    def _read_line(self, deadline: float, what: str) -> str:
        assert self._sock is not None
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise NetworkShaperError(
                    f"{self.where}: `{what}`: no reply within {self.timeout_s:g} s"
                )
            self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(_RECV_BYTES)
            except TimeoutError:
                continue
            except OSError as e:
                raise NetworkShaperError(f"{self.where}: `{what}`: {e}") from None
            if not chunk:
                raise NetworkShaperError(f"{self.where}: `{what}`: connection closed")
            self._buf += chunk
        raw, _, self._buf = self._buf.partition(b"\n")
        return raw.replace(b"\r", b"").decode("utf-8", "replace").strip()


class EmulatorConsoleShaper(Shaper):
    """A profile applied with the emulator console's `network speed` and `network delay`.

    Args:
        profile: the profile.
        serial: `emulator-5554` or the console port.
        host: console host.
        token_file: auth token file (default ~/.emulator_console_auth_token).
        timeout_s: per console reply.
        approximate: leave out loss, bursts, reordering, duplication, queue limits and outages
            (and use the mean delay for asymmetric delays) with a warning instead of refusing.
        state_dir: where the pre-apply state is journalled until restored
            (default $HIL_STATE_DIR or ~/.cache/mayday-hil).

    Raises:
        NetworkShaperError: the profile needs what the console cannot express. Nothing was sent.
    """

    kind = "console"

    def __init__(
        self,
        profile: NetworkProfile,
        serial: str | int,
        *,
        host: str = DEFAULT_HOST,
        token_file: Path | str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        approximate: bool = False,
        state_dir: Path | str | None = None,
    ):
        self.port = console_port(serial)
        self.host = host
        self.token_file = token_file
        self.timeout_s = timeout_s
        self.state_dir = Path(state_dir) if state_dir else default_state_dir()
        self.before: ConsoleNetwork | None = None
        self.transcript: list[str] = []
        super().__init__(profile, f"emulator-{self.port}", approximate=approximate)
        self.expected = console_network_for(self.profile)

    def capabilities(self) -> dict[str, str]:
        return dict(CAPABILITIES)

    def console(self) -> EmulatorConsole:
        return EmulatorConsole(self.port, self.host, self.token_file, self.timeout_s)

    def status(self) -> ConsoleNetwork:
        """What `network status` says now."""
        with self.console() as c:
            try:
                return parse_network_status("\n".join(c.command("network status")))
            finally:
                self.transcript += c.transcript

    @property
    def journal(self) -> Path:
        return self.state_dir / f"console-{self.host}-{self.port}.json"

    def _apply(self) -> None:
        stale = read_journal(self.journal)
        with self.console() as c:
            try:
                now = parse_network_status("\n".join(c.command("network status")))
                # A journal means a run was killed before restoring: its state is the original.
                self.before = stale or now
                if stale:
                    self.report.note(
                        f"journal {self.journal} from an interrupted run: restoring to {stale}"
                    )
                write_journal(self.journal, self.before)
                self._set(c, self.expected)
                after = parse_network_status("\n".join(c.command("network status")))
            finally:
                self.transcript += c.transcript
        if not after.matches(self.expected):
            raise NetworkShaperError(
                f"{self.target}: `network status` says {after} after applying"
                f" {self.profile.name!r}, expected {self.expected}"
            )
        self.report.note(f"network status: {after}")

    def _clear(self) -> None:
        if self.before is None:  # apply failed before changing anything: leave the console be
            self.report.note("nothing was changed: nothing to restore")
            return
        target = self.before
        restore_console(self.console(), target, self.transcript)
        self.report.note(f"restored {target}")
        remove_journal(self.journal)

    def _set(self, c: EmulatorConsole, net: ConsoleNetwork) -> None:
        for line in (f"network speed {net.speed_arg()}", f"network delay {net.delay_arg()}"):
            self.report.note(line)
            c.command(line)


def restore_console(
    console: EmulatorConsole, target: ConsoleNetwork, transcript: list[str]
) -> None:
    """Set speed and delay back and check `network status` agrees.

    Raises:
        NetworkShaperError: the console refused or still reports something else.
    """
    with console as c:
        try:
            c.command(f"network speed {target.speed_arg()}")
            c.command(f"network delay {target.delay_arg()}")
            now = parse_network_status("\n".join(c.command("network status")))
        finally:
            transcript += c.transcript
    if not now.matches(target):
        raise NetworkShaperError(f"{console.where}: status {now} after restoring {target}")


def clear_console(
    serial: str | int,
    host: str = DEFAULT_HOST,
    token_file: Path | str | None = None,
    state_dir: Path | str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> ConsoleNetwork:
    """Undo shaping on a console: the journalled original state if any, else unshaped.

    Raises:
        NetworkShaperError: the console refused (for `hil net clear`, which reports it).
    """
    port = console_port(serial)
    journal = Path(state_dir or default_state_dir()) / f"console-{host}-{port}.json"
    target = read_journal(journal) or UNSHAPED
    restore_console(EmulatorConsole(port, host, token_file, timeout_s), target, [])
    remove_journal(journal)
    return target


def default_state_dir() -> Path:
    env = os.environ.get(STATE_DIR_ENV)
    return Path(env) if env else Path.home() / ".cache" / "mayday-hil"


def read_journal(path: Path) -> ConsoleNetwork | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return ConsoleNetwork(
            **{k: int(data[k]) for k in ("up_bps", "down_bps", "min_ms", "max_ms")}
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as e:
        log.warning("ignoring unreadable console journal %s: %s", path, e)
        return None


def write_journal(path: Path, state: ConsoleNetwork) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(state)), encoding="utf-8")
    tmp.replace(path)


def remove_journal(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as e:
        log.warning("cannot remove console journal %s: %s", path, e)


def _num(x: float) -> str:
    return f"{x:.3f}".rstrip("0").rstrip(".")
