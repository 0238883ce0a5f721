"""adbutils clients pinned to one adb server, which never start a server themselves.

adbutils.AdbClient runs `adb start-server` whenever it cannot connect (on
$ANDROID_ADB_SERVER_PORT or 5037, whatever port the client was given): when a run's private adb
server dies, any adbutils call would leave a stray adb daemon behind (listening on mDNS too).
The harness's clients refuse instead: a server that is gone is an adbutils.AdbConnectionError,
which callers turn into one AdbError naming the server. Never use the module-level
`adbutils.adb` singleton or an AdbClient without host and port.
"""

from __future__ import annotations

import adbutils
from adbutils._adb import AdbConnection

DEFAULT_SOCKET_TIMEOUT_S = 10.0


class _NoStartConnection(AdbConnection):
    """A connection to the adb server that fails, instead of starting one, when none answers."""

    def _safe_connect(self):
        return self._create_socket()


class PinnedAdbClient(adbutils.AdbClient):
    """An adbutils client for exactly host:port that never starts an adb server."""

    def __init__(self, host: str, port: int, socket_timeout: float = DEFAULT_SOCKET_TIMEOUT_S):
        if not host or not port:
            raise ValueError("an adb client needs an explicit host and port")
        super().__init__(host=host, port=port, socket_timeout=socket_timeout)
        self._timeout_s = socket_timeout

    def make_connection(self, timeout: float | None = None) -> AdbConnection:
        """Connect to this client's server (no start-server on failure).

        Raises:
            adbutils.AdbTimeout: connecting timed out.
            adbutils.AdbConnectionError: nothing answered on host:port.
        """
        timeout = timeout or self._timeout_s
        try:
            conn = _NoStartConnection(self.host, self.port)
        except TimeoutError:
            raise adbutils.AdbTimeout("connect to adb server timeout") from None
        if timeout:
            conn.conn.settimeout(timeout)
        return conn


def adb_client(
    host: str, port: int, timeout_s: float = DEFAULT_SOCKET_TIMEOUT_S
) -> PinnedAdbClient:
    """The adbutils client of the adb server at host:port (pinned; never starts a server)."""
    return PinnedAdbClient(host, port, socket_timeout=timeout_s)
