"""WALT driver against the simulated WALT: sync accuracy and screen draw accuracy, with figures.

    .venv/bin/python benchmarks/instruments_walt.py [--runs 20] [--transitions 100]

Prints, per link setting, the error of the synced clock against the simulator's truth (right
after sync, and 1 s later after a drift check), the bounds' half width and the sync time; then
the screen-draw error against the fake screen's ground truth. Not a test: no assertions.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from harness.instruments.walt import Walt
from harness.instruments.walt_latency import measure_screen_draw
from harness.twin.instruments import StepSignal, WaltSim, WaltSimConfig

LINKS = {  # name: (out_s, in_s, jitter_s)
    "usb2-like": (0.10e-3, 0.15e-3, 0.05e-3),
    "default": (0.25e-3, 0.35e-3, 0.15e-3),
    "asymmetric": (0.10e-3, 0.90e-3, 0.20e-3),
    "usb3-like": (0.40e-3, 0.40e-3, 0.40e-3),
}


def _summary(values: list[float]) -> str:
    a = [abs(v) for v in values]
    mean, sd = statistics.fmean(values), statistics.pstdev(values)
    return f"max|e| {max(a):.3f}  mean {mean:+.3f}  sd {sd:.3f}"


def bench_sync(runs: int) -> None:
    print(f"clock sync, {runs} runs per link (ms)")
    for name, (out_s, in_s, jit_s) in LINKS.items():
        rng = random.Random(name)
        now_err, later_err, half, took = [], [], [], []
        for run in range(runs):
            cfg = WaltSimConfig(
                seed=run,
                clock_start_us=rng.randrange(2**32),
                drift_ppm=rng.uniform(-100, 100),
                link_out_s=out_s,
                link_in_s=in_s,
                link_jitter_s=jit_s,
            )
            with WaltSim(config=cfg) as sim:
                t0 = time.monotonic()
                with Walt.open(sim.path) as walt:
                    took.append((time.monotonic() - t0) * 1e3)
                    p = walt.clock.last
                    now_err.append(
                        (walt.clock.to_host(p.walt_us) - sim.walt_to_host(p.walt_us)) * 1e3
                    )
                    half.append(p.half_width_us / 1e3)
                    time.sleep(0.5)
                    walt.check_drift()
                    time.sleep(0.5)
                    r = walt.time_now()
                    later_err.append((walt.clock.to_host(r) - sim.walt_to_host(r)) * 1e3)
        print(
            f"  {name:11s} after sync: {_summary(now_err)} | 1 s later: {_summary(later_err)} | "
            f"half width {statistics.fmean(half):.3f} | open+sync {statistics.fmean(took):.0f} ms"
        )


def bench_draw(transitions: int) -> None:
    light = StepSignal(0.0)
    rng = random.Random(1)
    shown: list[tuple[float, float]] = []

    def draw(white: bool) -> None:
        t = time.monotonic()
        t_px = t + rng.uniform(0.02, 0.08)
        light.set(t_px, 1.0 if white else 0.0)
        shown.append((t, t_px))

    cfg = WaltSimConfig(drift_ppm=50, seed=2)
    with WaltSim(brightness_source=light, config=cfg) as sim, Walt.open(sim.path) as walt:
        t0 = time.monotonic()
        m = measure_screen_draw(walt, draw, n=transitions, seed=2)
        took = time.monotonic() - t0
    errors = []
    for s in m.samples:
        t_req, t_px = min(shown, key=lambda x: abs(x[0] - s.t))
        errors.append(s.value - (t_px - t_req) * 1e3)
    print(
        f"screen_draw_ms, {len(errors)} transitions in {took:.1f} s (ms): {_summary(errors)} | "
        f"claimed uncertainty <= {m.uncertainty:.3f} | calibration {m.meta['calibration']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--transitions", type=int, default=100)
    args = parser.parse_args()
    bench_sync(args.runs)
    bench_draw(args.transitions)


if __name__ == "__main__":
    main()
