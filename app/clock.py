"""One place that says what time it is, so tests can move the clock."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

NORWAY = ZoneInfo("Europe/Oslo")  # wall time for birthdays, quiet hours and source systems' local times


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


def today_in_norway() -> date:
    """Today in Norway: a birthday that changes what a parent may see begins at midnight here."""
    return utcnow().astimezone(NORWAY).date()


def start_of_today_utc() -> datetime:
    """Midnight today in Norway, as UTC: where "today's times" begin."""
    midnight = datetime.combine(today_in_norway(), datetime.min.time(), tzinfo=NORWAY)
    return midnight.astimezone(UTC)
