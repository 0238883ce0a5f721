"""pytest plugin (``-p tests.twin.peer.redirect``) for adbutils' e2etests run against a twin.

adbutils' own tests find the adb server through ``ANDROID_ADB_SERVER_PORT``, except
``test_adb.py``, which builds ``AdbClient("127.0.0.1", 5037)`` at import time. This plugin sends
every client to the run's private adb server instead, so the peer tests never reach a server
on 5037. It changes where the client connects, nothing of what it does.
"""

from __future__ import annotations

import os

import adbutils
from adbutils._adb import BaseClient

_PRIVATE_PORT = int(os.environ["MAYDAY_PEER_ADB_PORT"])
_init = BaseClient.__init__


def _private_init(self, host=None, port=None, socket_timeout=None) -> None:  # noqa: ANN001
    _init(self, host="127.0.0.1", port=_PRIVATE_PORT, socket_timeout=socket_timeout)


BaseClient.__init__ = _private_init  # type: ignore[method-assign]
adbutils.adb = adbutils.AdbClient()
