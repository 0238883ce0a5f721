"""App profiles: every shipped one loads; every key's bad value is one error naming file and key;
selectors resolve per locale and find their element in a UI dump (text, description, id, XPath)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from harness.device.ui import Selector, select
from harness.errors import ProfileError
from harness.profiles import (
    DEFAULT_PROFILES_DIR,
    load_app_profile,
    load_app_profiles,
    load_profiles,
)
from harness.profiles.app import apps_dir, language_chain, parse_app_profile

MAYDAY = yaml.safe_load((apps_dir() / "mayday.yaml").read_text())
HELPDESK = yaml.safe_load((apps_dir() / "helpdesk.yaml").read_text())


def test_shipped_app_profiles_load_and_device_profiles_name_one():
    apps = load_app_profiles()
    assert {"mayday", "helpdesk"} <= set(apps)
    for profile in load_profiles().values():
        assert profile.app in apps, f"{profile.name}: app {profile.app!r} has no app profile"
    m = apps["mayday"]
    assert m.open.method == "quick_settings" and m.twin.pane == "right"
    assert apps["helpdesk"].open.method == "launcher" and apps["helpdesk"].twin.pane == "left"


def test_mayday_profile_matches_the_twin_support_app_constants():
    """mayday.yaml describes the twin's app: the same strings the twin's support app shows."""
    from harness.twin import support

    m = load_app_profile("mayday")
    assert m.message("unregistered", "en") == support.MSG_UNREGISTERED
    assert m.message("closed", "en") == support.MSG_CLOSED
    assert m.message("no_wifi", "en") == support.MSG_NO_WIFI
    assert m.message("unsupported", "en") == support.MSG_UNSUPPORTED
    assert m.selector("agent_video").resolve("en")["description"] == "agent video"
    assert m.waiting_state("queued").colour_rgb == (255, 176, 0)
    from harness.twin.rtc import SHARE_FPS

    assert m.share_fps == SHARE_FPS  # the twin's share rate: the figures' nominal
    assert load_app_profile("helpdesk").share_fps is None  # optional: no health recorded


@pytest.mark.parametrize(
    ("locale", "button", "closed"),
    [
        ("en-US", "Mayday live support", "Mayday is not available at this hour"),
        ("de-DE", "Mayday Live-Hilfe", "Mayday ist zu dieser Stunde nicht erreichbar"),
        ("de", "Mayday Live-Hilfe", "Mayday ist zu dieser Stunde nicht erreichbar"),
        ("fr-FR", "Mayday live support", "Mayday is not available at this hour"),  # default locale
        ("", "Mayday live support", "Mayday is not available at this hour"),
    ],
)
def test_selectors_and_messages_resolve_per_locale(locale, button, closed):
    m = load_app_profile("mayday")
    assert m.selector("support_button").resolve(locale) == {"description": button}
    assert m.selector("message_ok").resolve(locale) == {"text": "OK"}  # one value, every locale
    assert m.message("closed", locale) == closed
    assert m.message_kind(closed, locale) == "closed"
    assert language_chain("de-DE", "en") == ["de-DE", "de", "en"]


_DUMP = """<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>
<hierarchy rotation="0">
  <node index="0" text="" resource-id="" class="android.widget.FrameLayout" package="x" content-desc="" clickable="false" bounds="[0,0][1280,800]">
    <node index="0" text="Anruf..." resource-id="com.example.helpdesk:id/status" class="android.widget.TextView" package="com.example.helpdesk" content-desc="" clickable="false" bounds="[10,500][400,540]" />
    <node index="1" text="" resource-id="com.example.helpdesk:id/remote_view" class="android.view.SurfaceView" package="com.example.helpdesk" content-desc="" clickable="false" bounds="[10,40][400,330]" />
    <node index="2" text="Support anrufen" resource-id="com.example.helpdesk:id/call_support" class="android.widget.Button" package="com.example.helpdesk" content-desc="" clickable="true" bounds="[800,600][1000,680]" />
    <node index="3" text="Auflegen" resource-id="com.example.helpdesk:id/hang_up" class="android.widget.Button" package="com.example.helpdesk" content-desc="" clickable="true" bounds="[300,500][400,540]" />
    <node index="4" text="OK" resource-id="com.mayday.support:id/message" class="android.widget.TextView" package="com.mayday.support" content-desc="" clickable="false" bounds="[0,0][1,1]" />
  </node>
</hierarchy>"""


def test_selectors_find_their_element_in_a_dump_by_every_kind():
    h = load_app_profile("helpdesk")
    de = {
        name: select(_DUMP, Selector(**h.selector(name).resolve("de-DE")))
        for name in ("support_button", "agent_video", "end_button", "waiting_message")
    }
    assert [e.bounds for e in de["support_button"]] == [(800, 600, 1000, 680)]  # text + id
    assert [e.bounds for e in de["agent_video"]] == [(10, 40, 400, 330)]  # XPath
    assert [e.text for e in de["end_button"]] == ["Auflegen"]
    assert [e.text for e in de["waiting_message"]] == ["Anruf..."]
    # English selectors do not match the German UI
    assert select(_DUMP, Selector(**h.selector("support_button").resolve("en"))) == []
    # a resource id starting with ":" matches its suffix in any package
    assert [e.package for e in select(_DUMP, Selector(resource_id=":id/message"))] == [
        "com.mayday.support"
    ]
    assert h.waiting_state("queued").matches_text(
        ["Warten auf einen Mitarbeiter (Position 2)"], "de"
    )
    assert not h.waiting_state("queued").matches_text(["Anruf..."], "de")


def _mutations():
    def setk(path, value):
        def f(d):
            node = d
            for k in path[:-1]:
                node = node[k]
            node[path[-1]] = value

        return f

    def delk(path):
        def f(d):
            node = d
            for k in path[:-1]:
                node = node[k]
            del node[path[-1]]

        return f

    return [
        (MAYDAY, setk(["name"], "other"), "name", "must equal the file name"),
        (MAYDAY, setk(["locales"], ["english"]), "locales", "expected a list of locales"),
        (MAYDAY, setk(["default_locale"], "fr"), "default_locale", "is not in locales"),
        (MAYDAY, setk(["packages"], ["not a package"]), "packages", "package names"),
        (MAYDAY, setk(["packages"], []), "packages", "package names"),
        (MAYDAY, setk(["open", "method"], "shake"), "open.method", "expected one of"),
        (MAYDAY, setk(["open", "button"], 1), "open.button", "unknown key"),
        (MAYDAY, delk(["open"]), "open", "missing required section"),
        (HELPDESK, delk(["open", "icon"]), "open.icon", "missing required section"),
        (
            MAYDAY,
            setk(["open"], {"method": "intent", "component": "noslash"}),
            "open.component",
            "package/.Activity",
        ),
        (MAYDAY, setk(["open"], {"method": "intent"}), "open.action", "needs an action"),
        (MAYDAY, delk(["selectors", "end_button"]), "selectors.end_button", "missing required"),
        (MAYDAY, setk(["selectors", "end_button"], {}), "selectors.end_button", "needs one of"),
        (
            MAYDAY,
            setk(["selectors", "end_button", "colour"], "red"),
            "selectors.end_button.colour",
            "unknown key",
        ),
        (
            MAYDAY,
            setk(["selectors", "end_button", "text"], 5),
            "selectors.end_button.text",
            "expected str or dict",
        ),
        (
            MAYDAY,
            setk(["selectors", "end_button", "text"], ""),
            "selectors.end_button.text",
            "must not be empty",
        ),
        (
            MAYDAY,
            setk(["selectors", "end_button", "description"], {"fr": "Fin"}),
            "selectors.end_button.description.fr",
            "unknown locale",
        ),
        (
            MAYDAY,
            setk(["selectors", "end_button", "description"], {"de": "Ende"}),
            "selectors.end_button.description.en",
            "missing the default locale",
        ),
        (
            MAYDAY,
            setk(["selectors", "end_button", "xpath"], ".//node[@"),
            "selectors.end_button.xpath",
            "XPath",
        ),
        (
            MAYDAY,
            setk(["waiting", "served"], {"text": "x"}),
            "waiting.served",
            "unknown waiting state",
        ),
        (
            MAYDAY,
            setk(["waiting", "queued"], {"tolerance": 3}),
            "waiting.queued",
            "needs text or colour_rgb",
        ),
        (
            MAYDAY,
            setk(["waiting", "queued", "colour_rgb"], [1, 2]),
            "waiting.queued.colour_rgb",
            "[r, g, b]",
        ),
        (
            MAYDAY,
            setk(["waiting", "queued", "colour_rgb"], [1, 2, 300]),
            "waiting.queued.colour_rgb",
            "0..255",
        ),
        (
            MAYDAY,
            setk(["waiting", "queued", "tolerance"], 0),
            "waiting.queued.tolerance",
            "must be >= 1",
        ),
        (MAYDAY, setk(["messages"], {}), "messages", "at least one message"),
        (MAYDAY, setk(["messages", "closed"], ["a"]), "messages.closed", "expected str or dict"),
        (MAYDAY, setk(["twin", "pane"], "top"), "twin.pane", "left or right"),
        (MAYDAY, setk(["twin", "button_at"], [2, 0.5]), "twin.button_at", "fractions"),
        (MAYDAY, setk(["twin", "colours"], "yes"), "twin.colours", "expected bool"),
        (
            HELPDESK,
            delk(["twin", "app_label"]),
            "twin.app_label",
            "required when the twin plays a launcher",
        ),
        (MAYDAY, setk(["colour"], 1), "colour", "unknown key"),
        (MAYDAY, setk(["media", "share_fps"], 0), "media.share_fps", "must be >= 0.5"),
        (MAYDAY, setk(["media", "share_fps"], "15"), "media.share_fps", "expected float"),
        (MAYDAY, setk(["media", "fps"], 15), "media.fps", "unknown key"),
    ]


@pytest.mark.parametrize(("base", "mutate", "key", "words"), _mutations())
def test_every_bad_value_is_one_error_naming_file_and_key(tmp_path, base, mutate, key, words):
    data = copy.deepcopy(base)
    mutate(data)
    path = tmp_path / f"{base['name']}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    with pytest.raises(ProfileError) as err:
        load_app_profile(path)
    assert err.value.key == key, str(err.value)
    assert words in str(err.value) and str(path) in str(err.value)


def test_unknown_app_name_lists_the_known_ones(tmp_path):
    with pytest.raises(
        ProfileError, match=r"unknown app profile 'nope'; known: .*helpdesk.*mayday"
    ):
        load_app_profile("nope")
    with pytest.raises(ProfileError, match="expected a mapping"):
        parse_app_profile(Path("x.yaml"), ["a"])


def test_device_profile_app_key_defaults_and_is_validated(tmp_path):
    src = yaml.safe_load((Path(DEFAULT_PROFILES_DIR) / "android-emulator-api34.yaml").read_text())
    src.pop("app", None)
    (tmp_path / "android-emulator-api34.yaml").write_text(yaml.safe_dump(src))
    assert load_profiles(tmp_path)["android-emulator-api34"].app == "mayday"
    src["app"] = 3
    (tmp_path / "android-emulator-api34.yaml").write_text(yaml.safe_dump(src))
    with pytest.raises(ProfileError) as err:
        load_profiles(tmp_path)
    assert err.value.key == "app"


def test_nothing_in_harness_session_names_the_product():
    """The flow is driven by the app profile: no product name in harness/session (the entry-point
    group and the harness's own Timecode test app are the harness's names, not a product's)."""
    import re

    root = Path(__file__).resolve().parents[2] / "harness" / "session"
    offenders = []
    for path in sorted(root.rglob("*.py")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            cleaned = re.sub(r"mayday_hil|com\.mayday\.hil\.\w+", "", line)
            if re.search(r"mayday", cleaned, re.I):
                offenders.append(f"{path.name}:{n}: {line.strip()}")
    assert not offenders, offenders
