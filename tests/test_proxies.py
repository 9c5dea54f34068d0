"""Adult proxies (fullmakt): giving by national id and by one-time code, levels, ending, the
activity log, and every kind of bad input (which changes nothing)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app import clock
from app.access.models import AuditEvent
from app.db import db
from app.people.models import ProxyInvitation, ProxyLevel, Relation, RelationKind
from app.record.models import ItemKind, RecordItem
from app.record.release import item_url
from tests import factories
from tests.conftest import csrf_from

CODE_RE = re.compile(r"<strong>([A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{2})</strong>")


def give(client, nin: str, level: str = "standard", until: str = ""):  # type: ignore[no-untyped-def]
    token = csrf_from(client, "/fullmakter")
    return client.post(
        "/fullmakter/gi",
        data={"csrf_token": token, "gi-national_id": nin, "gi-level": level, "gi-valid_until": until},
    )


def make_code(client, level: str = "standard") -> str:  # type: ignore[no-untyped-def]
    token = csrf_from(client, "/fullmakter")
    response = client.post("/fullmakter/kode", data={"csrf_token": token, "kode-level": level})
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    match = CODE_RE.search(response.get_data(as_text=True))
    assert match
    return match.group(1)


def use_code(client, code: str):  # type: ignore[no-untyped-def]
    token = csrf_from(client, "/fullmakter/bruk-kode")
    return client.post("/fullmakter/bruk-kode", data={"csrf_token": token, "code": code})


def relations() -> list[tuple[int, int, RelationKind, ProxyLevel | None, bool]]:
    db.session.expire_all()
    return [
        (r.holder_id, r.subject_id, r.kind, r.level, r.revoked_at is None)
        for r in db.session.scalars(select(Relation).order_by(Relation.id))
    ]


def switch(client, person_id: int) -> int:  # type: ignore[no-untyped-def]
    return client.post("/profil", data={"csrf_token": csrf_from(client, "/"), "person": person_id}).status_code


@pytest.fixture
def solveig(app):  # type: ignore[no-untyped-def]
    """Solveig Nordmann, 82: Kari's mother, who gives her a proxy."""
    return factories.patient("Solveig", "Nordmann", age=82, username="solveig", with_totp=True)


def test_a_patient_gives_a_proxy_by_national_id_and_the_proxy_sees_what_the_level_allows(
    client, login_as, kari, solveig, source
):
    factories.record(solveig.person, source, prefix="s")
    login_as(solveig)
    response = give(client, kari.person.national_id, "standard")
    assert response.status_code == 303
    assert relations() == [(kari.person_id, solveig.person_id, RelationKind.PROXY, ProxyLevel.STANDARD, True)]
    page = client.get("/fullmakter").get_data(as_text=True)
    assert "Kari Nordmann" in page and "Standard" in page

    login_as(kari)
    assert "Solveig, 82 år" in client.get("/").get_data(as_text=True)
    assert switch(client, solveig.person_id) == 303
    assert "Du ser nå journalen til Solveig, 82 år" in client.get("/journal").get_data(as_text=True)
    result = db.session.scalar(
        select(RecordItem).where(RecordItem.person_id == solveig.person_id, RecordItem.kind == ItemKind.RESULT)
    )
    note = db.session.scalar(
        select(RecordItem).where(RecordItem.person_id == solveig.person_id, RecordItem.kind == ItemKind.NOTE)
    )
    assert client.get(item_url(result.id, ItemKind.RESULT)).status_code == 200
    assert client.get(item_url(note.id, ItemKind.NOTE)).status_code == 404  # Standard: no notes
    assert client.get("/journal/notater").status_code == 404
    assert client.get("/journal/eksport.json").status_code == 404
    # Every read is audited with the proxy as actor and "proxy" as the basis.
    read = db.session.scalar(
        select(AuditEvent).where(AuditEvent.action == "read_result", AuditEvent.actor_user_id == kari.id)
    )
    assert read.subject_person_id == solveig.person_id and read.basis == "proxy"


def test_communicate_only_sees_no_health_information(client, login_as, kari, solveig, source):
    factories.record(solveig.person, source, prefix="s")
    login_as(solveig)
    give(client, kari.person.national_id, "communicate")
    login_as(kari)
    assert switch(client, solveig.person_id) == 303
    assert client.get("/journal/prover").status_code == 404
    assert client.get("/timer").status_code == 200
    assert client.get("/meldinger").status_code == 200
    page = client.get("/journal").get_data(as_text=True)
    assert "Du har ikke tilgang til helseopplysningene" in page
    # The overview says the same, not that nothing is new (Solveig has news).
    overview = client.get("/").get_data(as_text=True)
    assert "Du har ikke tilgang til prøvesvar og notater i journalen til Solveig" in overview
    assert "Varde har ikke fått noe nytt" not in overview
    assert "Solveig har ingen timer som du kan se" in overview


def test_the_patient_ends_a_proxy_and_it_stops_on_the_proxys_next_request(app, client, login_as, kari, solveig):
    login_as(solveig)
    give(client, kari.person.national_id, "full")
    relation_id = db.session.scalar(select(Relation.id))
    other = app.test_client()
    login_as(kari, other)
    assert switch(other, solveig.person_id) == 303
    assert other.get("/timer").status_code == 200

    token = csrf_from(client, "/fullmakter")
    assert client.post(f"/fullmakter/{relation_id}/avslutt", data={"csrf_token": token}).status_code == 303
    assert relations()[0][4] is False
    page = other.get("/").get_data(as_text=True)  # the next request: back to her own, and told
    assert "Du har ikke lenger tilgang til journalen til Solveig" in page
    assert "Du ser nå journalen til" not in page
    assert switch(other, solveig.person_id) == 404
    # Ending it again is refused with a message, and changes nothing.
    response = client.post(f"/fullmakter/{relation_id}/avslutt", data={"csrf_token": token})
    assert response.status_code == 409
    assert "allerede avsluttet" in response.get_data(as_text=True)


def test_a_one_time_code_works_once(app, client, login_as, kari, solveig, per):
    login_as(solveig)
    code = make_code(client, "read_only")
    assert db.session.scalar(select(ProxyInvitation.code_hash)) != code.replace("-", "")  # only a hash

    other = app.test_client()
    login_as(kari, other)
    assert use_code(other, code.lower().replace("-", " ")).status_code == 303  # as typed on a phone
    assert relations() == [(kari.person_id, solveig.person_id, RelationKind.PROXY, ProxyLevel.READ_ONLY, True)]

    third = app.test_client()
    login_as(per, third)
    response = use_code(third, code)
    assert response.status_code == 409
    assert "Koden er allerede brukt" in response.get_data(as_text=True)
    assert len(relations()) == 1


def test_an_expired_or_withdrawn_code_changes_nothing(app, client, login_as, kari, solveig, frozen_clock):
    login_as(solveig)
    code = make_code(client)
    frozen_clock.advance(days=8)
    other = app.test_client()
    login_as(kari, other)
    response = use_code(other, code)
    assert response.status_code == 409 and "Koden har gått ut" in response.get_data(as_text=True)
    frozen_clock.now = clock.utcnow() - timedelta(days=8)
    code = make_code(client)
    invitation_id = db.session.scalar(select(ProxyInvitation.id).order_by(ProxyInvitation.id.desc()))
    token = csrf_from(client, "/fullmakter")
    assert client.post(f"/fullmakter/kode/{invitation_id}/trekk-tilbake", data={"csrf_token": token}).status_code == 303
    response = use_code(other, code)
    assert response.status_code == 409 and "Koden er trukket tilbake" in response.get_data(as_text=True)
    assert relations() == []


@pytest.mark.parametrize(
    ("who", "message"),
    [
        ("self", "Du kan ikke gi fullmakt til deg selv"),
        ("young", "må være minst 18 år"),
        # Unknown and confidential address get the same answer: trying numbers tells nothing.
        ("protected", "Vi kan ikke gi fullmakt til dette fødselsnummeret"),
        ("unknown", "Vi kan ikke gi fullmakt til dette fødselsnummeret"),
        ("invalid", "Fødselsnummeret er ikke gyldig"),
    ],
)
def test_bad_invitations_are_refused_and_change_nothing(client, login_as, solveig, ingrid, kari, who, message):
    if who == "protected":
        kari.person.address_protection = "7"
        db.session.commit()
    nin = {
        "self": solveig.person.national_id,
        "young": ingrid.person.national_id,
        "protected": kari.person.national_id,
        "unknown": factories.nin_for(factories.birth_for_age(50)),
        "invalid": "12345678901",
    }[who]
    login_as(solveig)
    before = db.session.scalar(select(func.count(AuditEvent.id)))
    response = give(client, nin)
    assert response.status_code == 409
    assert message in response.get_data(as_text=True)
    assert relations() == []
    # Nothing granted; the attempt itself is on record.
    actions = db.session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("proxy_%"))).all()
    assert actions == ["proxy_grant_refused"] and db.session.scalar(select(func.count(AuditEvent.id))) > before


def test_national_ids_cannot_be_tried_one_after_another(client, login_as, solveig, monkeypatch):
    from app.access import routes

    monkeypatch.setattr(routes, "INVITES", "3 per day")
    login_as(solveig)
    for _ in range(3):
        assert give(client, factories.nin_for(factories.birth_for_age(50))).status_code == 409
    response = give(client, factories.nin_for(factories.birth_for_age(50)))
    assert response.status_code == 429 and "mange fødselsnumre" in response.get_data(as_text=True)


def test_a_code_cannot_be_used_by_oneself_or_someone_too_young(app, client, login_as, solveig, ingrid):
    login_as(solveig)
    code = make_code(client)
    response = use_code(client, code)
    assert response.status_code == 409 and "en kode du har laget selv" in response.get_data(as_text=True)
    other = app.test_client()
    login_as(ingrid, other)
    response = use_code(other, code)
    assert response.status_code == 409 and "minst 18 år" in response.get_data(as_text=True)
    assert relations() == []
    assert db.session.scalar(select(ProxyInvitation.used_at)) is None  # still usable by the right person


def test_a_forged_relation_id_is_404_and_changes_nothing(app, client, login_as, kari, solveig, per):
    login_as(solveig)
    give(client, kari.person.national_id)
    relation_id = db.session.scalar(select(Relation.id))
    other = app.test_client()
    login_as(per, other)
    token = csrf_from(other, "/fullmakter")
    assert other.post(f"/fullmakter/{relation_id}/avslutt", data={"csrf_token": token}).status_code == 404
    assert other.post("/fullmakter/999999/avslutt", data={"csrf_token": token}).status_code == 404
    assert other.get(f"/fullmakter/{relation_id}/aktivitet").status_code == 404
    assert relations()[0][4] is True


def test_a_confidential_address_ends_representation(client, login_as, kari, solveig):
    login_as(solveig)
    give(client, kari.person.national_id, "full")
    solveig.person.address_protection = "6"
    db.session.commit()
    login_as(kari)
    assert switch(client, solveig.person_id) == 404


def test_the_patient_sees_what_the_proxy_did(app, client, login_as, kari, solveig, source):
    factories.record(solveig.person, source, prefix="s")
    login_as(solveig)
    give(client, kari.person.national_id, "standard")
    relation_id = db.session.scalar(select(Relation.id))
    other = app.test_client()
    login_as(kari, other)
    switch(other, solveig.person_id)
    other.get("/journal/prover")
    page = client.get(f"/fullmakter/{relation_id}/aktivitet").get_data(as_text=True)
    assert "så prøvesvarene" in page and "åpnet journalen din" in page
    # Opening the forms for booking and writing is told as that, never as a booking or a message.
    assert other.get("/timer/bestill").status_code == 200
    assert other.get("/meldinger/ny").status_code == 200
    page = client.get(f"/fullmakter/{relation_id}/aktivitet").get_data(as_text=True)
    assert "åpnet timebestillingen" in page and "åpnet skjemaet for ny melding" in page
    assert "bestilte" not in page and "skrev" not in page
    seen = client.get("/journal/hvem-har-sett").get_data(as_text=True)
    assert "Fullmektig" in seen and f"/fullmakter/{relation_id}/aktivitet" in seen


def test_a_proxy_with_an_end_date_stops_after_it(client, login_as, kari, solveig, frozen_clock):
    login_as(solveig)
    until = clock.today_in_norway() + timedelta(days=2)
    assert give(client, kari.person.national_id, "standard", until.isoformat()).status_code == 303
    login_as(kari)
    assert switch(client, solveig.person_id) == 303
    assert client.get("/timer").status_code == 200
    # Three days on (the session kept alive by a fresh login that still acts for her): it has ended.
    frozen_clock.advance(days=3)
    login_as(kari)
    with client.session_transaction() as s:
        s["acting_for"] = solveig.person_id
    assert "Du har ikke lenger tilgang til journalen til Solveig" in client.get("/timer").get_data(as_text=True)
    # An end date in the past is refused.
    login_as(solveig)
    response = give(
        client, kari.person.national_id, "standard", (clock.today_in_norway() - timedelta(days=1)).isoformat()
    )
    assert response.status_code == 409 and "tilbake i tid" in response.get_data(as_text=True)


def test_a_proxy_never_gets_more_than_the_patient(client, login_as, kari, solveig, source):
    """A withheld item stays withheld for a Full proxy too."""
    factories.record(solveig.person, source, prefix="s")
    item = db.session.scalar(
        select(RecordItem).where(RecordItem.person_id == solveig.person_id, RecordItem.kind == ItemKind.RESULT)
    )
    item.withheld_at = clock.utcnow()
    item.withheld_reason = "Samtale først"
    db.session.commit()
    login_as(solveig)
    give(client, kari.person.national_id, "full")
    login_as(kari)
    switch(client, solveig.person_id)
    assert client.get(item_url(item.id, ItemKind.RESULT)).status_code == 404


def test_a_chooser_after_login_for_someone_with_relatives(client, login_as, kari, ola):
    factories.parent_of(kari, ola)
    login_as(kari)
    page = client.get("/velg-journal").get_data(as_text=True)
    assert "Hvem vil du se?" in page and "Ola, 8 år" in page


def test_a_form_sent_after_the_access_ended_does_nothing_anywhere(app, client, login_as, kari, solveig, source):
    """The form says whose record it was made for: sent after the proxy was ended, it is refused
    (409) and lands neither in Solveig's record nor in Kari's own."""
    from app.people.models import Organisation
    from app.record.models import CopyRequest

    factories.record(solveig.person, source, prefix="s")
    org_id = db.session.scalar(select(Organisation.id))
    login_as(solveig)
    give(client, kari.person.national_id, "full")
    relation_id = db.session.scalar(select(Relation.id))
    other = app.test_client()
    login_as(kari, other)
    switch(other, solveig.person_id)
    page = other.get("/journal/kopi").get_data(as_text=True)
    assert f'name="journal" value="{solveig.person_id}"' in page
    token = csrf_from(other, "/journal/kopi")
    # Solveig ends it while Kari has the form open.
    client.post(f"/fullmakter/{relation_id}/avslutt", data={"csrf_token": csrf_from(client, "/fullmakter")})
    response = other.post(
        "/journal/kopi",
        data={"csrf_token": token, "journal": str(solveig.person_id), "organisation": str(org_id), "scope": "whole"},
    )
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "Journalen er byttet" in page and "Du har ikke lenger tilgang til journalen til Solveig" in page
    assert db.session.scalar(select(func.count(CopyRequest.id))) == 0
    assert "Du ser nå journalen til" not in other.get("/").get_data(as_text=True)


def test_a_form_made_for_a_child_is_refused_after_switching_back(client, login_as, kari, ola, source):
    from app.people.models import Organisation
    from app.record.models import CopyRequest

    factories.record(ola, source, prefix="o")
    factories.parent_of(kari, ola)
    org_id = db.session.scalar(select(Organisation.id))
    login_as(kari)
    switch(client, ola.id)
    token = csrf_from(client, "/journal/kopi")
    switch(client, kari.person_id)  # in another tab
    data = {"csrf_token": token, "journal": str(ola.id), "organisation": str(org_id), "scope": "whole"}
    assert client.post("/journal/kopi", data=data).status_code == 409
    assert db.session.scalar(select(func.count(CopyRequest.id))) == 0
    # Made for her own record, it goes through.
    assert client.post("/journal/kopi", data=data | {"journal": str(kari.person_id)}).status_code == 303
    assert db.session.scalar(select(CopyRequest.person_id)) == kari.person_id


def test_every_event_kind_says_who_may_hear_it():
    """A kind missing from the policy's EVENT_RIGHTS would be heard by no one."""
    from app.access import policy
    from app.notify.kinds import KINDS

    assert set(KINDS) <= set(policy.EVENT_RIGHTS)


def test_the_push_worker_checks_a_limited_parents_objects_again(kari, ingrid, source):
    """A parent of a 12–16 year old: a message from the GP office is still theirs to hear of when
    the push goes out; one from a hospital, or a result, is not."""
    from app.access import policy
    from app.messages.models import Conversation
    from app.people.models import OrganisationKind

    factories.parent_of(kari, ingrid.person)
    gp = factories.hospital("Lade legesenter", OrganisationKind.GP_OFFICE)
    hospital = factories.hospital()
    conversations = {}
    for name, org in (("gp", gp), ("hospital", hospital)):
        c = Conversation(
            person_id=ingrid.person_id,
            care_unit_id=org.care_units[0].id,
            organisation_id=org.id,
            topic="other",
            subject="Spørsmål",
            state="new",
            started_by_id=ingrid.id,
            created_at=clock.utcnow(),
            last_message_at=clock.utcnow(),
        )
        db.session.add(c)
        conversations[name] = c
    db.session.commit()
    rows = [
        (kari.person_id, ingrid.person_id, "message_received", "conversation", conversations["gp"].id),
        (kari.person_id, ingrid.person_id, "message_received", "conversation", conversations["hospital"].id),
        (kari.person_id, ingrid.person_id, "result_released", "record_item", 1),
    ]
    assert policy.relatives_allowed(rows) == {rows[0]}


def test_a_parent_reading_a_childs_access_log_is_not_told_it_is_their_own(client, login_as, kari, ola):
    factories.parent_of(kari, ola)
    login_as(kari)
    assert switch(client, ola.id) == 303
    page = client.get("/journal/hvem-har-sett").get_data(as_text=True)
    assert "Hvem har sett journalen til Ola" in page and "journalen min" not in page
    assert "journalen min" not in client.get("/journal").get_data(as_text=True)


def test_giving_again_says_the_level_changed_from_what(app, client, login_as, kari, solveig):
    login_as(solveig)
    first = give(client, kari.person.national_id, "standard")
    assert "ok=gitt" in first.headers["Location"]
    again = give(client, kari.person.national_id, "full")
    page = client.get(again.headers["Location"]).get_data(as_text=True)
    assert "Personen hadde fullmakt fra før. Nivået er endret fra «Standard» til «Full tilgang»." in page
    assert "Fullmakten er gitt" not in page
    # The proxy using a code for a lower level is told that their access went down.
    code = make_code(client, "read_only")
    other = app.test_client()
    login_as(kari, other)
    used = use_code(other, code)
    page = other.get(used.headers["Location"]).get_data(as_text=True)
    assert "nivået er nå «Bare lese» (før: «Full tilgang»)" in page


def test_the_proxies_page_while_acting_for_a_child_is_about_oneself(client, login_as, kari, ola, ingrid):
    factories.parent_of(kari, ola)
    login_as(kari)
    switch(client, ola.id)
    page = client.get("/fullmakter").get_data(as_text=True)
    assert "Fullmaktene her er dine egne, Kari" in page
    assert "Hvem har sett journalen din" not in page  # it would open Ola's log
    client.delete_cookie("__Host-varde")
    login_as(ingrid)  # 14: cannot hold a proxy
    page = client.get("/fullmakter").get_data(as_text=True)
    assert "Du kan få fullmakt fra andre fra du er 18 år." in page and "Bruk en kode" not in page
