"""How appointment times read: "fredag 27. november 2026 kl. 09:00" in bokmål, "Friday 27 November
2026 at 09:00" in English. The date part goes through the record's ``item_date``, which formats each
date once per request (Babel's formatter is the costliest part of a page of twenty times)."""

from __future__ import annotations

from datetime import date, datetime

from flask_babel import gettext as _

from app import clock
from app.record.present import item_date


def day_text(day: date, *, year: bool = True) -> str:
    return item_date(day, _("EEEE d. MMMM y") if year else _("EEEE d. MMMM"))


def when_text(moment: datetime, *, year: bool = True) -> str:
    local = moment.astimezone(clock.NORWAY)
    return _("%(day)s kl. %(time)s", day=day_text(local.date(), year=year), time=local.strftime("%H:%M"))
