"""The run's devices (moved: finding and leasing devices is the farm's job, harness.farm.devices)
and the run's configuration check (validate_run: every option and file, before any device).
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import ProfileError
from harness.farm.devices import MAX_TWINS, PORT_RANGE, DeviceSpec, HilRun, parse_twin_option
from harness.profiles import load_profile, load_profiles

__all__ = ["MAX_TWINS", "DeviceSpec", "HilRun", "parse_twin_option", "validate_run"]


def validate_run(
    options, profiles_dir: Path | None, budget_override: str | None = None, media_slots=None
) -> None:
    """Check every piece of the run's configuration at start-up, before any device is touched:
    device profiles, budgets (and each profile's budget), --budget, --profile, --twin (known
    profile, count 1..MAX_TWINS), --network (a known, valid profile), --adb-port, --media-slots.

    Args:
        options: pytest's config.option (the mayday-hil options).
        profiles_dir: the profiles directory (None: the stock one).
        budget_override: --budget or the hil_budget ini value.
        media_slots: --media-slots or the hil_media_slots ini value.

    Raises:
        ProfileError: one line naming the file or option and the key at fault.
    """
    from harness.network.profiles import load_network_profile
    from harness.profiles import DEFAULT_PROFILES_DIR, load_budgets

    directory = Path(profiles_dir or DEFAULT_PROFILES_DIR)
    if profiles_dir is not None and not directory.is_dir():
        raise ProfileError("--profiles-dir", str(profiles_dir), "not a directory")
    profiles = load_profiles(profiles_dir)
    budgets = load_budgets(directory / "budgets.yaml")
    for prof in profiles.values():
        if prof.budget not in budgets:
            raise ProfileError(
                prof.file,
                "support.budget",
                f"unknown budget {prof.budget!r}; {directory / 'budgets.yaml'} has:"
                f" {', '.join(sorted(budgets))}",
            )
    if budget_override and budget_override not in budgets:
        raise ProfileError(
            "--budget", budget_override, f"unknown budget; known: {', '.join(sorted(budgets))}"
        )
    if getattr(options, "profile", None) and options.profile not in profiles:
        raise ProfileError(
            "--profile", options.profile, f"unknown profile; known: {', '.join(sorted(profiles))}"
        )
    for spec in getattr(options, "twin", None) or []:
        name, _ = parse_twin_option(spec)
        try:
            load_profile(name, profiles_dir)
        except ProfileError as e:
            raise ProfileError("--twin", spec, e.msg) from None
    network = getattr(options, "network", None)
    if network:
        try:
            load_network_profile(network)
        except ProfileError as e:
            raise ProfileError(f"--network {network}", e.key, f"{e.msg} (in {e.file})") from None
    adb_port = getattr(options, "adb_port", None)
    if adb_port is not None and adb_port not in PORT_RANGE:
        raise ProfileError("--adb-port", str(adb_port), "a port is 1..65535")
    if media_slots not in (None, ""):
        try:
            slots = int(media_slots)
        except (TypeError, ValueError):
            slots = 0
        if slots < 1:
            raise ProfileError("--media-slots", str(media_slots), "must be a whole number >= 1")
