"""The typed twin control client against a real twin process: typed replies, and every failure
one TwinControlError naming the twin and the op."""

from __future__ import annotations

import pytest

from harness.errors import HarnessError
from harness.farm.control import BackendInfo, TwinControl, TwinControlError, TwinStatus


def test_typed_replies_and_errors(start_twin, tmp_path):
    tp = start_twin("android-emulator-api34")
    ctl = tp.client()
    status = ctl.status()
    assert isinstance(status, TwinStatus)
    assert status.serial == tp.twins[0].serial and status.port == tp.twins[0].port
    assert status.wifi is True
    assert ctl.twins() == {tp.twins[0].serial: tp.twins[0].port}
    info = ctl.backend(answer_s=0.7)
    assert isinstance(info, BackendInfo) and info.address[0] == "127.0.0.1"
    ctl.wifi(False)
    assert ctl.status().wifi is False
    ctl.wifi(True)
    assert ctl.region("DE", "Europe/Berlin") == ("DE", "Europe/Berlin")
    with pytest.raises(TwinControlError) as err:  # no media session: the twin refuses
        ctl.mic([0] * 160)
    assert err.value.op == "mic" and err.value.twin == tp.twins[0].serial
    assert isinstance(err.value, HarnessError)
    with pytest.raises(TwinControlError, match="unknown op"):
        ctl.call("no_such_op")
    with pytest.raises(TwinControlError, match="unknown twin"):
        TwinControl(tp.twins[0].control, "127.0.0.1:1").status()
    with pytest.raises(TwinControlError, match="control status failed"):
        TwinControl(tmp_path / "no.sock", "x", timeout_s=1.0).status()
