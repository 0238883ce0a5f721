"""NetemShaper command generation: golden text for every built-in profile, both directions.

The golden files are the exact dry-run output. Regenerate after a deliberate change with
HIL_UPDATE_GOLDEN=1 and review the diff. A second test feeds every generated command to the
real `tc` inside a test namespace: this kernel has no netem, so a netem command must fail only
with the kernel's "unknown qdisc kind" (tc parsed every option); every other command must pass.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from harness.errors import NetworkShaperError
from harness.network.netem import NetemShaper, netem_options, netem_plan
from harness.network.profiles import network_profiles, parse_network_profile
from harness.network.runner import CommandRunner

GOLDEN = Path(__file__).resolve().parents[2] / "fixtures" / "network" / "netem"
UPDATE = os.environ.get("HIL_UPDATE_GOLDEN") == "1"
CASES = [(name, {}) for name in sorted(network_profiles())] + [
    ("poor-wifi", {"device_ip": "192.168.1.23"}),
    ("edge", {"egress": "up"}),
]


def _golden_name(name: str, kw: dict) -> str:
    if "device_ip" in kw:
        return f"{name}@device-ip.txt"
    if kw.get("egress") == "up":
        return f"{name}@egress-up.txt"
    return f"{name}.txt"


@pytest.mark.parametrize("name, kw", CASES, ids=[_golden_name(n, k) for n, k in CASES])
def test_golden_commands(name, kw):
    shaper = NetemShaper(network_profiles()[name], "eth1", approximate=True, **kw)
    text = shaper.dry_run_text()
    path = GOLDEN / _golden_name(name, kw)
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"no golden file {path}; run with HIL_UPDATE_GOLDEN=1"
    assert text == path.read_text(encoding="utf-8")


def test_every_shaping_profile_shapes_both_directions():
    for name, prof in network_profiles().items():
        plan = netem_plan(prof.without("outage-schedule"), "eth1")
        text = "\n".join(" ".join(c) for c in plan.setup)
        if name == "flapping":
            assert plan.setup == ()
            continue
        assert "dev eth1 root" in text, name  # egress (down)
        assert "redirect dev ifb-eth1" in text and "dev ifb-eth1 root" in text, name  # ingress (up)


def test_netem_options_mapping():
    prof = parse_network_profile(
        "x",
        {
            "description": "d",
            "source": "s",
            "delay_ms": 30,
            "jitter_ms": 10,
            "duplicate_pct": 1,
            "reorder_pct": 25,
            "queue_packets": 50,
            "loss_burst": {"p_pct": 2, "r_pct": 30, "bad_loss_pct": 90, "good_loss_pct": 0.5},
        },
    )
    assert netem_options(prof.down) == [
        "limit",
        "50",
        "delay",
        "30ms",
        "10ms",
        "loss",
        "gemodel",
        "2%",
        "30%",
        "90%",
        "0.5%",
        "duplicate",
        "1%",
        "reorder",
        "25%",
    ]
    assert netem_options(prof.down, offline=True) == ["limit", "50", "loss", "random", "100%"]


def test_rate_only_with_a_queue_limit_uses_a_pfifo_leaf():
    prof = parse_network_profile(
        "q", {"description": "d", "source": "s", "rate_kbit": 14.4, "queue_packets": 30}
    )
    cmds = [" ".join(c) for c in netem_plan(prof, "eth1").setup]
    assert "tc class add dev eth1 parent 1: classid 1:10 htb rate 14.4kbit ceil 14.4kbit" in cmds
    assert "tc qdisc add dev eth1 parent 1:10 handle 10: pfifo limit 30" in cmds
    assert not any("netem" in c for c in cmds)


def test_dry_run_runner_prints_exact_commands_with_the_prefix():
    out = io.StringIO()
    runner = CommandRunner(prefix=["ssh", "farm-gw"], dry_run=True, out=out)
    shaper = NetemShaper(network_profiles()["3g"], "eth1", runner=runner)
    with shaper:
        pass
    lines = out.getvalue().splitlines()
    assert (
        lines[3] == "ssh farm-gw tc qdisc add dev eth1 root handle 1: htb default 10"
    )  # after 3 clears
    assert lines[-3:] == [
        "ssh farm-gw tc qdisc del dev eth1 root",
        "ssh farm-gw tc qdisc del dev eth1 ingress",
        "ssh farm-gw ip link del dev ifb-eth1",
    ]
    assert "ssh farm-gw" in shaper.dry_run_text()


@pytest.mark.parametrize(
    "kw, words",
    [
        ({"dev": "eth1; rm -rf /"}, "not an interface name"),
        ({"dev": "eth1", "device_ip": "10.0.0.300"}, "not an IP address"),
        ({"dev": "eth1", "egress": "sideways"}, "egress"),
        ({"dev": "a-very-long-interface-name"}, "not an interface name"),
    ],
)
def test_bad_targets_are_refused_before_anything_runs(kw, words):
    runner = CommandRunner(dry_run=True, out=io.StringIO())
    with pytest.raises(NetworkShaperError, match=words):
        NetemShaper(network_profiles()["3g"], runner=runner, **kw)
    assert runner.history == []


@pytest.mark.parametrize("kw", [{}, {"device_ip": "10.1.2.3"}], ids=["dev", "device-ip"])
def test_tc_parses_every_generated_command(netns_pair, kw):
    """Every built-in profile's commands, run for real in a namespace that has an `eth1`."""
    runner = CommandRunner(prefix=netns_pair.exec_a())
    runner.run(["ip", "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p"])
    runner.run(["ip", "link", "set", "eth1", "up"])
    for name, prof in network_profiles().items():
        plan = NetemShaper(prof, "eth1", approximate=True, **kw).plan
        for cmd in plan.setup:
            result = runner.run(cmd, check=False)
            if "netem" in cmd:
                assert result.ok or "qdisc kind is unknown" in result.stderr, (
                    name,
                    result.text,
                    result.stderr,
                )
            else:
                assert result.ok, (name, result.text, result.stderr)
        for cmd in plan.teardown:
            runner.run(cmd, check=False)
        left = runner.run(["tc", "qdisc", "show", "dev", "eth1"]).stdout
        assert "htb" not in left and "ingress" not in left, (name, left)
