"""NetworkProfile: one named impairment, validated on load, compiled to every shaper.

A profile describes the link between the device and the rest of the network in two
directions: `up` (device -> network) and `down` (network -> device). Each direction has a
one-way delay with uniform jitter, loss (independent or Gilbert-Elliott bursts), a rate limit,
reordering, duplication and a queue limit. An outage schedule (the link is down, both ways)
runs over time from the moment the profile is applied.

File shape (the built-in library is harness/network/profiles.yaml; user files look the same,
or hold one profile without the `profiles:` level)::

    profiles:
      poor-wifi:
        description: "..."
        source: "where the figures come from"
        delay_ms: 40          # one-way, each direction
        jitter_ms: 20         # uniform: delay +/- jitter
        loss_pct: 0           # independent random loss, or:
        loss_burst: {p_pct: 1, r_pct: 40, bad_loss_pct: 100, good_loss_pct: 0}
        rate_kbit: 2000       # 1 kbit = 1000 bit; null = unlimited
        reorder_pct: 0        # sent at once, ahead of the delayed ones (netem semantics)
        duplicate_pct: 0
        queue_packets: null   # packets held (delay line + rate backlog); null = shaper default
        up: {rate_kbit: 1000} # any key above, for one direction only
        outages: {up_s: 20, down_s: 5, cycles: null}   # or `always`, or [{at_s, duration_s}]

Size: the profile schema and its validation, one clear error per key, kept in one place.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.errors import ProfileError
from harness.profiles.schema import Fields, read_yaml

BUILTIN_FILE = Path(__file__).with_name("profiles.yaml")
USER_FILES_ENV = "HIL_NETWORK_PROFILES"  # os.pathsep-separated user profile files
MAX_DELAY_MS = 60_000.0
MAX_RATE_KBIT = 100_000_000.0
MIN_OUTAGE_STEP_S = 0.05
MAX_QUEUE_PACKETS = 1_000_000

# Feature names: what a profile uses; what a shaper can express (docs/network.md has the table).
DELAY = "delay"
JITTER = "jitter"
ASYMMETRIC_DELAY = "asymmetric-delay"
LOSS = "loss"
BURST_LOSS = "burst-loss"
RATE = "rate"
REORDER = "reorder"
DUPLICATE = "duplicate"
QUEUE_LIMIT = "queue-limit"
OUTAGE_SCHEDULE = "outage-schedule"
OFFLINE = "offline"
FEATURES = (
    DELAY,
    JITTER,
    ASYMMETRIC_DELAY,
    LOSS,
    BURST_LOSS,
    RATE,
    REORDER,
    DUPLICATE,
    QUEUE_LIMIT,
    OUTAGE_SCHEDULE,
    OFFLINE,
)

_DIRECTION_KEYS = (
    "delay_ms",
    "jitter_ms",
    "loss_pct",
    "loss_burst",
    "rate_kbit",
    "reorder_pct",
    "duplicate_pct",
    "queue_packets",
)


@dataclass(frozen=True)
class GilbertElliott:
    """Two-state burst loss (netem `loss gemodel p r 1-h 1-k`), all in percent.

    Attributes:
        p_pct: chance per packet of moving from the good to the bad state.
        r_pct: chance per packet of moving from the bad back to the good state.
        bad_loss_pct: loss chance in the bad state (1-h).
        good_loss_pct: loss chance in the good state (1-k).
    """

    p_pct: float
    r_pct: float
    bad_loss_pct: float = 100.0
    good_loss_pct: float = 0.0

    @property
    def bad_share(self) -> float:
        """Stationary share of packets seen in the bad state (0..1)."""
        return self.p_pct / (self.p_pct + self.r_pct)

    @property
    def mean_loss_pct(self) -> float:
        """Long-run loss rate in percent."""
        bad = self.bad_share
        return bad * self.bad_loss_pct + (1.0 - bad) * self.good_loss_pct

    @property
    def mean_burst_packets(self) -> float:
        """Mean number of consecutive packets spent in the bad state."""
        return 100.0 / self.r_pct

    def describe(self) -> str:
        return (
            f"Gilbert-Elliott p={self.p_pct:g}% r={self.r_pct:g}% bad-loss={self.bad_loss_pct:g}%"
            f" good-loss={self.good_loss_pct:g}% (mean {self.mean_loss_pct:.3g}%)"
        )


@dataclass(frozen=True)
class Direction:
    """The impairment of one direction of the link (all defaults: untouched)."""

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss_pct: float = 0.0
    loss_burst: GilbertElliott | None = None
    rate_kbit: float | None = None
    reorder_pct: float = 0.0
    duplicate_pct: float = 0.0
    queue_packets: int | None = None

    def __post_init__(self) -> None:
        # the last line of defence for profiles built in code: no shaper ever sees NaN or inf
        for name in ("delay_ms", "jitter_ms", "loss_pct", "reorder_pct", "duplicate_pct"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ProfileError(
                    "<network profile>", name, f"must be finite and >= 0, got {value}"
                )
        for name in ("loss_pct", "reorder_pct", "duplicate_pct"):
            if getattr(self, name) > 100:
                raise ProfileError(
                    "<network profile>", name, f"must be <= 100, got {getattr(self, name)}"
                )
        if self.rate_kbit is not None and not (
            math.isfinite(self.rate_kbit) and self.rate_kbit > 0
        ):
            raise ProfileError(
                "<network profile>", "rate_kbit", f"must be finite and > 0, got {self.rate_kbit}"
            )

    @property
    def rate_bps(self) -> float | None:
        """Rate in bit/s, or None when unlimited."""
        return None if self.rate_kbit is None else self.rate_kbit * 1000.0

    @property
    def mean_loss_pct(self) -> float:
        return self.loss_burst.mean_loss_pct if self.loss_burst else self.loss_pct

    @property
    def is_clean(self) -> bool:
        """True when this direction adds nothing at all."""
        return self == Direction()

    def describe(self) -> str:
        parts = []
        if self.delay_ms or self.jitter_ms:
            parts.append(
                f"delay {self.delay_ms:g} ms"
                + (f" +/- {self.jitter_ms:g} ms" if self.jitter_ms else "")
            )
        if self.loss_burst:
            parts.append(f"loss {self.loss_burst.describe()}")
        elif self.loss_pct:
            parts.append(f"loss {self.loss_pct:g}%")
        if self.rate_kbit is not None:
            parts.append(f"rate {self.rate_kbit:g} kbit/s")
        if self.reorder_pct:
            parts.append(f"reorder {self.reorder_pct:g}%")
        if self.duplicate_pct:
            parts.append(f"duplicate {self.duplicate_pct:g}%")
        if self.queue_packets is not None:
            parts.append(f"queue {self.queue_packets} packets")
        return ", ".join(parts) or "clean"


@dataclass(frozen=True)
class OutageSchedule:
    """When the link is down, in seconds from the moment the profile is applied.

    Attributes:
        windows: (start_s, duration_s) pairs, sorted, not overlapping; with a period, the
            windows repeat every period_s (start_s is then relative to each period).
            duration_s may be infinite (down for good).
        period_s: repeat period, or None for a one-off schedule.
        cycles: number of periods to run (None: until the profile is cleared).
    """

    windows: tuple[tuple[float, float], ...] = ()
    period_s: float | None = None
    cycles: int | None = None

    @property
    def empty(self) -> bool:
        return not self.windows

    @property
    def always_down(self) -> bool:
        return bool(self.windows) and self.windows[0][0] == 0.0 and math.isinf(self.windows[0][1])

    def is_down(self, t_s: float) -> bool:
        """Whether the link is down t_s seconds after the profile was applied."""
        if t_s < 0 or not self.windows:
            return False
        if self.period_s is not None:
            k = int(t_s // self.period_s)
            if self.cycles is not None and k >= self.cycles:
                return False
            t_s -= k * self.period_s
        return any(start <= t_s < start + dur for start, dur in self.windows)

    def next_up(self, t_s: float) -> float:
        """The first time >= t_s at which the link is up (inf if it never comes back)."""
        if not self.is_down(t_s):
            return t_s
        for when, up in self.transitions(until_s=math.inf, after_s=t_s, limit=4):
            if up:
                return when
        return math.inf

    def transitions(
        self, until_s: float, after_s: float = -1.0, limit: int = 100_000
    ) -> list[tuple[float, bool]]:
        """(time_s, up_after) for every state change in (after_s, until_s], at most `limit`."""
        out: list[tuple[float, bool]] = []
        if not self.windows:
            return out
        period = self.period_s
        k = 0 if period is None or after_s < 0 else max(0, int(after_s // period))
        while len(out) < limit:
            if period is not None and self.cycles is not None and k >= self.cycles:
                break
            base = 0.0 if period is None else k * period
            if base > until_s:
                break
            for start, dur in self.windows:
                for when, up in ((base + start, False), (base + start + dur, True)):
                    if after_s < when <= until_s and len(out) < limit:
                        if out and out[-1][0] == when:  # back-to-back windows: no change
                            out.pop()
                        else:
                            out.append((when, up))
            if period is None:
                break
            k += 1
        return out

    def describe(self) -> str:
        if not self.windows:
            return "no outages"
        if self.always_down:
            return "down for good"
        if self.period_s is not None and len(self.windows) == 1:
            start, dur = self.windows[0]
            cycles = f", {self.cycles} cycles" if self.cycles is not None else ""
            return f"{start:g} s up, {dur:g} s down, repeating{cycles}"
        return ", ".join(f"down {s:g}-{s + d:g} s" for s, d in self.windows)


@dataclass(frozen=True)
class NetworkProfile:
    """A named impairment of the device's link, both directions plus outages."""

    name: str
    description: str
    source: str
    up: Direction = field(default_factory=Direction)
    down: Direction = field(default_factory=Direction)
    outages: OutageSchedule = field(default_factory=OutageSchedule)
    file: str = ""

    def features(self) -> dict[str, str]:  # noqa: C901 -- one branch per profile feature: the list is the schema
        """The parts of the profile in use: feature name -> what it asks for, in words."""
        out: dict[str, str] = {}

        def both(get, fmt) -> str:
            u, d = get(self.up), get(self.down)
            return fmt(u) if u == d else f"up {fmt(u)}, down {fmt(d)}"

        dirs = (self.up, self.down)
        if any(d.delay_ms for d in dirs):
            out[DELAY] = both(lambda d: d.delay_ms, lambda v: f"{v:g} ms one-way")
        if any(d.jitter_ms for d in dirs):
            out[JITTER] = both(lambda d: d.jitter_ms, lambda v: f"+/- {v:g} ms")
        if (self.up.delay_ms, self.up.jitter_ms) != (self.down.delay_ms, self.down.jitter_ms):
            out[ASYMMETRIC_DELAY] = f"up {_delay(self.up)}, down {_delay(self.down)}"
        if any(d.loss_pct and not d.loss_burst for d in dirs):
            out[LOSS] = both(
                lambda d: 0.0 if d.loss_burst else d.loss_pct, lambda v: f"{v:g}% random"
            )
        if any(d.loss_burst for d in dirs):
            out[BURST_LOSS] = both(lambda d: d.loss_burst, lambda g: g.describe() if g else "none")
        if any(d.rate_kbit is not None for d in dirs):
            out[RATE] = f"up {_rate(self.up.rate_kbit)}, down {_rate(self.down.rate_kbit)}"
        if any(d.reorder_pct for d in dirs):
            out[REORDER] = both(lambda d: d.reorder_pct, lambda v: f"{v:g}%")
        if any(d.duplicate_pct for d in dirs):
            out[DUPLICATE] = both(lambda d: d.duplicate_pct, lambda v: f"{v:g}%")
        if any(d.queue_packets is not None for d in dirs):
            out[QUEUE_LIMIT] = both(lambda d: d.queue_packets, lambda v: f"{v} packets")
        if self.outages.always_down:
            out[OFFLINE] = "link down for good"
        elif not self.outages.empty:
            out[OUTAGE_SCHEDULE] = self.outages.describe()
        return out

    def direction(self, name: str) -> Direction:
        """`up` or `down`."""
        if name not in ("up", "down"):
            raise ValueError(f"direction must be 'up' or 'down', got {name!r}")
        return self.up if name == "up" else self.down

    def without(self, *features: str) -> NetworkProfile:  # noqa: C901 -- one branch per profile feature: the list is the schema
        """A copy with some features taken out (how shapers approximate)."""
        up, down, outages = self.up, self.down, self.outages
        for feature in features:
            if feature in (DELAY, JITTER, ASYMMETRIC_DELAY):
                if feature == JITTER:
                    up, down = replace(up, jitter_ms=0.0), replace(down, jitter_ms=0.0)
                elif feature == DELAY:
                    up, down = (
                        replace(up, delay_ms=0.0, jitter_ms=0.0),
                        replace(down, delay_ms=0.0, jitter_ms=0.0),
                    )
                else:  # asymmetric: both directions get the mean
                    delay = (up.delay_ms + down.delay_ms) / 2
                    jitter = min((up.jitter_ms + down.jitter_ms) / 2, delay)
                    up = replace(up, delay_ms=delay, jitter_ms=jitter)
                    down = replace(down, delay_ms=delay, jitter_ms=jitter)
            elif feature == LOSS:
                up, down = (d if d.loss_burst else replace(d, loss_pct=0.0) for d in (up, down))
            elif feature == BURST_LOSS:
                up, down = replace(up, loss_burst=None), replace(down, loss_burst=None)
            elif feature == RATE:
                up, down = replace(up, rate_kbit=None), replace(down, rate_kbit=None)
            elif feature == REORDER:
                up, down = replace(up, reorder_pct=0.0), replace(down, reorder_pct=0.0)
            elif feature == DUPLICATE:
                up, down = replace(up, duplicate_pct=0.0), replace(down, duplicate_pct=0.0)
            elif feature == QUEUE_LIMIT:
                up, down = replace(up, queue_packets=None), replace(down, queue_packets=None)
            elif feature == OUTAGE_SCHEDULE:
                outages = outages if outages.always_down else OutageSchedule()
            elif feature == OFFLINE:
                outages = OutageSchedule() if outages.always_down else outages
            else:
                raise ValueError(f"unknown feature {feature!r}")
        return replace(self, up=up, down=down, outages=outages)

    def describe(self) -> str:
        lines = [f"{self.name}: {self.description}", f"  source: {self.source}"]
        if self.up == self.down:
            lines.append(f"  both ways: {self.up.describe()}")
        else:
            lines += [f"  up:   {self.up.describe()}", f"  down: {self.down.describe()}"]
        lines.append(f"  outages: {self.outages.describe()}")
        return "\n".join(lines)


def _delay(d: Direction) -> str:
    return f"{d.delay_ms:g} ms" + (f" +/- {d.jitter_ms:g} ms" if d.jitter_ms else "")


def _rate(kbit: float | None) -> str:
    return "unlimited" if kbit is None else f"{kbit:g} kbit/s"


# ---------------------------------------------------------------------------------------------
# Loading


def network_profiles(*extra_files: Path | str) -> dict[str, NetworkProfile]:
    """The built-in library, plus user profiles from extra_files and $HIL_NETWORK_PROFILES.

    A user profile with a built-in's name replaces it.

    Raises:
        ProfileError: an invalid file (names file and key).
    """
    out = dict(_parse_library(BUILTIN_FILE, read_yaml(BUILTIN_FILE)))
    env_files = [p for p in os.environ.get(USER_FILES_ENV, "").split(os.pathsep) if p]
    for path in [*env_files, *extra_files]:
        out.update(_parse_file(Path(path)))
    return out


def load_network_profile(
    name_or_path: str | Path, extra_files: tuple[Path | str, ...] = ()
) -> NetworkProfile:
    """One profile: a library name, a YAML file, or `file.yaml#name`.

    Raises:
        ProfileError: unknown name, unreadable file, invalid content (names file and key).
    """
    text = str(name_or_path)
    file_part, _, name = text.partition("#")
    path = Path(file_part)
    if path.suffix in (".yaml", ".yml"):
        found = _parse_file(path)
        if name:
            if name not in found:
                raise ProfileError(
                    str(path), "name", f"no profile {name!r}; known: {', '.join(sorted(found))}"
                )
            return found[name]
        if len(found) != 1:
            raise ProfileError(
                str(path),
                "profiles",
                f"holds {len(found)} profiles ({', '.join(sorted(found))});"
                f" pick one with {path}#NAME",
            )
        return next(iter(found.values()))
    library = network_profiles(*extra_files)
    if text not in library:
        raise ProfileError(
            str(BUILTIN_FILE),
            "name",
            f"unknown network profile {text!r}; known: {', '.join(sorted(library))}",
        )
    return library[text]


def parse_network_profile(name: str, data: Any, file: str = "<memory>") -> NetworkProfile:
    """Validate one profile mapping (the value under its name)."""
    return _parse_profile(file, name, data, name)


def _parse_file(path: Path) -> dict[str, NetworkProfile]:
    data = read_yaml(path)
    if isinstance(data, dict) and "profiles" in data:
        return _parse_library(path, data)
    f = Fields(path, data)
    name = f.data.get("name", path.stem)
    if not isinstance(name, str) or not name:
        raise f.error("name", f"expected a non-empty string, got {name!r}")
    body = {k: v for k, v in f.data.items() if k != "name"}
    return {name: _parse_profile(path, name, body, "")}


def _parse_library(path: Path, data: Any) -> dict[str, NetworkProfile]:
    top = Fields(path, data)
    section = top.sub("profiles")
    top.finish()
    out = {}
    for name in section.data:
        if not isinstance(name, str) or not name.replace("-", "").replace("_", "").isalnum():
            raise section.error(str(name), "profile names are letters, digits, '-' and '_'")
        section.used.add(name)
        out[name] = _parse_profile(path, name, section.data[name], section.path(name))
    return out


def _parse_profile(file: Path | str, name: str, data: Any, key: str) -> NetworkProfile:
    f = Fields(file, data, key)
    description = f.get("description", str)
    source = f.get("source", str)
    both = _direction_values(f)
    up = _parse_direction(f, "up", both)
    down = _parse_direction(f, "down", both)
    outages = _parse_outages(f)
    f.finish()
    return NetworkProfile(name, description, source, up, down, outages, str(file))


def _direction_values(f: Fields) -> dict[str, Any]:
    return {k: f.data[k] for k in _DIRECTION_KEYS if k in f.data}


def _parse_direction(parent: Fields, which: str, defaults: dict[str, Any]) -> Direction:
    override = parent.sub(which, {})
    for k in override.data:
        if k not in _DIRECTION_KEYS:
            raise override.error(
                str(k), f"unknown key (a direction takes: {', '.join(_DIRECTION_KEYS)})"
            )
    merged = {**defaults, **override.data}
    for k in _DIRECTION_KEYS:
        parent.used.add(k)

    def origin(k: str) -> Fields:
        """Errors name the key where the value was written: `x.up.delay_ms` or `x.delay_ms`."""
        return Fields(parent.file, merged, override.key if k in override.data else parent.key)

    delay = origin("delay_ms").get("delay_ms", float, 0.0, min_value=0.0, max_value=MAX_DELAY_MS)
    jitter = origin("jitter_ms").get("jitter_ms", float, 0.0, min_value=0.0, max_value=MAX_DELAY_MS)
    if jitter > delay:
        raise origin("jitter_ms").error(
            "jitter_ms",
            f"must be <= delay_ms ({delay:g}): delay +/- jitter cannot go below 0, got {jitter:g}",
        )
    loss = origin("loss_pct").get("loss_pct", float, 0.0, min_value=0.0, max_value=100.0)
    burst = None
    if merged.get("loss_burst") is not None:
        if loss:
            raise origin("loss_burst").error(
                "loss_burst", "give either loss_pct or loss_burst, not both"
            )
        burst = _parse_burst(origin("loss_burst").sub("loss_burst"))
    rate = origin("rate_kbit").get("rate_kbit", (float, type(None)), None)
    if rate is not None and not 0 < rate <= MAX_RATE_KBIT:
        raise origin("rate_kbit").error(
            "rate_kbit", f"must be > 0 and <= {MAX_RATE_KBIT:g} (null = unlimited), got {rate:g}"
        )
    reorder = origin("reorder_pct").get("reorder_pct", float, 0.0, min_value=0.0, max_value=100.0)
    if reorder and not delay:
        raise origin("reorder_pct").error(
            "reorder_pct", "needs delay_ms > 0 (reordered packets skip the delay)"
        )
    duplicate = origin("duplicate_pct").get(
        "duplicate_pct", float, 0.0, min_value=0.0, max_value=100.0
    )
    queue = origin("queue_packets").get("queue_packets", (int, type(None)), None)
    if queue is not None and not 1 <= queue <= MAX_QUEUE_PACKETS:
        raise origin("queue_packets").error(
            "queue_packets", f"must be 1..{MAX_QUEUE_PACKETS} or null, got {queue}"
        )
    return Direction(delay, jitter, loss, burst, rate, reorder, duplicate, queue)


def _parse_burst(f: Fields) -> GilbertElliott:
    p = f.get("p_pct", float, min_value=0.0, max_value=100.0)
    r = f.get("r_pct", float, min_value=0.0, max_value=100.0)
    if r <= 0:
        raise f.error("r_pct", "must be > 0 (else the bad state never ends)")
    if p <= 0:
        raise f.error("p_pct", "must be > 0 (else the bad state is never entered)")
    bad = f.get("bad_loss_pct", float, 100.0, min_value=0.0, max_value=100.0)
    good = f.get("good_loss_pct", float, 0.0, min_value=0.0, max_value=100.0)
    f.finish()
    return GilbertElliott(p, r, bad, good)


def _parse_outages(parent: Fields) -> OutageSchedule:
    parent.used.add("outages")
    raw = parent.data.get("outages")
    key = parent.path("outages")
    if raw is None:
        return OutageSchedule()
    if raw == "always":
        return OutageSchedule(windows=((0.0, math.inf),))
    if isinstance(raw, list):
        windows = []
        for i, item in enumerate(raw):
            f = Fields(parent.file, item, f"{key}[{i}]")
            at = f.get("at_s", float, min_value=0.0)
            dur = f.get("duration_s", float, min_value=MIN_OUTAGE_STEP_S)
            f.finish()
            if windows and at < windows[-1][0] + windows[-1][1]:
                raise f.error(
                    "at_s",
                    "overlaps or precedes the previous outage"
                    f" (ends at {windows[-1][0] + windows[-1][1]:g} s)",
                )
            windows.append((at, dur))
        return OutageSchedule(windows=tuple(windows))
    if isinstance(raw, dict):
        f = Fields(parent.file, raw, key)
        up_s = f.get("up_s", float, min_value=MIN_OUTAGE_STEP_S)
        down_s = f.get("down_s", float, min_value=MIN_OUTAGE_STEP_S)
        cycles = f.get("cycles", (int, type(None)), None)
        if cycles is not None and cycles < 1:
            raise f.error("cycles", f"must be >= 1 or null, got {cycles}")
        f.finish()
        return OutageSchedule(windows=((up_s, down_s),), period_s=up_s + down_s, cycles=cycles)
    raise ProfileError(
        parent.file,
        key,
        "expected `always`, a list of {at_s, duration_s} or {up_s, down_s, cycles},"
        f" got {raw!r}",
    )
