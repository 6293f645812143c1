"""Releases: one version, a CHANGELOG section for it, and a tag per release for copier update."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import tomllib

from generator import __version__
from tests.conftest import ROOT

SECTIONS = re.findall(
    r"^## (\d+\.\d+\.\d+) \(\d{4}-\d{2}-\d{2}\)$", (ROOT / "CHANGELOG.md").read_text(), re.M
)


def test_the_version_is_written_once_and_installed_as_such() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    dynamic = project["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "generator.__version__"}
    assert importlib.metadata.version("shipforge") == __version__


def test_the_current_version_and_every_tag_have_a_changelog_section() -> None:
    assert SECTIONS and SECTIONS[0] == __version__, "the newest section is the current version"
    assert sorted(SECTIONS, key=lambda v: tuple(map(int, v.split("."))), reverse=True) == SECTIONS
    tags = subprocess.run(
        ["git", "-C", str(ROOT), "tag", "--list", "v*"], capture_output=True, text=True, check=False
    ).stdout.split()
    # A clone without tags (a shallow CI checkout) checks the sections alone.
    assert {t.removeprefix("v") for t in tags} <= set(SECTIONS)
