"""JUnit XML properties (`--junitxml`): each measurement as flat name/value pairs that Jenkins
and GitLab show next to the test."""

from __future__ import annotations

from harness.report.record import ResultRecord

JUNIT_STATS = ("n", "p50", "p95", "max")


def junit_properties(records: list[ResultRecord]) -> list[tuple[str, str]]:
    """("hil.connect_time_s.p95", "7.81"), ..., ("hil.connect_time_s.verdict", "PASS").

    A metric measured twice in one test gets a suffix (#2) on its second set.
    """
    out: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    for r in records:
        seen[r.metric] = seen.get(r.metric, 0) + 1
        key = f"hil.{r.metric}" + (f"#{seen[r.metric]}" if seen[r.metric] > 1 else "")
        if not out:
            out += [("hil.device", r.device), ("hil.model", r.model)]
            out.append(("hil.profile", r.profile or ""))
        out.append((f"{key}.unit", r.unit))
        out += [(f"{key}.{s}", f"{r.stat(s):.6g}") for s in JUNIT_STATS if s in r.stats]
        out.append((f"{key}.uncertainty", f"{r.uncertainty:.6g}"))
        out.append((f"{key}.verdict", r.mark))
        if r.network:
            out.append((f"{key}.network", r.network))
        for c in r.limits():
            out.append((f"{key}.limit.{c['stat']}", f"{c['op']} {c['limit']:g}"))
    return out
