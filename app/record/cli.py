"""`flask record rules|rule-add|rule-remove|release-due`: release rules for IT staff."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from app.db import db
from app.people.models import Organisation
from app.record.models import ItemKind, ReleasePolicy, ReleaseRule
from app.record.release import release_due

record_cli = AppGroup("record", help="The health record: release rules and timed release.")


@record_cli.command("rules")
def rules() -> None:
    """List the release rules, most specific first."""
    found = sorted(db.session.scalars(select(ReleaseRule)), key=lambda r: -r.specificity)
    if not found:
        click.echo("Ingen regler: alt frigis straks det er endelig.")
    for r in found:
        where = r.organisation.name if r.organisation else "alle"
        days = f" {r.hold_days} d" if r.hold_days else ""
        click.echo(
            f"#{r.id:<4} {r.policy.value}{days:<6} org={where} kind={r.kind or '*'} "
            f"category={r.category or '*'} code={r.code or '*'}  {r.description or ''}"
        )


@record_cli.command("rule-add")
@click.option("--policy", type=click.Choice([p.value for p in ReleasePolicy]), required=True)
@click.option("--kind", type=click.Choice([k.value for k in ItemKind]))
@click.option("--category")
@click.option("--code")
@click.option("--organisation", help="Limit the rule to this organisation (name).")
@click.option("--days", type=click.IntRange(1, 365), help="Hold days for policy 'held'.")
@click.option("--description")
def rule_add(policy, kind, category, code, organisation, days, description) -> None:  # type: ignore[no-untyped-def]
    """Add a release rule (applies to items that arrive from now on)."""
    org = None
    if organisation:
        org = db.session.scalar(select(Organisation).where(Organisation.name == organisation))
        if org is None:
            raise click.ClickException(f"Fant ingen organisasjon {organisation!r}.")
    rule = ReleaseRule(
        policy=ReleasePolicy(policy),
        kind=ItemKind(kind) if kind else None,
        category=category,
        code=code,
        organisation=org,
        hold_days=days,
        description=description,
    )
    db.session.add(rule)
    db.session.commit()
    click.echo(f"Regel #{rule.id} lagt til.")


@record_cli.command("rule-remove")
@click.argument("rule_id", type=int)
def rule_remove(rule_id: int) -> None:
    rule = db.session.get(ReleaseRule, rule_id)
    if rule is None:
        raise click.ClickException(f"Fant ingen regel #{rule_id}.")
    db.session.delete(rule)
    db.session.commit()
    click.echo(f"Regel #{rule_id} fjernet.")


@record_cli.command("release-due")
def release_due_command() -> None:
    """Release held items whose time has come now (the worker does this every minute)."""
    click.echo(f"{release_due()} frigitt.")
