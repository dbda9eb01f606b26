"""Release hygiene: the LICENSE file is the license pyproject.toml declares, the CHANGELOG knows
the version, and the version is the package's."""

from __future__ import annotations

import tomllib
from pathlib import Path

from datafast import __version__

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

# SPDX id → the title and version line the license's text opens with.
TITLES = {"AGPL-3.0-only": ("GNU AFFERO GENERAL PUBLIC LICENSE", "Version 3, 19 November 2007")}


def test_the_license_file_is_the_license_pyproject_declares() -> None:
    title, version = TITLES[PROJECT["license"]]
    lines = [line.strip() for line in (ROOT / "LICENSE").read_text().splitlines() if line.strip()]
    assert lines[:2] == [title, version]
    assert "Affero" in (ROOT / "LICENSE").read_text()  # not the plain GPL


def test_the_changelog_has_the_released_version_and_an_unreleased_section() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert PROJECT["version"] == __version__
    assert f"## [{__version__}]" in changelog
    assert "## [Unreleased]" in changelog


def test_embedded_mode_without_chdb_says_how_to_install_it() -> None:
    """The scaled image leaves chDB out (`EXTRAS=`): embedded mode there stops with what to do."""
    import subprocess
    import sys

    script = (
        "import sys; sys.modules['chdb'] = None\n"  # as if not installed
        "from datafast.lib.eventstore import ChdbEventStore\n"
        "ChdbEventStore('/nonexistent', 'datafast')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode != 0
    assert "pip install 'datafast[embedded]'" in done.stderr
    assert "CLICKHOUSE_URL" in done.stderr


def test_the_image_installs_the_embedded_extra_unless_told_not_to() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "ARG EXTRAS=embedded" in dockerfile
    assert '${EXTRAS:+--extra "$EXTRAS"}' in dockerfile
    assert "chdb" not in " ".join(PROJECT["dependencies"])
    assert any(d.startswith("chdb") for d in PROJECT["optional-dependencies"]["embedded"])
