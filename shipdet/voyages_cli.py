"""`shipdet voyages`."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def voyages() -> None:
        """placeholder"""
