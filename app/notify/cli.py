"""`flask push status | deliver | prune`: what the push worker has done, and doing it by hand."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import func, select

from app.db import db

push_cli = AppGroup("push", help="Web push delivery.")


@push_cli.command("status")
def status() -> None:
    """Deliveries by state, devices, and the last failures (statuses only, never content)."""
    from app.notify.models import DeliveryState, PushDelivery, PushSubscription

    counts = dict(db.session.execute(select(PushDelivery.state, func.count()).group_by(PushDelivery.state)).all())
    for state in DeliveryState:
        click.echo(f"{state.value:>8}  {counts.get(state, 0)}")
    click.echo(f" devices  {db.session.scalar(select(func.count(PushSubscription.id)))}")
    failed = db.session.execute(
        select(PushDelivery.id, PushDelivery.attempts, PushDelivery.last_status, PushDelivery.last_error)
        .where(PushDelivery.state == DeliveryState.FAILED)
        .order_by(PushDelivery.id.desc())
        .limit(10)
    ).all()
    for row in failed:
        click.echo(f"failed #{row.id}: {row.attempts} attempts, last status {row.last_status} {row.last_error or ''}")


@push_cli.command("deliver")
def deliver() -> None:
    """Send what is due now, in this process (the worker does this by itself)."""
    from app.notify.delivery import deliver_due

    click.echo(deliver_due())


@push_cli.command("prune")
def prune() -> None:
    """Forget devices not seen for a long time and old finished deliveries (the worker does this nightly)."""
    from app.notify.delivery import prune as prune_push

    click.echo(prune_push())
