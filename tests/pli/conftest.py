from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import Pli


@pytest.fixture
def pli(tmp_path: Path, database_url: str) -> Pli:
    """A fresh data directory on each engine, initialised in demo mode."""
    home = tmp_path / "home"
    instance = Pli(home=home, database_url=database_url)
    instance.run("init", "--demo", "--domain", "pli.test")
    return instance
