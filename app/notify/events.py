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
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context
from sqlalchemy import event as sa_event
from sqlalchemy import select
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

LOCAL_TZ = ZoneInfo("Europe/Oslo")
_WAKE = "varde_push_pending"


def emit(
    person_id: int,
    kind: str,
    *,
    object_type: str | None = None,
    object_id: int | None = None,
    url: str | None = None,
    data: dict[str, Any] | None = None,
    expires_at: datetime | None = None,
) -> Event:
    from app.access.policy import notification_recipients

    now = clock.utcnow()
    spec = kind_of(kind)
    event = Event(
        person_id=person_id,
        kind=kind,
        object_type=object_type,
        object_id=object_id,
        url=url,
        data=data or {},
        delivered_at=now,
    )
    db.session.add(event)
    recipients = notification_recipients(person_id)
    if not recipients:
        return event
    account_ids = [account_id for account_id, _own in recipients]
    settings = {
        s.account_id: s
        for s in db.session.scalars(
            select(NotificationSettings).where(NotificationSettings.account_id.in_(account_ids))
        )
    }
    devices: dict[int, list[PushSubscription]] = {}
    for sub in db.session.scalars(
        select(PushSubscription).where(PushSubscription.account_id.in_(account_ids)).order_by(PushSubscription.id)
    ):
        devices.setdefault(sub.account_id, []).append(sub)
    for account_id in account_ids:
        notification = Notification(
            token=secrets.token_urlsafe(16),
            account_id=account_id,
            subject_person_id=person_id,
            kind=kind,
            object_type=object_type,
            object_id=object_id,
            url=url,
            created_at=now,
        )
        event.notifications.append(notification)
        prefs = settings.get(account_id) or default_settings(account_id)
        if not getattr(prefs, spec.category.value) or not devices.get(account_id):
            continue
        send_at = next_allowed(now, prefs, breaks_through=spec.breaks_quiet and prefs.offers_break_quiet)
        if expires_at is not None and send_at >= expires_at:
            continue  # an offer that would arrive after it expired is not worth a push
        for sub in devices[account_id]:
            notification.deliveries.append(
                PushDelivery(
                    subscription_id=sub.id,
                    state=DeliveryState.PENDING,
                    next_attempt_at=send_at,
                    expires_at=expires_at,
                    created_at=now,
                )
            )
        db.session.info[_WAKE] = True
    return event


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
    local = now.astimezone(LOCAL_TZ)
    if not in_quiet_hours(local.time(), prefs.quiet_start, prefs.quiet_end):
        return now
    end = local.replace(hour=prefs.quiet_end.hour, minute=prefs.quiet_end.minute, second=0, microsecond=0)
    if end <= local:
        end += timedelta(days=1)
    # Build the wall time again in the zone, so a DST change in the night lands on the right hour.
    end = datetime.combine(end.date(), prefs.quiet_end, tzinfo=LOCAL_TZ)
    return end.astimezone(now.tzinfo)


def _wake_worker(session: Session) -> None:
    if not session.info.pop(_WAKE, False) or not has_app_context():
        return
    try:
        if not current_app.config.get("PUSH_WAKE_WORKER", True):
            return
        from app.tasks import deliver_pushes

        deliver_pushes()  # enqueues; the worker's periodic sweep catches anything this misses
    except Exception:
        current_app.logger.warning("could not wake the push worker; the next sweep sends", exc_info=True)


def _forget(session: Session) -> None:
    session.info.pop(_WAKE, None)


sa_event.listen(Session, "after_commit", _wake_worker)
sa_event.listen(Session, "after_rollback", _forget)
