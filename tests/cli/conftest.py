"""CLI tests read rich's output: give it a wide, fixed width so tables never wrap differently per terminal."""

from __future__ import annotations

import pytest
from rich.console import Console

import archlab.cli


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    monkeypatch.setattr(archlab.cli, "console", Console(width=200))
    monkeypatch.setattr(archlab.cli, "errors", Console(stderr=True, soft_wrap=True, width=200))
