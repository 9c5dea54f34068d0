"""`flask fhir import PATH`, `flask fhir client create`: the operator's side of the ingest."""

from __future__ import annotations

import time
from pathlib import Path

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app.db import db
from app.fhir.clients import create_client
from app.fhir.ingest import import_bundle
from app.fhir.validate import BundleRefused
from app.people.models import Organisation
from app.record.models import FhirClient

fhir_cli = AppGroup("fhir", help="FHIR R4 ingest.")


@fhir_cli.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--source", "source_system", required=True, help="The source system (see `flask fhir client list`).")
def import_command(path: Path, source_system: str) -> None:
    """Import a Bundle file, or every *.json Bundle in a folder (each file all or nothing)."""
    client = db.session.scalar(select(FhirClient).where(FhirClient.source_system == source_system))
    if client is None:
        raise click.ClickException(f"Ukjent kildesystem {source_system!r}. Se `flask fhir client list`.")
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    failed = 0
    for file in files:
        started = time.perf_counter()
        try:
            result = import_bundle(file.read_bytes(), client)
        except BundleRefused as refused:
            failed += 1
            click.echo(f"{file.name}: AVVIST ({refused.status}), ingenting lagret", err=True)
            for issue in refused.issues:
                click.echo(f"  - {issue.diagnostics}", err=True)
            continue
        seconds = time.perf_counter() - started
        click.echo(f"{file.name}: {result.issues()[0].diagnostics} ({result.resources / seconds:.0f} ressurser/s)")
        for issue in result.issues()[1:]:
            click.echo(f"  - {issue.diagnostics}")
    if failed:
        raise click.ClickException(f"{failed} av {len(files)} filer ble avvist.")


client_cli = AppGroup("client", help="Source systems allowed to send bundles.")


@client_cli.command("create")
@click.option("--organisation", required=True, help="The organisation's name or organisation number.")
@click.option("--source", "source_system", required=True, help="A stable name for the source system.")
@click.option("--name", required=True, help="A readable name, e.g. 'DIPS Arena, St. Olavs hospital'.")
@click.option(
    "--population-register",
    is_flag=True,
    help="The population register's feed: the only source that may change parental responsibility.",
)
def client_create(organisation: str, source_system: str, name: str, population_register: bool) -> None:
    """Create a source system and print its token (shown only now)."""
    org = db.session.scalar(
        select(Organisation).where((Organisation.name == organisation) | (Organisation.org_number == organisation))
    )
    if org is None:
        raise click.ClickException(f"Fant ingen organisasjon {organisation!r}.")
    if db.session.scalar(select(FhirClient.id).where(FhirClient.source_system == source_system)):
        raise click.ClickException(f"Kildesystemet {source_system!r} finnes allerede.")
    client, token = create_client(org, name, source_system)
    client.population_register = population_register
    db.session.commit()
    click.echo(f"Token for {name} ({org.name}); vises bare nå:\n{token}")


@client_cli.command("list")
def client_list() -> None:
    for c in db.session.scalars(select(FhirClient).order_by(FhirClient.id)):
        state = "aktiv" if c.active else "deaktivert"
        click.echo(f"{c.source_system:<24} {c.name} – {c.organisation.name} ({state})")


fhir_cli.add_command(client_cli)
