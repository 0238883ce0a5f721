"""Device profiles and budgets: loaded into frozen objects; every mistake names file and key."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
import yaml

from harness.errors import ProfileError
from harness.profiles import DEFAULT_PROFILES_DIR, load_budgets, load_profile, load_profiles

EXPECTED = {
    "fire-hdx-7-2013": ("KFTHWI", 17, True),
    "fire-hdx-89-2013": ("KFAPWI", 17, True),
    "fire-hdx-89-2014": ("KFSAWI", 19, True),
    "fire-hd-7-2013": ("KFSOWI", 17, False),
    "android-emulator-api34": ("sdk_gphone64_x86_64", 34, True),
    "android-tablet-api30": ("SM-T500", 30, True),
}


def test_every_shipped_profile_loads_frozen():
    profiles = load_profiles()
    assert {name: (p.model, p.api_level, p.eligible) for name, p in profiles.items()} == EXPECTED
    hd7 = profiles["fire-hd-7-2013"]
    assert (
        not hd7.hardware.microphone
        and not hd7.hardware.front_camera
        and "microphone" in hd7.ineligible_reason
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        hd7.api_level = 30  # type: ignore[misc]


def test_profile_matching_by_getprop():
    profiles = load_profiles()
    props = {"ro.product.manufacturer": "Amazon", "ro.product.model": "KFTHWA"}
    assert [n for n, p in profiles.items() if p.matches(props)] == ["fire-hdx-7-2013"]
    assert not any(p.matches({"ro.product.model": "Pixel 7"}) for p in profiles.values())


def _write(tmp_path: Path, name: str, mutate) -> Path:
    data = yaml.safe_load((DEFAULT_PROFILES_DIR / "fire-hdx-7-2013.yaml").read_text())
    data["name"] = name
    mutate(data)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    "mutate,key,words",
    [
        (lambda d: d["display"].pop("width"), "display.width", "missing"),
        (lambda d: d["display"].update(width="wide"), "display.width", "expected int"),
        (lambda d: d["hardware"].update(microphone="yes"), "hardware.microphone", "expected bool"),
        (lambda d: d.update(api_level=3), "api_level", ">= 16"),
        (lambda d: d["hardware"].update(microphon=True), "hardware.microphon", "unknown key"),
        (lambda d: d["support"].update(eligible=False), "support.ineligible_reason", "required"),
        (
            lambda d: d["properties"].update({"ro.build.version.sdk": "19"}),
            "properties.ro.build.version.sdk",
            "disagrees",
        ),
        (
            lambda d: d["properties"].update({"ro.product.model": "KF;THWI"}),
            "properties.ro.product.model",
            "banner",
        ),
    ],
)
def test_malformed_profile_names_file_and_key(tmp_path, mutate, key, words):
    path = _write(tmp_path, "broken", mutate)
    with pytest.raises(ProfileError) as err:
        load_profile(path)
    assert err.value.file == str(path) and err.value.key == key and words in err.value.msg
    assert str(path) in str(err.value) and key in str(err.value)


def test_invalid_yaml_and_unknown_profile(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ndisplay: {width: 1\n")
    with pytest.raises(ProfileError, match=r"bad.yaml: line \d+: invalid YAML"):
        load_profile(bad)
    with pytest.raises(
        ProfileError, match="unknown profile 'fire-hdx-99'.*known: android-emulator-api34"
    ):
        load_profile("fire-hdx-99")


def test_budgets_resolve_extends_and_name_bad_keys(tmp_path):
    budgets = load_budgets(DEFAULT_PROFILES_DIR / "budgets.yaml")
    hdx = budgets["fire-hdx"]
    assert {(lim.stat, lim.op, lim.value) for lim in hdx.for_metric("connect_time_s")} == {
        ("p95", "<=", 15.0),
        ("mean", "<=", 9.0),
    }
    assert all(lim.source for lim in hdx.limits)
    for text, key in [
        ("budgets: {a: {connect_time_s: {p96: {max: 1}}}}", "budgets.a.connect_time_s.p96"),
        ("budgets: {a: {connect_time_s: {p95: {max: fast}}}}", "budgets.a.connect_time_s.p95.max"),
        ("budgets: {a: {extends: b, x: {p95: {max: 1}}}}", "budgets.a.extends"),
        ("budgets: {a: {connect_time_s: {unit: s}}}", "budgets.a.connect_time_s"),
    ]:
        path = tmp_path / "budgets.yaml"
        path.write_text(text)
        with pytest.raises(ProfileError) as err:
            load_budgets(path)
        assert err.value.key == key, (text, err.value)


def test_profiles_dir_without_profiles_is_an_error(tmp_path):
    with pytest.raises(ProfileError, match="does not exist"):
        load_profiles(tmp_path / "nowhere")
    shutil.copy(DEFAULT_PROFILES_DIR / "budgets.yaml", tmp_path)
    assert load_profiles(tmp_path) == {}
