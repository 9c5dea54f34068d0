"""Command-line tasks: `flask demo`, `flask sessions prune`, `flask people age-notices`, `flask fhir …`,
`flask record …`, `flask push …`."""

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

    people_cli = AppGroup("people", help="People and the access that changes with age.")

    @people_cli.command("age-notices")
    def age_notices() -> None:
        """Write today's notices before a child turns 12 or 16 (the worker does it every morning)."""
        from app.people.notices import write_age_notices

        click.echo(f"{write_age_notices()} age notices written")

    app.cli.add_command(people_cli)
