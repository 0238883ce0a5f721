"""`--twins` expands to the default twin set with their lab instruments, whatever else is given."""

from __future__ import annotations

import pytest

from harness.plugin import DEFAULT_TWINS


@pytest.mark.parametrize(
    "extra",
    [(), ("--twin-lab",), ("-n", "1"), ("--twin-lab", "-n", "1")],
    ids=["alone", "with-twin-lab", "with-n", "with-twin-lab-and-n"],
)
def test_twins_starts_the_default_set_with_their_lab(pytester: pytest.Pytester, extra):
    config = pytester.parseconfig("--twins", *extra)
    try:
        assert list(config.option.twin) == list(DEFAULT_TWINS)
        assert config.option.twin_lab is True
        expected_n = 1 if "-n" in extra else len(DEFAULT_TWINS)
        assert config.option.numprocesses == expected_n
        assert config.option.dist == "loadgroup"
    finally:
        config._ensure_unconfigure()


def test_twins_expansion_is_idempotent(pytester: pytest.Pytester):
    """An xdist worker parses the controller's command line again: the twins stay three."""
    twins = [a for name in DEFAULT_TWINS for a in ("--twin", name)]
    config = pytester.parseconfig("--twins", *twins, "--twin-lab", "-n", "3")
    try:
        assert list(config.option.twin) == list(DEFAULT_TWINS)
        assert config.option.numprocesses == 3
    finally:
        config._ensure_unconfigure()
