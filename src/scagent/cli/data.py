"""`scagent inspect`, `scagent simulate` and `scagent demo`."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the data commands to ``app``."""
