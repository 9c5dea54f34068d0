"""Staff make schedules (with opening hours) and slots from a pattern. A pattern that would put a
slot outside the opening hours, in the past or on top of another slot is refused as a whole, with
the first such time named: nothing is half-made."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from flask_babel import gettext as _
from sqlalchemy import func, select

from app import clock
from app.appointments.formatting import when_text
from app.appointments.models import Mode, OpeningHours, Schedule, Slot, SlotState, VisitType
from app.appointments.services import Refused
from app.db import db
from app.people.models import CareUnit

MAX_SLOTS_AT_ONCE = 2000
# How far ahead times can be made: a clinic plans a year or two ahead, and a typo of a year
# (9999) must be told, not tried (the calendar ends there).
MAX_DAYS_AHEAD = 2 * 366
MAX_DAYS_AT_ONCE = 92


@dataclass
class ScheduleData:
    name: str
    practitioner: str | None
    location_id: int | None
    weekdays: list[int]
    opens: time
    closes: time


@dataclass
class Pattern:
    visit_type_id: int
    first: date
    last: date
    weekdays: list[int]
    start: time
    end: time
    minutes: int
    mode: Mode


def create_schedule(unit: CareUnit, data: ScheduleData) -> Schedule:
    schedule = Schedule(
        care_unit_id=unit.id,
        name=data.name.strip(),
        practitioner=(data.practitioner or "").strip() or None,
        location_id=data.location_id,
    )
    schedule.hours = [OpeningHours(weekday=d, opens=data.opens, closes=data.closes) for d in sorted(set(data.weekdays))]
    db.session.add(schedule)
    db.session.flush()
    return schedule


def _when(moment: datetime) -> str:
    return when_text(moment, year=False)


def make_slots(schedule: Schedule, pattern: Pattern, now: datetime) -> list[Slot]:
    visit_type = db.session.get(VisitType, pattern.visit_type_id)
    if visit_type is None or visit_type.care_unit_id != schedule.care_unit_id or not visit_type.active:
        raise Refused(_("Velg en timetype fra listen."))
    if pattern.mode not in visit_type.mode_list:
        raise Refused(_("Denne timetypen kan ikke være %(mode)s.", mode=mode_label(pattern.mode)))
    if pattern.mode is Mode.IN_PERSON and schedule.location_id is None:
        # The patient would be told to come, with nowhere to come to.
        raise Refused(_("Kalenderen har ingen adresse. Velg video eller telefon, eller gi kalenderen et sted."))
    if pattern.last < pattern.first:
        raise Refused(_("Siste dag kan ikke være før første dag."))
    if pattern.last > now.astimezone(clock.NORWAY).date() + timedelta(days=MAX_DAYS_AHEAD):
        raise Refused(_("Tider kan lages høyst to år fram i tid. Sjekk årstallet."))
    if (pattern.last - pattern.first).days >= MAX_DAYS_AT_ONCE:
        raise Refused(_("Lag tider for høyst %(days)d dager om gangen.", days=MAX_DAYS_AT_ONCE))
    if pattern.end <= pattern.start:
        raise Refused(_("«Til» må være senere enn «fra»."))
    if not 5 <= pattern.minutes <= 480:
        raise Refused(_("Lengden må være mellom 5 og 480 minutter."))
    starts: list[datetime] = []
    day = pattern.first
    while day <= pattern.last:
        if day.weekday() in pattern.weekdays:
            moment = datetime.combine(day, pattern.start, tzinfo=clock.NORWAY)
            end_of_day = datetime.combine(day, pattern.end, tzinfo=clock.NORWAY)
            while moment + timedelta(minutes=pattern.minutes) <= end_of_day:
                starts.append(moment)
                moment += timedelta(minutes=pattern.minutes)
        day += timedelta(days=1)
    if not starts:
        raise Refused(_("Mønsteret gir ingen tider. Sjekk dagene og klokkeslettene."))
    if len(starts) > MAX_SLOTS_AT_ONCE:
        raise Refused(
            _("Mønsteret gir %(n)d tider; lag høyst %(max)d om gangen.", n=len(starts), max=MAX_SLOTS_AT_ONCE)
        )
    for moment in starts:
        if moment.astimezone(UTC) <= now:
            raise Refused(_("%(when)s har allerede vært. Velg tider fram i tid.", when=_when(moment)))
        if not schedule.is_open(moment, pattern.minutes):
            raise Refused(_("%(when)s er utenfor åpningstiden til kalenderen.", when=_when(moment)))
    first = starts[0].astimezone(UTC)
    last = starts[-1].astimezone(UTC) + timedelta(minutes=pattern.minutes)
    # This calendar's times, and those of every calendar of the unit's organisation with the same
    # practitioner: one person cannot see two patients at once.
    calendars = [schedule.id]
    if schedule.practitioner and schedule.practitioner.strip():
        calendars += db.session.scalars(
            select(Schedule.id)
            .join(CareUnit, CareUnit.id == Schedule.care_unit_id)
            .where(
                Schedule.id != schedule.id,
                Schedule.active,
                CareUnit.organisation_id == schedule.care_unit.organisation_id,
                func.lower(func.trim(Schedule.practitioner)) == schedule.practitioner.strip().lower(),
            )
        ).all()
    existing = db.session.execute(
        select(Slot.start, Slot.minutes, Slot.schedule_id).where(
            Slot.schedule_id.in_(calendars),
            Slot.start < last,
            Slot.start > first - timedelta(hours=8),
            Slot.state != SlotState.BLOCKED,
        )
    ).all()
    taken = sorted((s, s + timedelta(minutes=m), own == schedule.id) for s, m, own in existing)
    for moment in starts:
        begin = moment.astimezone(UTC)
        end = begin + timedelta(minutes=pattern.minutes)
        for s, e, same_calendar in taken:
            if s < end and begin < e:
                if same_calendar:
                    raise Refused(_("%(when)s overlapper en tid som finnes fra før.", when=_when(moment)))
                raise Refused(
                    _(
                        "%(when)s har %(who)s allerede en tid i en annen kalender.",
                        when=_when(moment),
                        who=schedule.practitioner.strip(),
                    )
                )
    made = [
        Slot(
            schedule_id=schedule.id,
            visit_type_id=visit_type.id,
            start=moment.astimezone(UTC),
            minutes=pattern.minutes,
            mode=pattern.mode,
            location_id=schedule.location_id if pattern.mode is Mode.IN_PERSON else None,
            state=SlotState.FREE,
        )
        for moment in starts
    ]
    db.session.add_all(made)
    db.session.flush()
    return made


def mode_label(mode: Mode) -> str:
    return {Mode.IN_PERSON: _("oppmøte"), Mode.VIDEO: _("video"), Mode.PHONE: _("telefon")}[mode]
