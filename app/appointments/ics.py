"""An appointment as an iCalendar file (RFC 5545), written by the icalendar library."""

from __future__ import annotations

from flask import current_app, request
from flask_babel import gettext as _
from icalendar import Calendar, Event

from app import clock
from app.appointments.models import Appointment, AppointmentStatus, Mode


def calendar_for(appointment: Appointment) -> bytes:
    """One VEVENT with a stable UID, so importing it again after a change updates the same entry.
    Only what the patient would write in their own calendar: what, where, when."""
    calendar = Calendar()
    calendar.add("prodid", "-//Varde//Timer//NO")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = Event()
    host = request.host if request else current_app.config.get("SERVER_NAME") or "varde"
    event.add("uid", f"appointment-{appointment.id}@{host}")
    event.add("dtstamp", clock.utcnow())
    event.add("dtstart", appointment.start)
    event.add("dtend", appointment.end)
    event.add("summary", appointment.title)
    # A video or phone time has no place to go to: the calendar must not send anyone to the
    # office's street address (the unit's location is kept on it for the phone number).
    where = []
    if appointment.mode is Mode.VIDEO:
        where.append(_("Videotime – du får lenke fra %(place)s", place=appointment.organisation.name))
    elif appointment.mode is Mode.PHONE:
        where.append(_("Telefontime – %(place)s ringer deg", place=appointment.organisation.name))
    elif appointment.location is not None:
        where.append(appointment.location.name)
        if appointment.location.one_line:
            where.append(appointment.location.one_line)
    if where:
        event.add("location", ", ".join(where))
    how = {Mode.VIDEO: _("Videotime"), Mode.PHONE: _("Telefontime")}.get(appointment.mode)
    lines = [how, appointment.organisation.name] if how else [appointment.organisation.name]
    event.add("description", "\n".join([*lines, f"{request.url_root.rstrip('/')}/timer/{appointment.id}"]))
    event.add("sequence", int(appointment.updated_at.timestamp()) % 2_000_000_000)
    if appointment.status is AppointmentStatus.CANCELLED:
        event.add("status", "CANCELLED")
    else:
        event.add("status", "CONFIRMED")
    calendar.add_component(event)
    return calendar.to_ical()
