"""`shipdet rescore`."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def rescore() -> None:
        """placeholder"""
