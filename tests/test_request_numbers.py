"""Numbers and dates in addresses and forms that no database column can hold are refused like any
other bad value (a 404 for an address, the default for a parameter), never a 500."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from app.access.models import AuditEvent
from app.db import db
from app.web.numbers import DB_INT_MAX, db_int
from tests.conftest import csrf_from

HUGE = "9" * 25  # more than a 64-bit key can hold
JUST_OVER = str(DB_INT_MAX + 1)


def test_db_int_takes_what_a_key_can_hold_and_nothing_more():
    assert db_int("42") == 42
    assert db_int(str(DB_INT_MAX)) == DB_INT_MAX
    for bad in (JUST_OVER, HUGE, "1" * 5000, "x", ""):
        with pytest.raises(ValueError):
            db_int(bad)


def _int_rules(app, method: str) -> list[str]:
    paths = []
    for rule in app.url_map.iter_rules():
        if method in (rule.methods or ()) and "<int:" in rule.rule:
            paths.append(re.sub(r"<int:[^>]+>", JUST_OVER, re.sub(r"<(?!int:)[^>]+>", "x", rule.rule)))
    return sorted(paths)


@pytest.mark.parametrize("who", ["patient", "staff"])
def test_an_id_too_large_for_a_key_is_not_found_on_every_route(app, client, login_as, kari, dr_aune, who):
    login_as(kari if who == "patient" else dr_aune)
    gets = _int_rules(app, "GET")
    assert len(gets) >= 20, gets  # the routes are there to be tried
    for path in gets:
        assert client.get(path).status_code == 404, path
    for path in _int_rules(app, "POST"):
        assert client.post(path, data={"csrf_token": csrf_from(client, "/")}).status_code == 404, path


def test_numbers_in_parameters_too_large_for_a_key_are_ignored(client, login_as, kari, gp):
    login_as(kari)
    for path in (
        f"/varsler?før={HUGE}",
        f"/journal/prover?org={HUGE}",
        f"/journal/prover?for={HUGE}",
        f"/meldinger/ny/{gp.id}?om={HUGE}",
        f"/timer/bestill?etter={HUGE}",
    ):
        assert client.get(path).status_code in (200, 404), path


def test_a_show_more_token_with_an_id_too_large_for_a_key_gives_the_first_page(client, login_as, kari):
    import base64

    login_as(kari)
    token = base64.urlsafe_b64encode(f"2025-01-01T00:00:00+00:00|{HUGE}".encode()).decode().rstrip("=")
    for path in ("/journal/besok", "/journal/notater", "/meldinger"):
        assert client.get(f"{path}?etter={token}").status_code == 200, path
        assert client.get(f"{path}?for={token}").status_code == 200, path


def test_switching_to_a_person_too_large_for_a_key_switches_to_no_one(client, login_as, kari):
    login_as(kari)
    response = client.post("/profil", data={"csrf_token": csrf_from(client, "/"), "person": HUGE})
    assert response.status_code < 500
    switches = select(func.count()).where(AuditEvent.action == "profile_switched", AuditEvent.outcome == "ok")
    assert db.session.scalar(switches) == 0


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "2999-12-31", "1900-01-01"])
def test_the_staff_day_list_at_the_ends_of_the_calendar_shows_a_page(client, login_as, dr_aune, day):
    login_as(dr_aune)
    response = client.get(f"/ansatt/timer?dato={day}")
    assert response.status_code == 200
