"""NetemShaper: a profile as Linux tc commands (netem under htb), both directions.

Egress of the interface is shaped directly; its ingress is redirected (u32 match-all, mirred)
to an IFB device and shaped there on the IFB's egress. On a gateway the interface faces the
devices, so its egress is the devices' `down` and its ingress their `up` (egress="down", the
default). With device_ip only that device's traffic is shaped (u32 on ip dst / ip src); the
rest goes through an unshaped default class.

Per direction:
    rate and netem options -> htb root 1:, class 1:10 at the rate, netem 10: as its leaf
    rate only              -> htb root 1:, class 1:10 (pfifo leaf when a queue limit is set)
    netem options only     -> netem as the root qdisc (htb with an unshaped class by device IP)

The shaper owns the interface's root and ingress qdiscs and its IFB: applying starts by
clearing them (which also removes what a killed run left), clearing deletes them. Netem's
delay jitter without a `distribution` is uniform (tc loads no table; the kernel's default),
which is the profile's meaning of jitter. Outage schedules cannot be expressed as static
commands: use WifiShaper or RelayShaper (approximate=True leaves them out).
"""

from __future__ import annotations

import ipaddress
import logging
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, replace

from harness.errors import NetworkShaperError
from harness.network import profiles as P
from harness.network.profiles import Direction, NetworkProfile
from harness.network.runner import CommandRunner
from harness.network.shaper import Shaper

log = logging.getLogger(__name__)

UNSHAPED_RATE = "10gbit"
IFNAME_MAX_CHARS = 15
_IFNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,15}$")
CAPABILITIES = {
    P.DELAY: "netem delay",
    P.JITTER: "netem delay jitter (uniform)",
    P.ASYMMETRIC_DELAY: "one netem per direction",
    P.LOSS: "netem loss random",
    P.BURST_LOSS: "netem loss gemodel p r 1-h 1-k",
    P.RATE: "htb class rate/ceil",
    P.REORDER: "netem reorder",
    P.DUPLICATE: "netem duplicate",
    P.QUEUE_LIMIT: "netem limit (pfifo limit without netem)",
    P.OFFLINE: "netem loss random 100%",
}
_SHAPED_CLASS = "1:10"
_DEFAULT_CLASS = "1:99"

Command = tuple[str, ...]


@dataclass(frozen=True)
class NetemPlan:
    """The exact commands that apply and clear one profile on one interface."""

    profile: str
    dev: str
    ifb: str
    egress: str
    device_ip: str | None
    setup: tuple[Command, ...]
    teardown: tuple[Command, ...]
    expressed: tuple[str, ...] = ()
    approximations: tuple[str, ...] = ()

    def text(self, prefix: Sequence[str] = ()) -> str:
        """The plan as a dry run prints it (also the golden-file format)."""
        ingress = "up" if self.egress == "down" else "down"
        who = f" for device {self.device_ip}" if self.device_ip else ""
        lines = [
            f"# netem plan: profile {self.profile!r} on {self.dev}{who}",
            f"# {self.egress} = egress of {self.dev};"
            f" {ingress} = ingress of {self.dev} through {self.ifb}",
        ]
        lines += [f"# expressed: {e}" for e in self.expressed]
        lines += [f"# approximated: {a}" for a in self.approximations]
        lines.append("# apply (after the clear commands, whose errors are ignored):")
        lines += [shlex.join((*prefix, *c)) for c in self.setup] or ["# (nothing to shape)"]
        lines.append("# clear:")
        lines += [shlex.join((*prefix, *c)) for c in self.teardown]
        return "\n".join(lines) + "\n"


def netem_options(d: Direction, offline: bool = False) -> list[str]:
    """The netem arguments for one direction ([] when netem has nothing to do)."""
    opts: list[str] = []
    if d.queue_packets is not None:
        opts += ["limit", str(d.queue_packets)]
    if offline:
        return opts + ["loss", "random", "100%"]
    if d.delay_ms or d.jitter_ms:
        opts += ["delay", _ms(d.delay_ms)] + ([_ms(d.jitter_ms)] if d.jitter_ms else [])
    if d.loss_burst is not None:
        g = d.loss_burst
        opts += [
            "loss",
            "gemodel",
            _pct(g.p_pct),
            _pct(g.r_pct),
            _pct(g.bad_loss_pct),
            _pct(g.good_loss_pct),
        ]
    elif d.loss_pct:
        opts += ["loss", "random", _pct(d.loss_pct)]
    if d.duplicate_pct:
        opts += ["duplicate", _pct(d.duplicate_pct)]
    if d.reorder_pct:
        opts += ["reorder", _pct(d.reorder_pct)]
    return opts


def netem_plan(
    profile: NetworkProfile,
    dev: str,
    *,
    device_ip: str | None = None,
    ifb: str | None = None,
    egress: str = "down",
) -> NetemPlan:
    """Commands for a profile that netem can express in full (see NetemShaper for checks).

    Args:
        profile: the (effective) profile; outage schedules are not looked at.
        dev: the interface.
        device_ip: shape only this device's traffic (IPv4 or IPv6).
        ifb: name of the IFB device for the ingress direction (default ifb-<dev>).
        egress: which profile direction the interface's egress carries: "down" or "up".
    """
    _check_ifname(dev, "dev")
    ifb = ifb or default_ifb(dev)
    _check_ifname(ifb, "ifb")
    if egress not in ("down", "up"):
        raise NetworkShaperError(f"egress must be 'down' or 'up', got {egress!r}")
    ip = _check_ip(device_ip) if device_ip else None
    ingress = "up" if egress == "down" else "down"
    offline = profile.outages.always_down
    setup: list[Command] = []
    out_dir = profile.direction(egress)
    in_dir = profile.direction(ingress)
    if offline or not out_dir.is_clean:
        match = ("dst" if egress == "down" else "src") if ip else None
        setup += _direction_commands(dev, out_dir, offline, ip, match)
    if offline or not in_dir.is_clean:
        match = ("dst" if ingress == "down" else "src") if ip else None
        setup += [
            ("ip", "link", "add", ifb, "type", "ifb"),
            ("ip", "link", "set", "dev", ifb, "up"),
            ("tc", "qdisc", "add", "dev", dev, "handle", "ffff:", "ingress"),
            (
                "tc",
                "filter",
                "add",
                "dev",
                dev,
                "parent",
                "ffff:",
                "protocol",
                "all",
                "u32",
                "match",
                "u32",
                "0",
                "0",
                "action",
                "mirred",
                "egress",
                "redirect",
                "dev",
                ifb,
            ),
        ]
        setup += _direction_commands(ifb, in_dir, offline, ip, match)
    return NetemPlan(
        profile.name,
        dev,
        ifb,
        egress,
        str(ip) if ip else None,
        tuple(setup),
        teardown_commands(dev, ifb),
    )


def teardown_commands(dev: str, ifb: str | None = None) -> tuple[Command, ...]:
    """What clears the interface (each may fail when there is nothing to delete)."""
    ifb = ifb or default_ifb(dev)
    return (
        ("tc", "qdisc", "del", "dev", dev, "root"),
        ("tc", "qdisc", "del", "dev", dev, "ingress"),
        ("ip", "link", "del", "dev", ifb),
    )


def default_ifb(dev: str) -> str:
    return f"ifb-{dev}"[:IFNAME_MAX_CHARS]


class NetemShaper(Shaper):
    """A profile applied with tc (netem + htb) on an interface, here or through a runner.

    Args:
        profile: the profile.
        dev: the interface (on a gateway: the one facing the devices).
        device_ip: shape only this device's traffic.
        ifb: IFB device name for the ingress direction (default ifb-<dev>).
        egress: profile direction of the interface's egress ("down" on a gateway).
        runner: how commands run (default: locally; CommandRunner(prefix=["ssh", "gw"]) for a
            farm gateway; CommandRunner(dry_run=True) to print them).
        approximate: leave out outage schedules with a warning instead of refusing.

    Raises:
        NetworkShaperError: the profile has an outage schedule (and approximate is False), or
            a bad interface name or IP. Nothing has run.
    """

    kind = "netem"

    def __init__(
        self,
        profile: NetworkProfile,
        dev: str,
        *,
        device_ip: str | None = None,
        ifb: str | None = None,
        egress: str = "down",
        runner: CommandRunner | None = None,
        approximate: bool = False,
    ):
        self.dev = dev
        self.device_ip = device_ip
        self.ifb = ifb or default_ifb(dev)
        self.egress = egress
        self.runner = runner or CommandRunner()
        target = f"{device_ip} on {dev}" if device_ip else dev
        super().__init__(profile, target, approximate=approximate)
        plan = netem_plan(self.profile, dev, device_ip=device_ip, ifb=self.ifb, egress=egress)
        self.plan = replace(
            plan,
            expressed=tuple(f"{k}: {v}" for k, v in self.report.expressed.items()),
            approximations=tuple(self.report.approximations),
        )

    def capabilities(self) -> dict[str, str]:
        return dict(CAPABILITIES)

    def approximation(self, feature: str) -> str:
        if feature == P.OUTAGE_SCHEDULE:
            return "left out (static tc commands have no schedule: use WifiShaper or RelayShaper)"
        return super().approximation(feature)

    def dry_run_text(self) -> str:
        return self.plan.text(self.runner.prefix)

    def _apply(self) -> None:
        for cmd in self.plan.teardown:  # a clean slate, also after a killed run
            self.runner.run(cmd, check=False)
        for cmd in self.plan.setup:
            self.report.note(shlex.join(cmd))
            self.runner.run(cmd, check=True)

    def _clear(self) -> None:
        for cmd in self.plan.teardown:
            self.runner.run(cmd, check=False)
        self.report.note("teardown commands ran")
        if not self.runner.dry_run:
            left = leftover_shaping(self.runner, self.dev, self.ifb)
            if left:
                raise NetworkShaperError(f"shaping left on {self.dev} after clear: {left}")


def leftover_shaping(runner: CommandRunner, dev: str, ifb: str | None = None) -> list[str]:
    """qdisc lines on dev (and its IFB) that are not kernel defaults; [] when clean."""
    out = runner.run(("tc", "qdisc", "show", "dev", dev), check=False).stdout
    left = [line.strip() for line in out.splitlines() if _is_shaping(line)]
    ifb = ifb or default_ifb(dev)
    links = runner.run(("ip", "-o", "link", "show", "dev", ifb), check=False)
    if links.ok and links.stdout.strip():
        left.append(f"IFB {ifb} still exists")
    return left


def clear_interface(runner: CommandRunner, dev: str, ifb: str | None = None) -> list[str]:
    """Delete whatever shaping the harness left on dev; returns what is still left (logged)."""
    for cmd in teardown_commands(dev, ifb):
        runner.run(cmd, check=False)
    if runner.dry_run:
        return []
    left = leftover_shaping(runner, dev, ifb)
    if left:
        log.error("shaping left on %s after clear: %s", dev, left)
    return left


def _is_shaping(line: str) -> bool:
    words = line.split()
    return (
        len(words) > 1
        and words[0] == "qdisc"
        and words[1] in ("htb", "netem", "tbf", "ingress", "pfifo", "clsact")
    )


def _needs_netem(d: Direction) -> bool:
    return bool(
        d.delay_ms or d.jitter_ms or d.loss_pct or d.loss_burst or d.duplicate_pct or d.reorder_pct
    )


def _direction_commands(
    dev: str, d: Direction, offline: bool, ip: ipaddress._BaseAddress | None, match: str | None
) -> list[Command]:
    opts = netem_options(d, offline)
    rate = f"{_num(d.rate_kbit)}kbit" if d.rate_kbit is not None and not offline else None
    if rate is not None and not offline and not _needs_netem(d):
        opts = []  # rate (and queue limit) only: htb, with a pfifo leaf for the limit
    cmds: list[Command] = []
    if ip is None and rate is None:
        return (
            [("tc", "qdisc", "add", "dev", dev, "root", "handle", "10:", "netem", *opts)]
            if opts
            else []
        )
    default = _DEFAULT_CLASS if ip is not None else _SHAPED_CLASS
    cmds.append(
        (
            "tc",
            "qdisc",
            "add",
            "dev",
            dev,
            "root",
            "handle",
            "1:",
            "htb",
            "default",
            default.split(":")[1],
        )
    )
    if ip is not None:
        cmds.append(
            (
                "tc",
                "class",
                "add",
                "dev",
                dev,
                "parent",
                "1:",
                "classid",
                _DEFAULT_CLASS,
                "htb",
                "rate",
                UNSHAPED_RATE,
            )
        )
    shaped = rate or UNSHAPED_RATE
    cmds.append(
        (
            "tc",
            "class",
            "add",
            "dev",
            dev,
            "parent",
            "1:",
            "classid",
            _SHAPED_CLASS,
            "htb",
            "rate",
            shaped,
            "ceil",
            shaped,
        )
    )
    # the leaf under the shaped class: netem when there is impairment, else a plain queue limit
    leaf = (
        ("netem", *opts)
        if opts
        else (("pfifo", "limit", str(d.queue_packets)) if d.queue_packets is not None else ())
    )
    if leaf:
        cmds.append(
            ("tc", "qdisc", "add", "dev", dev, "parent", _SHAPED_CLASS, "handle", "10:", *leaf)
        )
    if ip is not None:
        proto, kw = ("ip", "ip") if ip.version == 4 else ("ipv6", "ip6")
        prefix = 32 if ip.version == 4 else 128
        cmds.append(
            (
                "tc",
                "filter",
                "add",
                "dev",
                dev,
                "parent",
                "1:",
                "protocol",
                proto,
                "prio",
                "1",
                "u32",
                "match",
                kw,
                match or "dst",
                f"{ip}/{prefix}",
                "flowid",
                _SHAPED_CLASS,
            )
        )
    return cmds


def _check_ifname(name: str, what: str) -> None:
    if not _IFNAME.match(name or ""):
        raise NetworkShaperError(
            f"{what} {name!r} is not an interface name"
            f" (1-{IFNAME_MAX_CHARS} of A-Z a-z 0-9 _ . @ -)"
        )


def _check_ip(text: str) -> ipaddress._BaseAddress:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise NetworkShaperError(f"device_ip {text!r} is not an IP address") from None


def _num(x: float) -> str:
    """Plain decimal, no exponent, no trailing zeros: 40000, 14.4, 0.5."""
    return f"{x:.6f}".rstrip("0").rstrip(".")


def _ms(x: float) -> str:
    return f"{_num(x)}ms"


def _pct(x: float) -> str:
    return f"{_num(x)}%"
