"""Media slots: live sessions at once across the workers of a run (flock()ed files)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import pytest

from harness.errors import HarnessError
from harness.farm.process import Child
from harness.plugin.slots import MediaSlot

HOLDER_READY_S = 30.0  # the holder's `held` line (a Python start and an import)
HOLDER_STOP_S = 10.0


def test_one_slot_is_held_by_one_holder_and_freed_on_exit(tmp_path):
    order = []
    with MediaSlot(tmp_path, 1, who="a"):

        def second():
            with MediaSlot(tmp_path, 1, wait_s=10, who="b") as s:
                order.append(("b", s.waited_s))

        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.5)
        order.append(("a-done", None))
    t.join(10)
    assert [o[0] for o in order] == ["a-done", "b"] and order[1][1] >= 0.4


def test_two_slots_two_holders_and_a_third_waits_with_a_clear_error(tmp_path):
    with MediaSlot(tmp_path, 2), MediaSlot(tmp_path, 2):
        with pytest.raises(HarnessError, match="no media slot of 2 free within 0.3 s"):
            with MediaSlot(tmp_path, 2, wait_s=0.3, who="dev-3"):
                pass


def test_a_holder_killed_outright_frees_its_slot(tmp_path):
    holder = Child(
        "media slot holder",
        [
            sys.executable,
            "-c",
            (
                "import sys, time; from harness.plugin.slots import MediaSlot\n"
                f"s = MediaSlot({str(tmp_path)!r}, 1).__enter__(); print('held', flush=True); time.sleep(60)"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    ).spawn()
    try:
        assert holder.read_line(HOLDER_READY_S) == "held"
        with pytest.raises(HarnessError):
            with MediaSlot(tmp_path, 1, wait_s=0.3):
                pass
        holder.stop(signal.SIGKILL, HOLDER_STOP_S)  # killed outright: no cleanup of its own
        with MediaSlot(tmp_path, 1, wait_s=5):  # the kernel dropped the dead holder's lock
            pass
    finally:
        holder.stop(signal.SIGKILL, HOLDER_STOP_S)
        holder.close_pipes()


def test_zero_slots_is_refused():
    with pytest.raises(HarnessError, match="at least 1"):
        MediaSlot(".", 0)
