"""Device profiles, app profiles, budgets: YAML files turned into frozen, validated objects."""

from harness.profiles.app import AppProfile, load_app_profile, load_app_profiles
from harness.profiles.budget import Budget, Limit, load_budgets
from harness.profiles.device import (
    DEFAULT_PROFILES_DIR,
    REGIONS,
    AmbiguousProfileError,
    DeviceProfile,
    Display,
    Hardware,
    load_profile,
    load_profiles,
    match_profile,
    valid_timezone,
)

__all__ = [
    "AppProfile",
    "DEFAULT_PROFILES_DIR",
    "AmbiguousProfileError",
    "REGIONS",
    "Budget",
    "DeviceProfile",
    "Display",
    "Hardware",
    "Limit",
    "load_app_profile",
    "load_app_profiles",
    "load_budgets",
    "load_profile",
    "load_profiles",
    "match_profile",
    "valid_timezone",
]
