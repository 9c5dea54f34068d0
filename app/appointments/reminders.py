"""Reminders before each appointment (APPOINTMENT_REMINDER_HOURS, e.g. 72 and 24 hours before),
written as events by the worker — each once (``appointment_reminder`` rows), the nearest one only
when the worker was away, and none for a time booked inside the reminder's window (the patient
just booked it)."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select

from app.appointments.models import Appointment, AppointmentStatus, ReminderSent
from app.db import db
from app.notify import events


def write_due(now: datetime) -> int:
    """Write the reminders that are due now; returns how many. The caller commits."""
    hours = sorted({h for h in current_app.config["APPOINTMENT_REMINDER_HOURS"] if h > 0})
    if not hours:
        return 0
    sent = 0
    due = db.session.scalars(
        select(Appointment)
        .where(
            Appointment.status == AppointmentStatus.BOOKED,
            Appointment.start > now,
            Appointment.start <= now + timedelta(hours=hours[-1]),
        )
        .order_by(Appointment.start, Appointment.id)
    ).all()
    if not due:
        return 0
    done: dict[int, set[int]] = {}
    for appointment_id, before in db.session.execute(
        select(ReminderSent.appointment_id, ReminderSent.hours_before).where(
            ReminderSent.appointment_id.in_([a.id for a in due])
        )
    ):
        done.setdefault(appointment_id, set()).add(before)
    for appointment in due:
        left = appointment.start - now
        # The nearest reminder point already passed: that one (not every earlier one too).
        point = min(h for h in hours if left <= timedelta(hours=h))
        if any(h <= point for h in done.get(appointment.id, ())):
            continue
        db.session.add(ReminderSent(appointment_id=appointment.id, hours_before=point, created_at=now))
        if appointment.created_at > appointment.start - timedelta(hours=point):
            continue  # booked inside this window: recorded, not announced
        events.emit(
            appointment.person_id,
            "appointment_reminder",
            object_type="appointment",
            object_id=appointment.id,
            url=f"/timer/{appointment.id}",
            expires_at=appointment.start,
        )
        sent += 1
    return sent
