"""The emulator console on adb port - 1 (android-emu console.cpp, network/constants.c)."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.twin.device import Twin

log = logging.getLogger(__name__)

_TASKS: set[asyncio.Task] = set()  # fire-and-forget tasks, referenced until they finish


def _keep(task: asyncio.Task) -> asyncio.Task:
    """Keep a reference to a background task (the loop holds only weak ones) until it is done."""
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)
    return task


# kbit/s (up, down); 0 = unlimited
SPEEDS = {
    "gsm": (14.4, 14.4),
    "hscsd": (14.4, 57.6),
    "gprs": (28.8, 57.6),
    "umts": (384.0, 384.0),
    "edge": (473.6, 473.6),
    "hsdpa": (5760.0, 13980.0),
    "lte": (58000.0, 173000.0),
    "evdo": (75000.0, 280000.0),
    "5g": (0.0, 0.0),
    "full": (0.0, 0.0),
}
# ms (min, max)
DELAYS = {
    "gsm": (150, 550),
    "hscsd": (80, 400),
    "gprs": (35, 200),
    "umts": (35, 200),
    "edge": (80, 400),
    "hsdpa": (0, 0),
    "lte": (0, 0),
    "evdo": (0, 0),
    "none": (0, 0),
}
_IDLE_TIMEOUT_S = 600.0
_PRE_AUTH = {"help", "h", "?", "ping", "avd", "auth", "quit", "exit"}


def token_path() -> Path:
    return Path(os.path.expanduser("~")) / ".emulator_console_auth_token"


class ConsoleServer:
    def __init__(self, twin: Twin):
        self.twin = twin
        self.port = twin.port - 1
        self.server: asyncio.base_events.Server | None = None
        self.clients: set[asyncio.StreamWriter] = set()
        opts = twin.options
        self.token_file = opts.console_token_path or token_path()
        if opts.console_token is not None:
            self.token = opts.console_token
        else:
            if not self.token_file.exists():  # the emulator creates one on first start
                from harness.twin.backend import write_token_file

                write_token_file(self.token_file, secrets.token_urlsafe(12))  # 0600
            self.token = self.token_file.read_text()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for w in list(self.clients):
            try:
                w.close()
            except Exception as e:  # noqa: BLE001 -- cleanup never raises: it logs
                log.debug("console: closing a client: %s", e)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.clients.add(writer)
        authed = not self.token.strip()
        try:
            if authed:
                writer.write(b"Android Console: type 'help' for a list of commands\r\nOK\r\n")
            else:
                writer.write(
                    b"Android Console: Authentication required\r\n"
                    b"Android Console: type 'auth <auth_token>' to authenticate\r\n"
                    b"Android Console: you can find your <auth_token> in \r\n"
                    + f"'{self.token_file}'\r\nOK\r\n".encode()
                )
            await writer.drain()
            while True:
                raw = await asyncio.wait_for(reader.readline(), _IDLE_TIMEOUT_S)
                if not raw:
                    return
                line = raw.decode("utf-8", "replace").replace("\r", "").strip()
                words = line.split()
                if not words:
                    writer.write(b"KO: unknown command, try 'help'\r\n")
                    await writer.drain()
                    continue
                if not authed and words[0] not in _PRE_AUTH:
                    writer.write(b"KO: unknown command, try 'help'\r\n")
                elif words[0] == "auth":
                    given = line[len("auth") :].strip()
                    if given == self.token.strip():
                        authed = True
                        writer.write(
                            b"Android Console: type 'help' for a list of commands\r\nOK\r\n"
                        )
                    else:
                        writer.write(
                            b"KO: authentication token does not match ~/.emulator_console_auth_token\r\n"
                        )
                elif words[0] in ("quit", "exit"):
                    return
                else:
                    writer.write(self.execute(words).encode())
                await writer.drain()
                if words[0] == "kill" and authed:
                    _keep(asyncio.get_running_loop().create_task(self.twin.stop()))
                    return
        except (TimeoutError, ConnectionError):
            return
        finally:
            self.clients.discard(writer)
            try:
                writer.close()
            except Exception as e:  # noqa: BLE001 -- cleanup never raises: it logs
                log.debug("console: closing the client: %s", e)

    def execute(self, words: list[str]) -> str:
        cmd = words[0]
        if cmd in ("help", "h", "?"):
            return (
                "Android console command help:\r\n\r\n"
                "    help|h|?         print a list of commands\r\n"
                "    network          manage network settings\r\n"
                "    avd              control virtual device execution\r\n"
                "    kill             kill the emulator instance\r\n"
                "    ping             check if the emulator is alive\r\n"
                "    quit|exit        quit control session\r\n\r\n"
                "try 'help <command>' for command-specific help\r\nOK\r\n"
            )
        if cmd == "ping":
            return "I am alive!\r\nOK\r\n"
        if cmd == "avd":
            if words[1:2] == ["name"]:
                return f"{self.twin.profile.name}\r\nOK\r\n"
            if words[1:2] == ["status"]:
                return "virtual device is running\r\nOK\r\n"
            return "KO: bad sub-command\r\n"
        if cmd == "kill":
            self.twin.truth.record("console_kill")
            return "OK: killing emulator, bye bye\r\n"
        if cmd == "network":
            return self._network(words[1:])
        return "KO: unknown command, try 'help'\r\n"

    def _network(self, args: list[str]) -> str:
        net = self.twin.network
        if args[:1] == ["status"]:
            return (
                "Current network status:\r\n"
                f"  download speed:   {int(net.down_kbps * 1000):8d} bits/s ({net.down_kbps * 1000 / 8192:.1f} KB/s)\r\n"
                f"  upload speed:     {int(net.up_kbps * 1000):8d} bits/s ({net.up_kbps * 1000 / 8192:.1f} KB/s)\r\n"
                f"  minimum latency:  {net.min_delay_ms} ms\r\n"
                f"  maximum latency:  {net.max_delay_ms} ms\r\nOK\r\n"
            )
        if args[:1] == ["speed"] and len(args) == 2:
            value = args[1]
            if value in SPEEDS:
                up, down = SPEEDS[value]
            else:
                try:
                    parts = [float(x) for x in value.split(":")]
                except ValueError:
                    return "KO: bad speed value, see 'help network speed'\r\n"
                if len(parts) not in (1, 2) or any(not math.isfinite(x) or x < 0 for x in parts):
                    return "KO: bad speed value, see 'help network speed'\r\n"
                up, down = (parts[0], parts[0]) if len(parts) == 1 else (parts[0], parts[1])
            net.up_kbps, net.down_kbps = up, down
            self.twin.truth.record("console_network", speed=value, up_kbps=up, down_kbps=down)
            return "OK\r\n"
        if args[:1] == ["delay"] and len(args) == 2:
            value = args[1]
            if value in DELAYS:
                lo, hi = DELAYS[value]
            else:
                try:
                    parts = [int(x) for x in value.split(":")]
                except ValueError:
                    return "KO: bad delay value, see 'help network delay'\r\n"
                if len(parts) not in (1, 2) or any(x < 0 for x in parts) or parts[0] > parts[-1]:
                    return "KO: bad delay value, see 'help network delay'\r\n"
                lo, hi = parts[0], parts[-1]
            net.min_delay_ms, net.max_delay_ms = lo, hi
            self.twin.truth.record("console_network", delay=value, min_delay_ms=lo, max_delay_ms=hi)
            return "OK\r\n"
        return "KO: bad sub-command, see 'help network'\r\n"
