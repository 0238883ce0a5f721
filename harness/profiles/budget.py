"""Budgets: per-metric limits on statistics, loaded from device_profiles/budgets.yaml."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import ProfileError
from harness.profiles.schema import Fields, read_yaml

STATS = ("n", "mean", "p50", "p95", "p99", "min", "max", "std")


@dataclass(frozen=True)
class Limit:
    """One bound on one statistic of a metric, e.g. connect_time_s p95 <= 15."""

    metric: str
    stat: str
    op: str  # "<=" or ">="
    value: float
    unit: str = ""
    source: str = ""

    def holds(self, measured: float) -> bool:
        return measured <= self.value if self.op == "<=" else measured >= self.value

    def describe(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.metric} {self.stat} {self.op} {self.value:g}{unit}"


@dataclass(frozen=True)
class Budget:
    name: str
    file: str
    limits: tuple[Limit, ...]

    def for_metric(self, metric: str) -> tuple[Limit, ...]:
        return tuple(limit for limit in self.limits if limit.metric == metric)

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(limit.metric for limit in self.limits))


def load_budgets(path: Path | str) -> dict[str, Budget]:  # noqa: C901 -- validation: one clear error per malformed key
    """Parse a budgets file. `extends: other` inherits other's limits, overriding per metric.

    File shape::

        budgets:
          default:
            connect_time_s:
              unit: s
              source: "where the figure comes from"
              p95: {max: 15}
              mean: {max: 9}

    Raises:
        ProfileError: naming the file and the dotted key at fault.
    """
    path = Path(path)
    top = Fields(path, read_yaml(path))
    section = top.sub("budgets")
    top.finish()
    raw: dict[str, tuple[str | None, dict[str, tuple[Limit, ...]]]] = {}
    for bname in section.data:
        bf = section.sub(str(bname))
        parent = bf.get("extends", str, None)
        metrics: dict[str, tuple[Limit, ...]] = {}
        for metric in list(bf.data):
            if metric == "extends":
                continue
            mf = bf.sub(str(metric))
            unit = mf.get("unit", str, "")
            source = mf.get("source", str, "")
            limits = []
            for stat in list(mf.data):
                if stat in ("unit", "source"):
                    continue
                if stat not in STATS:
                    raise mf.error(str(stat), f"unknown statistic; use one of {', '.join(STATS)}")
                sf = mf.sub(str(stat))
                for op_key, op in (("max", "<="), ("min", ">=")):
                    if op_key in sf.data:
                        limits.append(
                            Limit(
                                str(metric),
                                str(stat),
                                op,
                                sf.get(op_key, float, min_value=0.0),
                                unit,
                                source,
                            )
                        )
                sf.finish()
                if not any(k in sf.data for k in ("max", "min")):
                    raise mf.error(str(stat), "needs max or min")
            mf.finish()
            if not limits:
                raise bf.error(str(metric), "no limits given")
            metrics[str(metric)] = tuple(limits)
        bf.finish()
        raw[str(bname)] = (parent, metrics)

    def resolve(name: str, seen: tuple[str, ...]) -> dict[str, tuple[Limit, ...]]:
        if name in seen:
            raise ProfileError(
                str(path), f"budgets.{name}.extends", f"cycle: {' -> '.join(seen + (name,))}"
            )
        parent, metrics = raw[name]
        if parent is None:
            return dict(metrics)
        if parent not in raw:
            raise ProfileError(str(path), f"budgets.{name}.extends", f"unknown budget {parent!r}")
        merged = resolve(parent, seen + (name,))
        merged.update(metrics)
        return merged

    return {
        name: Budget(
            name, str(path), tuple(lim for lims in resolve(name, ()).values() for lim in lims)
        )
        for name in raw
    }
