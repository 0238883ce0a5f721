"""DeviceProfile: how to recognise a model, what it should have, which budget applies.

One YAML file per model in device_profiles/. The twin impersonates a model from the same file.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import ProfileError
from harness.profiles.schema import Fields, read_yaml

DEFAULT_PROFILES_DIR = Path(
    os.environ.get("HIL_PROFILES_DIR", Path(__file__).resolve().parents[2] / "device_profiles")
)
_MIN_API = 16
_MAX_API = 40
_BANNER_FORBIDDEN = (":", ";", "=")


@dataclass(frozen=True)
class Display:
    width: int
    height: int
    density: int


@dataclass(frozen=True)
class Hardware:
    microphone: bool
    front_camera: bool
    back_camera: bool
    wifi: bool


@dataclass(frozen=True)
class DeviceProfile:
    """A device model: matchers, expected facts, eligibility and budget name."""

    name: str
    file: str
    description: str
    match: tuple[tuple[str, tuple[str, ...]], ...]
    properties: tuple[tuple[str, str], ...]
    os_name: str
    api_level: int
    display: Display
    hardware: Hardware
    eligible: bool
    ineligible_reason: str
    budget: str
    region: str = "US"
    timezone: str = "America/Los_Angeles"
    extra: tuple[tuple[str, str], ...] = field(default=())
    app: str = "mayday"  # the app profile (device_profiles/apps/<app>.yaml) that applies by default

    @property
    def props(self) -> dict[str, str]:
        """getprop values the model reports (what a twin of it answers)."""
        return dict(self.properties)

    @property
    def model(self) -> str:
        return self.props["ro.product.model"]

    def matches(self, getprops: dict[str, str]) -> bool:
        """True when every matcher accepts the device's getprop value (glob patterns)."""
        for key, patterns in self.match:
            value = getprops.get(key)
            if value is None or not any(fnmatch.fnmatchcase(value, p) for p in patterns):
                return False
        return True


REGIONS = ("US", "UK", "DE")  # the support regions the service knows (opening hours per region)


def valid_timezone(name: str) -> bool:
    """Whether `name` is an IANA time zone known to zoneinfo (e.g. Europe/Berlin)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not name or name.startswith(("/", ".")) or ".." in name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def load_profile(name_or_path: str | Path, profiles_dir: Path | None = None) -> DeviceProfile:
    """Load one profile by name (file stem in profiles_dir) or by path.

    Raises:
        ProfileError: unknown name, unreadable file or invalid content (names file and key).
    """
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        directory = Path(profiles_dir or DEFAULT_PROFILES_DIR)
        path = directory / f"{name_or_path}.yaml"
        if not path.is_file():
            known = ", ".join(
                sorted(p.stem for p in directory.glob("*.yaml") if p.stem != "budgets")
            )
            raise ProfileError(
                str(path),
                "name",
                f"unknown profile {str(name_or_path)!r}; known: {known or 'none'}",
            )
    return _parse(path, read_yaml(path))


def load_profiles(profiles_dir: Path | None = None) -> dict[str, DeviceProfile]:
    """All profiles of a directory (budgets.yaml is not a profile)."""
    directory = Path(profiles_dir or DEFAULT_PROFILES_DIR)
    if not directory.is_dir():
        raise ProfileError(str(directory), "-", "profiles directory does not exist")
    out = {}
    for path in sorted(directory.glob("*.yaml")):
        if path.stem == "budgets":
            continue
        profile = _parse(path, read_yaml(path))
        out[profile.name] = profile
    return out


def _parse(path: Path, data: object) -> DeviceProfile:  # noqa: C901 -- validation: one clear error per malformed key
    f = Fields(path, data)
    name = f.get("name", str)
    if name != path.stem:
        raise f.error("name", f"must equal the file name {path.stem!r}, got {name!r}")
    match = f.sub("match")
    matchers = []
    for key in match.data:
        value = match.get(key, (str, list, int))
        patterns = value if isinstance(value, list) else [value]
        if not patterns or not all(isinstance(p, (str, int)) for p in patterns):
            raise match.error(key, "expected a string or a list of strings")
        matchers.append((str(key), tuple(str(p) for p in patterns)))
    match.finish()
    if not matchers:
        raise f.error("match", "needs at least one getprop matcher")
    props_f = f.sub("properties")
    props = []
    for key in props_f.data:
        value = props_f.get(key, (str, int, float))
        props.append((str(key), str(value)))
    props_f.finish()
    propd = dict(props)
    for required in (
        "ro.product.model",
        "ro.product.name",
        "ro.product.device",
        "ro.build.version.sdk",
    ):
        if required not in propd:
            raise props_f.error(required, "missing required property")
    for key in ("ro.product.model", "ro.product.name", "ro.product.device"):
        if any(c in propd[key] for c in _BANNER_FORBIDDEN):
            raise props_f.error(
                key, "must not contain ':', ';' or '=' (it goes into the adb banner)"
            )
    api = f.get("api_level", int, min_value=_MIN_API, max_value=_MAX_API)
    if propd["ro.build.version.sdk"] != str(api):
        raise props_f.error(
            "ro.build.version.sdk",
            f"{propd['ro.build.version.sdk']!r} disagrees with api_level {api}",
        )
    disp = f.sub("display")
    display = Display(
        width=disp.get("width", int, min_value=120, max_value=8192),
        height=disp.get("height", int, min_value=120, max_value=8192),
        density=disp.get("density", int, min_value=80, max_value=800),
    )
    disp.finish()
    hw = f.sub("hardware")
    hardware = Hardware(
        microphone=hw.get("microphone", bool),
        front_camera=hw.get("front_camera", bool),
        back_camera=hw.get("back_camera", bool),
        wifi=hw.get("wifi", bool),
    )
    hw.finish()
    support = f.sub("support")
    eligible = support.get("eligible", bool)
    reason = support.get("ineligible_reason", str, "")
    if not eligible and not reason:
        raise support.error("ineligible_reason", "required when eligible is false")
    budget = support.get("budget", str, "default")
    region = support.get("region", str, "US")
    if region not in REGIONS:
        raise support.error("region", f"unknown region {region!r}; known: {', '.join(REGIONS)}")
    timezone = support.get("timezone", str, "America/Los_Angeles")
    if not valid_timezone(timezone):
        raise support.error("timezone", f"not an IANA time zone: {timezone!r}")
    support.finish()
    extra_f = f.sub("extra", {})
    extra = tuple(
        (str(k), str(extra_f.get(k, (str, int, float, bool)))) for k in list(extra_f.data)
    )
    extra_f.finish()
    profile = DeviceProfile(
        name=name,
        file=str(path),
        description=f.get("description", str, ""),
        match=tuple(matchers),
        properties=tuple(props),
        os_name=f.get("os", str),
        api_level=api,
        display=display,
        hardware=hardware,
        eligible=eligible,
        ineligible_reason=reason,
        budget=budget,
        region=region,
        timezone=timezone,
        extra=extra,
        app=f.get("app", str, "mayday"),
    )
    f.finish()
    if not profile.matches(propd):
        raise ProfileError(
            str(path), "match", "the profile's own properties do not satisfy its matchers"
        )
    return profile


class AmbiguousProfileError(ProfileError):
    """A device matches more than one profile: their matchers overlap."""

    def __init__(self, profiles: Iterable[DeviceProfile]):
        self.profiles = tuple(profiles)
        names = " and ".join(f"{p.name!r}" for p in self.profiles)
        super().__init__(
            ", ".join(p.file for p in self.profiles),
            "match",
            f"the device matches profiles {names}; make their matchers exclusive",
        )


def match_profile(
    getprops: Mapping[str, str],
    profiles: Mapping[str, DeviceProfile] | Iterable[DeviceProfile],
) -> DeviceProfile | None:
    """The one profile whose matchers accept the device's properties, or None.

    Args:
        getprops: the device's properties (parse_getprop of `getprop`).
        profiles: load_profiles() (a name -> profile mapping) or any iterable of profiles.

    Raises:
        AmbiguousProfileError: more than one profile matches (names them all).
    """
    candidates = profiles.values() if isinstance(profiles, Mapping) else profiles
    props = dict(getprops)
    hits = [p for p in candidates if p.matches(props)]
    if len(hits) > 1:
        raise AmbiguousProfileError(hits)
    return hits[0] if hits else None
