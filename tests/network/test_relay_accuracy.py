"""The relay measured from outside it, over >= 10,000 datagrams each (issue 7, must be shown).

The relay runs as `hil net relay` in its own process; a paced sender here stamps each datagram
and a sink in a third process stamps its arrival (host monotonic clock, shared by processes).
- delay: the median added delay (path minus the direct path's median) is within 2 ms of the
  profile, and no datagram arrives before the profile's minimum delay;
- loss: the count lost is inside the 99% binomial interval of the profile's loss rate, and it
  is exactly what the relay says it dropped;
- rate: the received rate (IP bytes, as the relay counts them) is within 5% of the profile;
- seed: the same seed drops the same datagrams, whatever the delay; another seed does not.
"""

from __future__ import annotations

import statistics

import pytest
import yaml

from harness.network.impairment import RelayProcess
from harness.network.linkprobe import UdpSink, binomial_interval, probe

PACKETS = 10_000
PAYLOAD_B = 1200
DELAY_TOLERANCE_MS = 2.0
RATE_TOLERANCE = 0.05
EARLY_SLACK_MS = 0.05  # clock read granularity between two processes
LOSS_CONFIDENCE = 0.99


def _profile_file(tmp_path, name: str, **body) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        yaml.safe_dump({"name": name, "description": "test profile", "source": "test", **body})
    )
    return str(path)


def _through_relay(profile: str, seed: int, count: int, pps: float, idle_s: float = 1.0):
    sink = UdpSink(idle_s=idle_s, deadline_s=count / pps + 30.0, expect=count)
    relay = RelayProcess(profile, sink.address, seed=seed)
    try:
        relay.start()
        result = probe(relay.address, count, pps, PAYLOAD_B, sink=sink)
    finally:
        counters = relay.stop()
        sink.close()
    assert counters is not None, "the relay printed no counters"
    return result, counters


@pytest.fixture(scope="module")
def baseline_ms():
    """Median one-way delay of the direct path, measured the same way."""
    return statistics.median(probe(None, 2000, 2000, PAYLOAD_B).delays_ms())


@pytest.fixture(scope="module")
def lossy_delayed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("relay")
    path = _profile_file(tmp, "delay-loss", delay_ms=30, jitter_ms=10, loss_pct=5)
    return _through_relay(path, seed=7, count=PACKETS, pps=2000)


def test_median_added_delay_matches_the_profile(lossy_delayed, baseline_ms):
    result, counters = lossy_delayed
    delays = result.delays_ms()
    assert len(delays) >= 0.9 * PACKETS
    added = statistics.median(delays) - baseline_ms
    print(
        f"\nrelay delay 30 +/- 10 ms: median added {added:.3f} ms (error {added - 30:+.3f} ms) over"
        f" {len(delays)} datagrams; min {min(delays):.3f} ms; baseline {baseline_ms:.3f} ms;"
        f" relay's own hold p50 {counters['forward']['hold_ms_p50']:.3f} ms"
    )
    assert added == pytest.approx(30.0, abs=DELAY_TOLERANCE_MS)
    assert min(delays) >= 20.0 - EARLY_SLACK_MS  # never before delay - jitter
    spread = sorted(delays)
    assert (
        spread[len(spread) // 20] < 22.0 and spread[-len(spread) // 20] > 38.0
    )  # uniform over +/- 10 ms


def test_loss_is_inside_the_binomial_interval_and_matches_the_counters(lossy_delayed):
    result, counters = lossy_delayed
    fwd = counters["forward"]
    assert fwd["received"] == PACKETS, "datagrams were lost before the relay (kernel buffers)"
    lo, hi = binomial_interval(PACKETS, 0.05, LOSS_CONFIDENCE)
    print(
        f"\nrelay loss 5%: {result.lost} of {PACKETS} lost ({100 * result.lost / PACKETS:.2f}%),"
        f" 99% interval [{lo}, {hi}]"
    )
    assert lo <= result.lost <= hi
    assert result.lost == fwd["dropped_random"] == fwd["dropped"]
    assert fwd["forwarded"] == result.received and result.duplicates == 0


def test_the_same_seed_drops_the_same_datagrams(lossy_delayed, tmp_path):
    first, _ = lossy_delayed
    loss_only = _profile_file(
        tmp_path, "loss-only", loss_pct=5
    )  # no delay: the drops must not depend on it
    again, c_again = _through_relay(loss_only, seed=7, count=PACKETS, pps=5000)
    other, c_other = _through_relay(loss_only, seed=8, count=PACKETS, pps=5000)
    assert c_again["forward"]["received"] == c_other["forward"]["received"] == PACKETS
    assert again.lost_seqs == first.lost_seqs
    assert other.lost_seqs != first.lost_seqs
    overlap = len(set(other.lost_seqs) & set(first.lost_seqs))
    assert overlap < 0.2 * len(first.lost_seqs)  # independent streams overlap by ~5%


def test_rate_matches_the_profile(tmp_path):
    rate_kbit = 20_000
    path = _profile_file(tmp_path, "rate", rate_kbit=rate_kbit, queue_packets=20_000)
    ip_b = PAYLOAD_B + 28
    offered_pps = 1.15 * rate_kbit * 1000 / (ip_b * 8)
    count = 12_000
    result, counters = _through_relay(path, seed=1, count=count, pps=offered_pps)
    assert result.received >= PACKETS
    measured = result.rx_rate_bps()
    error_pct = 100 * (measured / (rate_kbit * 1000) - 1)
    print(
        f"\nrelay rate {rate_kbit} kbit/s: received {measured / 1000:.1f} kbit/s IP"
        f" over {result.received} datagrams (error {error_pct:+.2f}%)"
    )
    assert measured == pytest.approx(rate_kbit * 1000, rel=RATE_TOLERANCE)
    assert counters["forward"]["dropped"] == 0
