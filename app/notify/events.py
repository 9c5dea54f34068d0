"""The one seam between a change and its delivery.

``emit`` adds, to the current transaction: the event row, a notification for every account that
should hear of it (decided by the access policy: the patient, a parent of a young child), and a
push delivery for each of their devices that wants this kind — deferred past quiet hours when it
is not urgent. Whoever changes the record calls it before committing, so the change and its
notifications commit together or not at all. Nothing is sent from here: after commit the worker
is woken, and it sends.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import delete, select
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from app import clock
from app.db import db
from app.notify.kinds import kind_of
from app.notify.models import (
    DeliveryState,
    Event,
    Notification,
    NotificationSettings,
    PushDelivery,
    PushSubscription,
)

_WAKE = "varde_push_pending"


@dataclass(frozen=True)
class Change:
    """Something a person should hear of: what kind, about which object, where a tap leads."""

    person_id: int
    kind: str
    object_type: str | None = None
    object_id: int | None = None
    url: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    expires_at: datetime | None = None
    # False for an item a clinician hid from guardians: parents are not told it exists.
    guardians_may_know: bool = True
    # The account whose own action this was (a patient booking a time): its notification is in the
    # list already read, and not pushed; others who should hear of it (a child's other parent) are.
    actor_account_id: int | None = None


def emit(
    person_id: int,
    kind: str,
    *,
    object_type: str | None = None,
    object_id: int | None = None,
    url: str | None = None,
    data: dict[str, Any] | None = None,
    expires_at: datetime | None = None,
    guardians_may_know: bool = True,
    actor_account_id: int | None = None,
) -> Event:
    return emit_many(
        [
            Change(
                person_id,
                kind,
                object_type,
                object_id,
                url,
                data or {},
                expires_at,
                guardians_may_know,
                actor_account_id,
            )
        ]
    )[0]


def emit_many(changes: list[Change]) -> list[Event]:
    """``emit`` for a batch (a timed release of hundreds of items): a handful of queries for the
    whole batch, and the inserts batched by the ORM."""
    from app.access.policy import notification_recipients

    for change in changes:
        if change.url is not None and not (change.url.startswith("/") and not change.url.startswith("//")):
            raise ValueError("an event's url is a path inside Varde")
    now = clock.utcnow()
    recipients = notification_recipients(
        (c.person_id, c.kind, c.object_type, c.object_id, c.guardians_may_know) for c in changes
    )
    account_ids = sorted({account_id for rows in recipients for account_id, _own in rows})
    settings: dict[int, NotificationSettings] = {}
    devices: dict[int, list[int]] = {}
    if account_ids:
        settings = {
            s.account_id: s
            for s in db.session.scalars(
                select(NotificationSettings).where(NotificationSettings.account_id.in_(account_ids))
            )
        }
        for sub_id, account_id in db.session.execute(
            select(PushSubscription.id, PushSubscription.account_id)
            .where(PushSubscription.account_id.in_(account_ids))
            .order_by(PushSubscription.id)
        ):
            devices.setdefault(account_id, []).append(sub_id)
    out: list[Event] = []
    pushes = False
    for change, change_recipients in zip(changes, recipients, strict=True):
        spec = kind_of(change.kind)
        event = Event(
            person_id=change.person_id,
            kind=change.kind,
            object_type=change.object_type,
            object_id=change.object_id,
            url=change.url,
            data=change.data,
            created_at=now,
            delivered_at=now,
        )
        for account_id, _own in change_recipients:
            notification = Notification(
                token=secrets.token_urlsafe(16),
                account_id=account_id,
                subject_person_id=change.person_id,
                kind=change.kind,
                object_type=change.object_type,
                object_id=change.object_id,
                url=change.url,
                created_at=now,
            )
            event.notifications.append(notification)
            if account_id == change.actor_account_id:
                notification.read_at = now
                continue
            prefs = settings.get(account_id) or default_settings(account_id)
            if not getattr(prefs, spec.category.value) or not devices.get(account_id):
                continue
            send_at = next_allowed(now, prefs, breaks_through=spec.breaks_quiet and prefs.offers_break_quiet)
            if change.expires_at is not None and send_at >= change.expires_at:
                continue  # an offer that would arrive after it expired is not worth a push
            for sub_id in devices[account_id]:
                notification.deliveries.append(
                    PushDelivery(
                        subscription_id=sub_id,
                        state=DeliveryState.PENDING,
                        next_attempt_at=send_at,
                        expires_at=change.expires_at,
                        created_at=now,
                    )
                )
                pushes = True
        out.append(event)
    db.session.add_all(out)
    if pushes:
        db.session.info[_WAKE] = True
    return out


def withdraw(object_type: str, object_id: int, *, guardians_only: bool) -> None:
    """An item was withheld after it was announced: its notifications go (only the parents' when it
    was hidden from guardians), and pushes not yet sent are not sent."""
    from app.auth.models import User

    query = select(Notification.id).where(Notification.object_type == object_type, Notification.object_id == object_id)
    if guardians_only:
        own = select(User.id).where(User.person_id == Notification.subject_person_id)
        query = query.where(Notification.account_id.not_in(own.scalar_subquery()))
    ids = list(db.session.scalars(query))
    if not ids:
        return
    # Their pushes not yet sent go with them (push_delivery cascades on its notification).
    db.session.execute(
        delete(Notification).where(Notification.id.in_(ids)).execution_options(synchronize_session=False)
    )


def stop_pushes(object_type: str, object_ids: list[int]) -> None:
    """Pushes about these objects that are not sent yet are not sent (an offer someone else took):
    the notifications stay in the centre, where opening one shows what became of it."""
    if not object_ids:
        return
    from app.notify.delivery import end_waiting

    notifications = select(Notification.id).where(
        Notification.object_type == object_type, Notification.object_id.in_(object_ids)
    )
    end_waiting(PushDelivery.notification_id.in_(notifications.scalar_subquery()))


def default_settings(account_id: int) -> NotificationSettings:
    """The defaults for an account that never changed them (not added to the session)."""
    return NotificationSettings(
        account_id=account_id,
        record=True,
        messages=True,
        reminders=True,
        offers=True,
        quiet_enabled=True,
        quiet_start=time(22, 0),
        quiet_end=time(7, 0),
        offers_break_quiet=False,
    )


def in_quiet_hours(local: time, start: time, end: time) -> bool:
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end  # over midnight, e.g. 22:00–07:00


def next_allowed(now: datetime, prefs: NotificationSettings, *, breaks_through: bool = False) -> datetime:
    """``now``, or the end of the account's quiet hours (Norwegian time) if it is night for them."""
    if breaks_through or not prefs.quiet_enabled:
        return now
    local = now.astimezone(clock.NORWAY)
    if not in_quiet_hours(local.time(), prefs.quiet_start, prefs.quiet_end):
        return now
    end = local.replace(hour=prefs.quiet_end.hour, minute=prefs.quiet_end.minute, second=0, microsecond=0)
    if end <= local:
        end += timedelta(days=1)
    # Build the wall time again in the zone, so a DST change in the night lands on the right hour.
    end = datetime.combine(end.date(), prefs.quiet_end, tzinfo=clock.NORWAY)
    return end.astimezone(now.tzinfo)


def _wake_worker(session: Session) -> None:
    if not session.info.pop(_WAKE, False) or not has_app_context():
        return
    try:
        from app.tasks import deliver_pushes, huey

        if not current_app.config.get("PUSH_WAKE_WORKER", True) or huey.immediate:
            return  # immediate mode would send right here, inside the request

        deliver_pushes()  # enqueues; the worker's periodic sweep catches anything this misses
    except Exception:
        current_app.logger.warning("could not wake the push worker; the next sweep sends", exc_info=True)


def _forget(session: Session) -> None:
    session.info.pop(_WAKE, None)


sa_event.listen(Session, "after_commit", _wake_worker)
sa_event.listen(Session, "after_rollback", _forget)
