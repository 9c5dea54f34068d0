"""How appointment times read: "fredag 27. november 2026 kl. 09:00" in bokmål, "Friday 27 November
2026 at 09:00" in English. The date part is formatted once per day and request (Babel's formatter
is the costliest part of a page of twenty times)."""

from __future__ import annotations

from datetime import date, datetime

from flask import g
from flask_babel import format_date
from flask_babel import gettext as _

from app import clock


def _day(day: date, year: bool) -> str:
    cache = g.setdefault("_varde_day_texts", {})
    key = (day, year)
    if key not in cache:
        pattern = _("EEEE d. MMMM y") if year else _("EEEE d. MMMM")
        cache[key] = format_date(day, pattern)
    return cache[key]


def when_text(moment: datetime, *, year: bool = True) -> str:
    local = moment.astimezone(clock.NORWAY)
    return _("%(day)s kl. %(time)s", day=_day(local.date(), year), time=local.strftime("%H:%M"))


def day_text(day: date) -> str:
    return _day(day, True)
