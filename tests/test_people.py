"""Persons are stored only with a valid national identity number."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from app.db import db
from app.people.models import Person
from app.people.nin import InvalidNin, make_nin


def _person(national_id: str) -> Person:
    return Person(national_id=national_id, given_name="Test", family_name="Testesen", birth_date=date(1961, 1, 2))


def test_a_person_keeps_a_valid_number_without_spaces(app):
    person = _person("020161 26007")
    db.session.add(person)
    db.session.commit()
    assert person.national_id == "02016126007"


@pytest.mark.parametrize("value", ["02016126008", "0201612600", "٠٢٠١٦١٢٦٠٠٧"])
def test_an_invalid_number_is_never_stored(app, value):
    with pytest.raises(InvalidNin):
        db.session.add(_person(value))
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Person)) == 0


def test_synthetic_numbers_are_stored_only_in_demo_mode(app):
    synthetic = next(v for i in range(100, 200) if (v := make_nin(date(1985, 10, 20), i, synthetic=True)))
    with pytest.raises(InvalidNin):
        _person(synthetic)
    app.config["DEMO_MODE"] = True
    assert _person(synthetic).national_id == synthetic
