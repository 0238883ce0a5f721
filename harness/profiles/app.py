"""AppProfile: what a support feature looks like on the device (device_profiles/apps/*.yaml).

How support is opened (quick settings, a launcher icon then an in-app button, or an intent),
one selector per UI element the flow touches (text, content description, resource id or XPath,
each a plain string or a mapping locale -> string), how waiting states are recognised (text on
screen or a pane colour with a tolerance), the refusal messages per locale, and the packages.
The twin's support app plays a profile from its optional `twin` section.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ProfileError
from harness.profiles.device import DEFAULT_PROFILES_DIR
from harness.profiles.schema import Fields, read_yaml

DEFAULT_APP = "mayday"
OPEN_METHODS = ("quick_settings", "launcher", "intent")
SELECTOR_KINDS = ("text", "description", "resource_id", "xpath")
REQUIRED_SELECTORS = ("support_button", "agent_video", "end_button", "message", "message_ok")
WAITING_STATES = ("queued", "assigned")
PANE_SIDES = ("left", "right")
_LOCALE_RE = re.compile(r"^[a-z]{2,3}(-[A-Z]{2})?$")
_PACKAGE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+$")


def apps_dir(profiles_dir: Path | None = None) -> Path:
    """Where app profiles live: <device profiles dir>/apps."""
    return Path(profiles_dir or DEFAULT_PROFILES_DIR) / "apps"


def language_chain(locale: str, default: str) -> list[str]:
    """Lookup order for a device locale: "de-DE" -> ["de-DE", "de", default]."""
    out = [locale] if locale else []
    lang = locale.split("-", 1)[0] if locale else ""
    if lang and lang not in out:
        out.append(lang)
    if default not in out:
        out.append(default)
    return out


@dataclass(frozen=True)
class Localized:
    """A string with per-locale alternatives (locale "*" = every locale)."""

    values: tuple[tuple[str, str], ...]
    default_locale: str = "en"

    def get(self, locale: str = "") -> str:
        table = dict(self.values)
        if "*" in table:
            return table["*"]
        for loc in language_chain(locale, self.default_locale):
            if loc in table:
                return table[loc]
        return table[self.default_locale]

    @property
    def locales(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self.values)


@dataclass(frozen=True)
class ElementSelector:
    """One UI element: any of text / content description / resource id / XPath, each localized.

    A resource id that starts with ":" (":id/message") matches that suffix in any package.
    """

    name: str
    parts: tuple[tuple[str, Localized], ...]

    def resolve(self, locale: str = "") -> dict[str, str]:
        """{kind: value} for the device's locale (kinds: text, description, resource_id, xpath)."""
        return {kind: loc.get(locale) for kind, loc in self.parts}

    def describe(self, locale: str = "") -> str:
        return (
            f"{self.name} ("
            + ", ".join(f"{k}={v!r}" for k, v in self.resolve(locale).items())
            + ")"
        )


@dataclass(frozen=True)
class WaitingState:
    """How the app shows a waiting state: a text on screen (glob) and/or a pane colour."""

    name: str
    text: Localized | None = None
    colour_rgb: tuple[int, int, int] | None = None
    tolerance: float = 40.0

    def matches_text(self, texts: list[str], locale: str = "") -> bool:
        if self.text is None:
            return False
        pattern = self.text.get(locale)
        return any(fnmatch.fnmatchcase(t, pattern) for t in texts)


@dataclass(frozen=True)
class OpenSupport:
    """How the support feature is opened."""

    method: str
    icon: ElementSelector | None = None  # launcher: the app's icon on the home screen
    action: str = ""  # intent
    component: str = ""  # intent: package/.Activity
    extras: tuple[tuple[str, str], ...] = ()  # intent: --es key value

    def am_start_args(self) -> list[str]:
        """`am start` arguments for the intent method (each one shell argument)."""
        args = ["am", "start"]
        if self.action:
            args += ["-a", self.action]
        if self.component:
            args += ["-n", self.component]
        for k, v in self.extras:
            args += ["--es", k, v]
        return args


@dataclass(frozen=True)
class TwinLook:
    """How the twin's support app plays this profile (only for profiles the twin can play)."""

    pane: str = "right"  # where the session pane floats
    app_label: str = ""  # launcher: the icon's label; the app's title
    button_at: tuple[float, float] = (0.5, 0.5)  # launcher/intent: the button's centre (fractions)
    tile_label: Localized | None = None  # quick settings: the tile's text
    status: tuple[
        tuple[str, Localized], ...
    ] = ()  # pane status per session state ({position}, {agent})
    colours: bool = True  # waiting states as pane colours (else a neutral pane and text only)


@dataclass(frozen=True)
class AppProfile:
    """A support feature: how to open it, its selectors, waiting states, messages, packages."""

    name: str
    file: str
    description: str
    packages: tuple[str, ...]
    default_locale: str
    locales: tuple[str, ...]
    open: OpenSupport
    selectors: tuple[tuple[str, ElementSelector], ...]
    waiting: tuple[WaitingState, ...]
    messages: tuple[tuple[str, Localized], ...]
    twin: TwinLook | None = None
    # the share's nominal frame rate as the app encodes it (media.share_fps): the figures'
    # health (frames received against it) goes into the history with them
    share_fps: float | None = None
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def selector(self, name: str) -> ElementSelector:
        table = dict(self.selectors)
        if name not in table:
            raise ProfileError(self.file, f"selectors.{name}", "not defined in this app profile")
        return table[name]

    def has_selector(self, name: str) -> bool:
        return name in dict(self.selectors)

    def message(self, kind: str, locale: str = "") -> str:
        table = dict(self.messages)
        if kind not in table:
            raise ProfileError(self.file, f"messages.{kind}", "not defined in this app profile")
        return table[kind].get(locale)

    def message_kind(self, text: str, locale: str = "") -> str | None:
        """Which message (unregistered, closed, ...) a text on screen is, in any of the locales."""
        for kind, loc in self.messages:
            if text == loc.get(locale) or text in dict(loc.values).values():
                return kind
        return None

    def waiting_state(self, name: str) -> WaitingState | None:
        return next((w for w in self.waiting if w.name == name), None)


def twin_app_args(spec: str | None) -> tuple[str, ...]:
    """`hil twin up` arguments for a twin app spec NAME[@LOCALE] (the plugin's --twin-app): the
    app profile, the device locale, and the locale's country as the support region."""
    if not spec:
        return ()
    name, _, locale = spec.partition("@")
    args: tuple[str, ...] = ("--app", name)
    if locale:
        args += ("--locale", locale)
        if "-" in locale:
            args += ("--region", locale.split("-", 1)[1].upper())
    return args


def load_app_profile(name_or_path: str | Path, profiles_dir: Path | None = None) -> AppProfile:
    """Load an app profile by name (file stem in <profiles dir>/apps) or by path.

    Raises:
        ProfileError: unknown name, unreadable file or invalid content (names file and key).
    """
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        directory = apps_dir(profiles_dir)
        path = directory / f"{name_or_path}.yaml"
        if not path.is_file():
            known = ", ".join(sorted(p.stem for p in directory.glob("*.yaml")))
            raise ProfileError(
                str(path),
                "name",
                f"unknown app profile {str(name_or_path)!r}; known: {known or 'none'}",
            )
    return parse_app_profile(path, read_yaml(path))


def load_app_profiles(profiles_dir: Path | None = None) -> dict[str, AppProfile]:
    """Every app profile of <profiles dir>/apps, by name."""
    directory = apps_dir(profiles_dir)
    return {p.stem: parse_app_profile(p, read_yaml(p)) for p in sorted(directory.glob("*.yaml"))}


# --- parsing -------------------------------------------------------------------------------
def _localized(f: Fields, name: str, default_locale: str, locales: tuple[str, ...]) -> Localized:
    value = f.get(name, (str, dict))
    if isinstance(value, str):
        if not value.strip():
            raise f.error(name, "must not be empty")
        return Localized((("*", value),), default_locale)
    sub = f.sub(name)
    pairs = []
    for loc in list(sub.data):
        if not isinstance(loc, str) or loc not in locales:
            raise sub.error(
                str(loc), f"unknown locale; the profile's locales: {', '.join(locales)}"
            )
        text = sub.get(loc, str)
        if not text.strip():
            raise sub.error(loc, "must not be empty")
        pairs.append((loc, text))
    sub.finish()
    if default_locale not in dict(pairs):
        raise sub.error(default_locale, "missing the default locale's value")
    return Localized(tuple(pairs), default_locale)


def _selector(
    f: Fields, name: str, default_locale: str, locales: tuple[str, ...]
) -> ElementSelector:
    sub = f.sub(name)
    parts = []
    for kind in SELECTOR_KINDS:
        if kind in sub.data:
            loc = _localized(sub, kind, default_locale, locales)
            if kind == "xpath":
                for _, xp in loc.values:
                    _check_xpath(sub, xp)
            parts.append((kind, loc))
    sub.finish()
    if not parts:
        raise f.error(name, f"needs one of {', '.join(SELECTOR_KINDS)}")
    return ElementSelector(name, tuple(parts))


def _check_xpath(f: Fields, xp: str) -> None:
    import xml.etree.ElementTree as ET

    try:
        ET.fromstring("<hierarchy><node/></hierarchy>").findall(xp)
    except (SyntaxError, KeyError, TypeError) as e:
        raise f.error("xpath", f"not an XPath this harness can evaluate ({e}): {xp!r}") from None


def _rgb(f: Fields, name: str) -> tuple[int, int, int]:
    value = f.get(name, list)
    if len(value) != 3 or not all(
        isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in value
    ):
        raise f.error(name, f"expected [r, g, b] with integers 0..255, got {value!r}")
    return (value[0], value[1], value[2])


def parse_app_profile(path: Path | str, data: Any) -> AppProfile:  # noqa: C901 -- one branch per key of the app profile schema, each with its own error
    """Validate one app profile's YAML data. Raises ProfileError naming the file and key."""
    path = Path(path)
    f = Fields(path, data)
    name = f.get("name", str)
    if name != path.stem:
        raise f.error("name", f"must equal the file name {path.stem!r}, got {name!r}")
    locales_raw = f.get("locales", list, ["en"])
    if not locales_raw or not all(isinstance(v, str) and _LOCALE_RE.match(v) for v in locales_raw):
        raise f.error(
            "locales", f"expected a list of locales like en, de, de-DE; got {locales_raw!r}"
        )
    locales = tuple(locales_raw)
    default_locale = f.get("default_locale", str, locales[0])
    if default_locale not in locales:
        raise f.error("default_locale", f"{default_locale!r} is not in locales {list(locales)}")
    packages = f.get("packages", list)
    if not packages or not all(isinstance(p, str) and _PACKAGE_RE.match(p) for p in packages):
        raise f.error(
            "packages", f"expected a list of package names like com.example.app; got {packages!r}"
        )

    op = f.sub("open")
    method = op.get("method", str)
    if method not in OPEN_METHODS:
        raise op.error("method", f"expected one of {', '.join(OPEN_METHODS)}, got {method!r}")
    icon = None
    action = component = ""
    extras: tuple[tuple[str, str], ...] = ()
    if method == "launcher":
        icon = _selector(op, "icon", default_locale, locales)
    if method == "intent":
        action = op.get("action", str, "")
        component = op.get("component", str, "")
        if not (action or component):
            raise op.error("action", "an intent needs an action or a component")
        if component and "/" not in component:
            raise op.error("component", f"expected package/.Activity, got {component!r}")
        ex = op.sub("extras", {})
        extras = tuple((str(k), str(ex.get(k, (str, int, float, bool)))) for k in list(ex.data))
        ex.finish()
    op.finish()
    opening = OpenSupport(method, icon, action, component, extras)

    sel_f = f.sub("selectors")
    selectors = [
        (str(k), _selector(sel_f, str(k), default_locale, locales)) for k in list(sel_f.data)
    ]
    sel_f.finish()
    for required in REQUIRED_SELECTORS:
        if required not in dict(selectors):
            raise sel_f.error(required, "missing required selector")

    wait_f = f.sub("waiting", {})
    waiting = []
    for state in list(wait_f.data):
        if state not in WAITING_STATES:
            raise wait_f.error(
                str(state), f"unknown waiting state; use {', '.join(WAITING_STATES)}"
            )
        w = wait_f.sub(state)
        text = _localized(w, "text", default_locale, locales) if "text" in w.data else None
        colour = _rgb(w, "colour_rgb") if "colour_rgb" in w.data else None
        tol = w.get("tolerance", float, 40.0, min_value=1.0, max_value=255.0)
        w.finish()
        if text is None and colour is None:
            raise wait_f.error(state, "needs text or colour_rgb")
        waiting.append(WaitingState(state, text, colour, tol))
    wait_f.finish()

    msg_f = f.sub("messages")
    messages = [
        (str(k), _localized(msg_f, str(k), default_locale, locales)) for k in list(msg_f.data)
    ]
    msg_f.finish()
    if not messages:
        raise f.error("messages", "needs at least one message")

    twin = None
    if "twin" in f.data:
        t = f.sub("twin")
        pane = t.get("pane", str, "right")
        if pane not in PANE_SIDES:
            raise t.error("pane", f"expected left or right, got {pane!r}")
        at = t.get("button_at", list, [0.5, 0.5])
        if len(at) != 2 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 1 for v in at
        ):
            raise t.error(
                "button_at", f"expected [x, y] fractions of the screen (0..1), got {at!r}"
            )
        st = t.sub("status", {})
        status = tuple(
            (str(k), _localized(st, str(k), default_locale, locales)) for k in list(st.data)
        )
        st.finish()
        twin = TwinLook(
            pane=pane,
            app_label=t.get("app_label", str, ""),
            button_at=(float(at[0]), float(at[1])),
            tile_label=_localized(t, "tile_label", default_locale, locales)
            if "tile_label" in t.data
            else None,
            status=status,
            colours=t.get("colours", bool, True),
        )
        t.finish()
        if method == "launcher" and not twin.app_label:
            raise t.error("app_label", "required when the twin plays a launcher app")
    share_fps = None
    if "media" in f.data:
        media = f.sub("media")
        share_fps = media.get("share_fps", float, None, min_value=0.5, max_value=120.0)
        media.finish()
    profile = AppProfile(
        name=name,
        file=str(path),
        description=f.get("description", str, ""),
        packages=tuple(packages),
        default_locale=default_locale,
        locales=locales,
        open=opening,
        selectors=tuple(selectors),
        waiting=tuple(waiting),
        messages=tuple(messages),
        twin=twin,
        share_fps=share_fps,
    )
    f.finish()
    return profile
