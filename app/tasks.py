"""The background worker (Huey): timed release, push delivery, offer expiry and appointment reminders.

Embedded by default — a SQLite file in instance/, run by `huey_consumer app.tasks.huey` (``make run``
starts it) — and on Redis when REDIS_URL is set, with as many consumers as the volume needs.
Nothing user-visible is done inside a request: requests write rows, the worker acts on them.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

from flask import current_app, has_app_context
from huey import Huey, RedisHuey, SqliteHuey, crontab

from app.config import Config


def _make_huey() -> Huey:
    if Config.REDIS_URL:
        return RedisHuey("varde", url=Config.REDIS_URL, results=False)
    instance = Path(Config.INSTANCE_PATH)
    instance.mkdir(parents=True, exist_ok=True)
    return SqliteHuey("varde", filename=str(instance / "huey.sqlite"), results=False)


huey = _make_huey()
_worker_app = None


def in_app_context(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a task inside the Flask app (the consumer builds one app per process, once)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if has_app_context():
            return fn(*args, **kwargs)
        global _worker_app
        if _worker_app is None:
            from app import create_app

            _worker_app = create_app()
        with _worker_app.app_context():
            try:
                return fn(*args, **kwargs)
            finally:
                from app.db import db

                db.session.remove()

    return wrapper


@huey.periodic_task(crontab(minute="*"), retries=2, retry_delay=10)
@in_app_context
def release_held_items() -> int:
    """Release held items whose hold time has run out (each with its event, in one transaction)."""
    from app.record.release import release_due

    count = release_due()
    if count:
        current_app.logger.info("released %d held items", count)
    return count


@huey.periodic_task(crontab(minute="*"), retries=2, retry_delay=10)
@in_app_context
def expire_offers() -> int:
    """Earlier-time offers whose time ran out expire; their slots go to the next patients."""
    from app import clock
    from app.appointments import offers
    from app.db import db

    count = offers.expire_due(clock.utcnow())
    db.session.commit()
    return count


@huey.periodic_task(crontab(minute="*/5"), retries=2, retry_delay=30)
@in_app_context
def appointment_reminders() -> int:
    """Reminders before appointments, as events (each once)."""
    from app import clock
    from app.appointments import reminders
    from app.db import db

    count = reminders.write_due(clock.utcnow())
    db.session.commit()
    return count


@huey.periodic_task(crontab(hour="7", minute="5"), retries=2, retry_delay=60)
@in_app_context
def age_notices() -> int:
    """Daily: a month's notice to parents and child before a child turns 12 or 16 (each once).
    At 07:05 UTC (Huey's crontab is in UTC): 08:05 or 09:05 in Norway, after the quiet hours."""
    from app.people.notices import write_age_notices

    count = write_age_notices()
    if count:
        current_app.logger.info("wrote %d age notices", count)
    return count


FOLLOW_UP = "push-follow-up"  # set while one follow-up run is scheduled


@huey.task(retries=0)
@in_app_context
def deliver_pushes(follow_up: bool = False) -> None:
    """Send the push deliveries that are due. Enqueued after every commit that wrote some (so
    a new result reaches the phone within a second), and by the sweep below every minute. A retry
    due before the next sweep gets one follow-up run — one at a time, however many wake-ups."""
    from app.notify import delivery

    if follow_up:
        huey.get(FOLLOW_UP)  # this was it: another may be scheduled now
    delivery.deliver_due(time_budget=50)
    wait = delivery.next_due_in()
    if wait is not None and wait < 60 and not huey.immediate and huey.put_if_empty(FOLLOW_UP, "1"):
        deliver_pushes.schedule(kwargs={"follow_up": True}, delay=max(wait, 0.5))


@huey.periodic_task(crontab(minute="*"))
def sweep_pushes() -> None:
    """Retries that came due, deliveries deferred past quiet hours, and anything whose worker died."""
    deliver_pushes()


@huey.periodic_task(crontab(minute="17", hour="3"))
@in_app_context
def prune_push() -> None:
    """Nightly: forget devices not seen for a long time and old finished deliveries."""
    from app.notify import delivery

    delivery.prune()


def init_app(app: Any) -> None:
    if app.config.get("HUEY_IMMEDIATE"):
        huey.immediate = True
