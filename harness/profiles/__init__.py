"""Device profiles, budgets: YAML files turned into frozen, validated objects."""

from harness.profiles.budget import Budget, Limit, load_budgets
from harness.profiles.device import (
    DEFAULT_PROFILES_DIR,
    REGIONS,
    DeviceProfile,
    Display,
    Hardware,
    load_profile,
    load_profiles,
    valid_timezone,
)

__all__ = [
    "DEFAULT_PROFILES_DIR",
    "REGIONS",
    "Budget",
    "DeviceProfile",
    "Display",
    "Hardware",
    "Limit",
    "load_budgets",
    "load_profile",
    "load_profiles",
    "valid_timezone",
]
