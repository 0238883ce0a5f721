"""The xdist groups of tests/conftest.py (README: `-n 2 --dist loadgroup`): every prefix names
tests that exist, and each collected test under a prefix carries its group's mark, so a renamed
file or directory cannot silently let two live media sessions run side by side."""

from __future__ import annotations

import pytest


def _conftest(config: pytest.Config):
    """tests/conftest.py, as pytest loaded it (a plugin holding XDIST_GROUPS)."""
    (mod,) = [p for p in config.pluginmanager.get_plugins() if hasattr(p, "XDIST_GROUPS")]
    return mod


def test_every_group_prefix_names_test_files(request):
    root = request.config.rootpath
    for group, prefixes in _conftest(request.config).XDIST_GROUPS.items():
        for prefix in prefixes:
            path = root / prefix
            files = sorted(path.glob("test_*.py")) if path.is_dir() else [path]
            assert files and all(f.is_file() for f in files), (group, prefix)


def test_a_test_gets_the_group_of_its_prefix_and_no_other(request):
    of = _conftest(request.config).xdist_group_of
    assert of("tests/media/test_share.py::test_x[a]") == "host-cpu"
    assert of("tests/twin/test_peer_adbutils.py::test_y") == "adbutils-peer"
    assert of("tests/vision/test_onset.py::test_o") == "host-cpu"
    assert of("tests/twin/test_adb_wire.py::test_z") is None
    assert of("tests/mediax/test_a.py::test_b") is None  # a directory, not a name prefix


def test_collected_tests_carry_their_group_mark(request):
    of = _conftest(request.config).xdist_group_of
    for item in request.session.items:
        group = of(item.nodeid)
        marks = [m.args[0] for m in item.iter_markers("xdist_group")]
        assert marks == ([group] if group else []), (item.nodeid, marks)
