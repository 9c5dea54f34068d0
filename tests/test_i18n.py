"""Bokmål first, English second; the choice sticks to the account."""

from __future__ import annotations

from app.auth.models import User
from app.db import db
from tests.conftest import csrf_from


def test_pages_are_in_bokmal_by_default(client):
    html = client.get("/logg-inn").get_data(as_text=True)
    assert '<html lang="nb">' in html
    assert "Logg inn" in html


def test_an_english_browser_gets_english(client):
    html = client.get("/logg-inn", headers={"Accept-Language": "en-GB,en;q=0.9"}).get_data(as_text=True)
    assert '<html lang="en">' in html
    assert "Log in" in html


def test_a_norwegian_browser_gets_bokmal_even_when_it_says_nn_or_no(client):
    for header in ("nn-NO", "no", "nb-NO,en;q=0.5"):
        assert '<html lang="nb">' in client.get("/logg-inn", headers={"Accept-Language": header}).get_data(as_text=True)


def test_the_language_choice_is_kept_on_the_account(client, app, kari, login_as):
    login_as(kari)
    response = client.post(
        "/sprak", data={"lang": "en", "next": "/innstillinger", "csrf_token": csrf_from(client, "/innstillinger")}
    )
    assert response.headers["Location"] == "/innstillinger"
    assert "Profile and settings" in client.get("/innstillinger").get_data(as_text=True)
    assert db.session.get(User, kari.id).locale == "en"
    other = app.test_client()
    login_as(kari, other)  # another device: the account's language
    assert '<html lang="en">' in other.get("/").get_data(as_text=True)


def test_an_unknown_language_changes_nothing(client, kari, login_as):
    login_as(kari)
    client.post("/sprak", data={"lang": "xx", "csrf_token": csrf_from(client, "/innstillinger")})
    assert db.session.get(User, kari.id).locale is None


def test_every_string_has_an_english_translation():
    from pathlib import Path

    from babel.messages.pofile import read_po

    po = Path(__file__).resolve().parent.parent / "app/translations/en/LC_MESSAGES/messages.po"
    with po.open("rb") as fh:
        catalog = read_po(fh)
    missing = [m.id for m in catalog if m.id and not all(m.string if isinstance(m.string, tuple) else [m.string])]
    assert missing == []
    # Every string of the template is in the catalogue (an emptied catalogue must not pass).
    with (po.parents[2] / "messages.pot").open("rb") as fh:
        template = read_po(fh)
    assert {m.id for m in template if m.id} <= {m.id for m in catalog if m.id}
    assert len(catalog) > 100
    assert not [m.id for m in catalog if m.id and m.fuzzy]


def test_the_language_can_be_changed_before_logging_in(client):
    page = client.get("/logg-inn").get_data(as_text=True)
    assert 'lang="en" class="link-button">English</button>' in page
    token = csrf_from(client)
    response = client.post("/sprak", data={"lang": "en", "next": "/logg-inn?next=/timer", "csrf_token": token})
    assert response.headers["Location"] == "/logg-inn?next=/timer"
    html = client.get("/logg-inn").get_data(as_text=True)
    assert '<html lang="en">' in html and ">Norsk bokmål</button>" in html


def test_file_sizes_read_in_the_pages_language(app):
    from flask_babel import refresh

    from app.web.templating import file_size

    with app.test_request_context("/", headers={"Accept-Language": "nb"}):
        refresh()
        assert [file_size(n) for n in (341, 8_200, 1_340_000)] == ["341 byte", "8,2 kB", "1,3 MB"]
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        refresh()
        assert file_size(8_200) == "8.2 kB"
    with app.test_request_context("/"):
        refresh()
