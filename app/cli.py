"""Command-line tasks: `flask demo`, `flask sessions prune`, `flask fhir …`, `flask record …`, `flask push …`."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import AppGroup


def register_cli(app: Flask) -> None:
    from app.demo.builder import demo_command
    from app.fhir.cli import fhir_cli
    from app.notify.cli import push_cli
    from app.record.cli import record_cli

    app.cli.add_command(demo_command)
    app.cli.add_command(fhir_cli)
    app.cli.add_command(record_cli)
    app.cli.add_command(push_cli)

    sessions_cli = AppGroup("sessions", help="Server-side sessions.")

    @sessions_cli.command("prune")
    def prune() -> None:
        """Delete sessions past their idle timeout."""
        from app.auth.sessions import prune_expired

        click.echo(f"{prune_expired(current_app)} sessions deleted")

    app.cli.add_command(sessions_cli)
