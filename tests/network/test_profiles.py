"""NetworkProfile: the library, user files, validation (file + key in every error), schedules."""

from __future__ import annotations

import math

import pytest
import yaml

from harness.errors import ProfileError
from harness.network import profiles as P
from harness.network.profiles import (
    BUILTIN_FILE,
    load_network_profile,
    network_profiles,
    parse_network_profile,
)

ISSUE_LIBRARY = {
    "good-wifi",
    "poor-wifi",
    "very-bad-network",
    "edge",
    "3g",
    "lossy-5",
    "congested",
    "flapping",
    "offline",
}


def _write(tmp_path, data, name="mine.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _profile(**kw):
    return {"description": "d", "source": "s", **kw}


def test_library_has_the_issue_profiles_each_with_a_source():
    lib = network_profiles()
    assert ISSUE_LIBRARY <= set(lib)
    for prof in lib.values():
        assert prof.source.strip() and prof.description.strip()
        assert prof.file == str(BUILTIN_FILE)


def test_library_figures_match_their_sources():
    lib = network_profiles()
    vbn = lib["very-bad-network"]  # Network Link Conditioner: 1 Mbit/s, 500 ms, 10% loss
    for d in (vbn.up, vbn.down):
        assert (d.rate_kbit, d.delay_ms, d.loss_pct) == (1000, 500, 10)
    edge = lib["edge"]  # ATC Edge Average: 200/240 kbit/s, 440/400 ms
    assert (edge.up.rate_kbit, edge.down.rate_kbit, edge.up.delay_ms, edge.down.delay_ms) == (
        200,
        240,
        440,
        400,
    )
    g3 = lib["3g"]  # ATC 3G Average: 330/780 kbit/s, 100 ms
    assert (g3.up.rate_kbit, g3.down.rate_kbit, g3.up.delay_ms) == (330, 780, 100)
    lossy = lib["lossy-5"]
    assert lossy.up.loss_pct == lossy.down.loss_pct == 5 and lossy.up.loss_burst is None
    assert lossy.up.rate_kbit == lib["good-wifi"].up.rate_kbit
    assert (
        lib["flapping"].outages.windows == ((20.0, 5.0),)
        and lib["flapping"].outages.period_s == 25.0
    )
    assert lib["offline"].outages.always_down
    poor = lib["poor-wifi"].down.loss_burst
    assert poor is not None and poor.mean_loss_pct == pytest.approx(100 / 41)


def test_direction_overrides_and_features():
    prof = parse_network_profile(
        "x",
        _profile(delay_ms=50, jitter_ms=10, rate_kbit=800, up={"rate_kbit": 200, "delay_ms": 60}),
    )
    assert (prof.up.delay_ms, prof.up.jitter_ms, prof.up.rate_kbit) == (60, 10, 200)
    assert (prof.down.delay_ms, prof.down.rate_kbit) == (50, 800)
    assert set(prof.features()) == {P.DELAY, P.JITTER, P.ASYMMETRIC_DELAY, P.RATE}


def test_user_profiles_from_a_file_single_and_library_forms(tmp_path):
    single = _write(tmp_path, _profile(delay_ms=5), "single.yaml")
    assert load_network_profile(single).name == "single"
    lib = _write(
        tmp_path, {"profiles": {"a": _profile(loss_pct=1), "b": _profile(delay_ms=2)}}, "lib.yaml"
    )
    assert load_network_profile(f"{lib}#b").down.delay_ms == 2
    with pytest.raises(ProfileError, match="holds 2 profiles"):
        load_network_profile(lib)
    assert {"a", "b"} <= set(network_profiles(lib))
    assert load_network_profile("a", extra_files=(lib,)).up.loss_pct == 1


def test_user_profiles_from_the_environment(tmp_path, monkeypatch):
    lib = _write(tmp_path, {"profiles": {"lab-dsl": _profile(rate_kbit=2000)}}, "lab.yaml")
    monkeypatch.setenv(P.USER_FILES_ENV, str(lib))
    assert load_network_profile("lab-dsl").down.rate_kbit == 2000


def test_unknown_profile_names_the_known_ones():
    with pytest.raises(ProfileError) as e:
        load_network_profile("no-such-wifi")
    assert e.value.key == "name" and "good-wifi" in str(e.value) and "no-such-wifi" in str(e.value)


@pytest.mark.parametrize(
    "body, key, words",
    [
        (_profile(delay_ms=-1), "bad.delay_ms", ">= 0"),
        (_profile(loss_pct=101), "bad.loss_pct", "<= 100"),
        (_profile(up={"loss_pct": 150}), "bad.up.loss_pct", "<= 100"),
        (_profile(delay_ms=10, jitter_ms=20), "bad.jitter_ms", "<= delay_ms"),
        (_profile(reorder_pct=5), "bad.reorder_pct", "needs delay_ms"),
        (_profile(rate_kbit=0), "bad.rate_kbit", "> 0"),
        (_profile(loss_pct=1, loss_burst={"p_pct": 1, "r_pct": 50}), "bad.loss_burst", "not both"),
        (_profile(loss_burst={"p_pct": 1, "r_pct": 0}), "bad.loss_burst.r_pct", "> 0"),
        (_profile(loss_burst={"p_pct": 1, "r_pct": 10, "q": 1}), "bad.loss_burst.q", "unknown key"),
        (_profile(dealy_ms=5), "bad.dealy_ms", "unknown key"),
        (_profile(up={"outages": "always"}), "bad.up.outages", "unknown key"),
        (_profile(outages={"up_s": 10}), "bad.outages.down_s", "missing"),
        (
            _profile(outages=[{"at_s": 5, "duration_s": 10}, {"at_s": 8, "duration_s": 1}]),
            "bad.outages[1].at_s",
            "overlaps",
        ),
        (_profile(outages="sometimes"), "bad.outages", "expected"),
        (_profile(queue_packets=0), "bad.queue_packets", "1.."),
        ({"source": "s"}, "bad.description", "missing"),
        (_profile(delay_ms="fast"), "bad.delay_ms", "expected float"),
    ],
)
def test_bad_input_names_file_and_key(tmp_path, body, key, words):
    path = _write(tmp_path, {"profiles": {"bad": body}})
    with pytest.raises(ProfileError) as e:
        load_network_profile(f"{path}#bad")
    assert e.value.file == str(path)
    assert e.value.key == f"profiles.{key}", str(e.value)
    assert words in e.value.msg


def test_unreadable_and_invalid_yaml_files(tmp_path):
    with pytest.raises(ProfileError, match="cannot read"):
        load_network_profile(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("profiles: {a: [\n", encoding="utf-8")
    with pytest.raises(ProfileError, match="invalid YAML"):
        load_network_profile(broken)


def test_flapping_schedule_transitions_and_state():
    s = network_profiles()["flapping"].outages
    assert s.transitions(60) == [(20.0, False), (25.0, True), (45.0, False), (50.0, True)]
    assert [s.is_down(t) for t in (0, 19.9, 20, 24.9, 25, 44.9, 45)] == [
        False,
        False,
        True,
        True,
        False,
        False,
        True,
    ]
    assert s.next_up(21) == 25.0 and s.next_up(3) == 3


def test_bounded_and_one_off_schedules():
    cyc = parse_network_profile(
        "c", _profile(outages={"up_s": 1, "down_s": 0.5, "cycles": 2})
    ).outages
    assert cyc.transitions(100) == [(1.0, False), (1.5, True), (2.5, False), (3.0, True)]
    assert not cyc.is_down(4.0)
    once = parse_network_profile(
        "o", _profile(outages=[{"at_s": 2, "duration_s": 3}, {"at_s": 10, "duration_s": 1}])
    ).outages
    assert once.transitions(100) == [(2.0, False), (5.0, True), (10.0, False), (11.0, True)]
    always = network_profiles()["offline"].outages
    assert always.is_down(0) and always.is_down(1e6) and math.isinf(always.next_up(5))


def test_without_removes_features_and_averages_asymmetric_delay():
    edge = network_profiles()["edge"]
    sym = edge.without(P.ASYMMETRIC_DELAY)
    assert sym.up.delay_ms == sym.down.delay_ms == 420
    assert P.ASYMMETRIC_DELAY not in sym.features()
    assert network_profiles()["lossy-5"].without(P.LOSS).down.loss_pct == 0
    assert network_profiles()["flapping"].without(P.OUTAGE_SCHEDULE).features() == {}
