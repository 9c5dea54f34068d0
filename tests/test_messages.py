"""Secure messages, the patient's side: whom they may write to, writing, states, polling, drafts,
closed conversations, and that nobody reaches a conversation that is not theirs."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app import clock
from app.access.models import AuditEvent
from app.appointments.models import Appointment, AppointmentStatus, Channel
from app.db import db
from app.messages import services
from app.messages.models import Conversation, ConversationState, Message, MessageDraft
from app.notify.models import Event, Notification
from tests import factories
from tests.conftest import answer_as, csrf_from


def _count(model) -> int:  # type: ignore[no-untyped-def]
    return db.session.scalar(select(func.count()).select_from(model)) or 0


def _audits(action: str, outcome: str = "ok") -> int:
    return (
        db.session.scalar(select(func.count()).where(AuditEvent.action == action, AuditEvent.outcome == outcome)) or 0
    )


def _send(client, unit, **fields):  # type: ignore[no-untyped-def]
    token = csrf_from(client, f"/meldinger/ny/{unit.id}")
    data = {"csrf_token": token, "topic": "treatment", "subject": "Blodtrykket", "body": "Hei! Skal jeg øke dosen?"}
    data.update(fields)
    return client.post(f"/meldinger/ny/{unit.id}", data=data, content_type="multipart/form-data")


# -- whom a patient may write to -------------------------------------------------------------------


def test_units_come_from_gp_referral_appointment_and_visit_and_say_whether_they_take_messages(kari, gp):
    hospital_unit = factories.message_unit("Hjertepoliklinikken", kind=factories.OrganisationKind.HOSPITAL)
    closed_unit = factories.message_unit("Legevakten", accepts=False)
    stranger = factories.message_unit("Byåsen legesenter")
    now = clock.utcnow()
    db.session.add(
        Appointment(
            person_id=kari.person_id,
            organisation_id=hospital_unit.organisation_id,
            care_unit_id=hospital_unit.id,
            title="Kontroll",
            start=now + timedelta(days=3),
            minutes=30,
            status=AppointmentStatus.BOOKED,
            booked_via=Channel.STAFF,
        )
    )
    from app.people.models import UnitRelation, UnitRelationKind

    db.session.add(UnitRelation(person_id=kari.person_id, care_unit_id=closed_unit.id, kind=UnitRelationKind.REFERRAL))
    db.session.commit()
    choices = {c.unit.id: c for c in services.units_for(kari.person)}
    assert set(choices) == {gp.id, hospital_unit.id, closed_unit.id}
    assert stranger.id not in choices
    assert choices[gp.id].relation == "gp" and choices[gp.id].accepts
    assert choices[hospital_unit.id].relation == "appointment"
    assert not choices[closed_unit.id].accepts
    # Units that take messages come first.
    assert list(choices.values())[-1].unit.id == closed_unit.id or not services.units_for(kari.person)[-1].accepts


def test_choose_page_lists_units_with_answer_time_and_the_emergency_banner(client, login_as, kari, gp):
    login_as(kari)
    html = client.get("/meldinger/ny").get_data(as_text=True)
    assert "Lade legesenter team" in html
    assert "innen 3 virkedager" in html
    assert "113" in html


def test_a_unit_without_relation_cannot_be_written_to(client, login_as, kari, gp):
    stranger = factories.message_unit("Byåsen legesenter")
    login_as(kari)
    assert client.get(f"/meldinger/ny/{stranger.id}").status_code == 404
    token = csrf_from(client, "/meldinger")
    response = client.post(
        f"/meldinger/ny/{stranger.id}",
        data={"csrf_token": token, "topic": "other", "subject": "x", "body": "y"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 404
    assert _count(Conversation) == 0


# -- writing -----------------------------------------------------------------------------------------


def test_patient_starts_a_conversation_and_sees_it_sent(client, login_as, kari, gp):
    login_as(kari)
    response = _send(client, gp)
    assert response.status_code == 303
    conversation = db.session.scalars(select(Conversation)).one()
    assert conversation.state is ConversationState.NEW
    assert conversation.care_unit_id == gp.id and conversation.person_id == kari.person_id
    assert conversation.waiting_since is not None
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Meldingen er sendt" in page
    assert "Sendt" in page
    assert "Hei! Skal jeg øke dosen?" in page


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"topic": ""}, "Velg hva meldingen gjelder."),
        ({"subject": ""}, "Skriv en kort overskrift."),
        ({"body": "   "}, "Skriv meldingen før du sender den."),
        ({"body": "x" * 2001}, "Meldingen er for lang: 2001 tegn. Den kan være høyst 2000 tegn."),
        ({"topic": "surgery"}, "Velg hva meldingen gjelder."),
    ],
)
def test_bad_input_says_why_and_writes_nothing(client, login_as, kari, gp, fields, message):
    login_as(kari)
    response = _send(client, gp, **fields)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert _count(Conversation) == 0 and _count(Message) == 0


def test_a_unit_that_takes_no_messages_refuses(client, login_as, kari):
    closed = factories.message_unit("Legevakten", accepts=False)
    factories.gp_of(kari.person, closed)
    login_as(kari)
    html = client.get("/meldinger/ny").get_data(as_text=True)
    assert "Tar ikke imot meldinger her." in html
    assert f'/meldinger/ny/{closed.id}"' not in html
    assert _send(client, closed).status_code == 404
    assert _count(Conversation) == 0


def test_team_reads_then_answers_and_the_patient_sees_each_state_and_gets_an_event(
    client, app, login_as, kari, gp, dr_aune
):
    conversation = factories.conversation(kari, kari.person, gp)
    login_as(kari)
    assert "Sendt" in client.get(f"/meldinger/{conversation.id}").get_data(as_text=True)

    staff_client = app.test_client()
    login_as(dr_aune, staff_client)
    assert staff_client.get(f"/ansatt/meldinger/{conversation.id}").status_code == 200
    assert "Lest av behandler" in client.get(f"/meldinger/{conversation.id}").get_data(as_text=True)

    response = answer_as(app, dr_aune, conversation.id, "Nei, behold dosen. Vi tar ny måling om to uker.")
    assert response.status_code == 303
    db.session.expire_all()
    conversation = db.session.get(Conversation, conversation.id)
    assert conversation.state is ConversationState.WAITING
    assert conversation.assigned_to_id == dr_aune.id
    event = db.session.scalars(select(Event)).one()
    assert (event.kind, event.object_type, event.object_id) == ("message_received", "conversation", conversation.id)
    assert event.url == f"/meldinger/{conversation.id}"
    assert db.session.scalars(select(Notification.account_id)).all() == [kari.id]
    page = client.get(f"/meldinger/{conversation.id}").get_data(as_text=True)
    assert "Besvart" in page and "Nei, behold dosen." in page and "Dr. Siri Aune" in page


def test_list_marks_unanswered_and_newly_answered_conversations(client, login_as, kari, gp, dr_aune, app):
    conversation = factories.conversation(kari, kari.person, gp, subject="Resept på Albyl-E")
    answer_as(app, dr_aune, conversation.id, "Resepten er fornyet.")
    login_as(kari)
    listing = client.get("/meldinger").get_data(as_text=True)
    assert "Resept på Albyl-E" in listing and "Nytt svar" in listing
    client.get(f"/meldinger/{conversation.id}")
    assert "Nytt svar" not in client.get("/meldinger").get_data(as_text=True)


def test_long_list_pages_with_a_cursor(client, login_as, kari, gp):
    for i in range(25):
        factories.conversation(kari, kari.person, gp, subject=f"Sak {i:02d}")
    login_as(kari)
    first = client.get("/meldinger").get_data(as_text=True)
    assert first.count('class="item-row"') == 20
    more = re.search(r'href="(/meldinger\?for=[^"]+)"', first)
    assert more
    second = client.get(more.group(1).replace("&amp;", "&"), headers={"HX-Request": "true"}).get_data(as_text=True)
    assert second.count('class="item-row"') == 5
    assert "Sak 00" in second and "Sak 24" in first


# -- polling ------------------------------------------------------------------------------------------


def test_poll_with_nothing_new_is_204_reads_nothing_and_is_not_activity(client, login_as, kari, gp, frozen_clock):
    from app.auth.models import ServerSession

    conversation = factories.conversation(kari, kari.person, gp)
    login_as(kari)
    client.get(f"/meldinger/{conversation.id}")
    before = _count(AuditEvent)
    seen = db.session.scalar(select(ServerSession.last_seen_at))
    frozen_clock.advance(minutes=5)
    response = client.get(
        f"/meldinger/{conversation.id}/nye?rev={conversation.revision}", headers={"HX-Request": "true"}
    )
    assert response.status_code == 204 and response.data == b""
    assert _count(AuditEvent) == before
    db.session.expire_all()
    assert db.session.scalar(select(ServerSession.last_seen_at)) == seen


def test_poll_after_a_change_returns_the_thread_and_is_audited(client, app, login_as, kari, gp, dr_aune):
    conversation = factories.conversation(kari, kari.person, gp)
    revision = conversation.revision
    login_as(kari)
    answer_as(app, dr_aune, conversation.id, "Kom innom i morgen.")
    before = _audits("read_conversation")
    response = client.get(f"/meldinger/{conversation.id}/nye?rev={revision}", headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Kom innom i morgen." in html and 'id="thread"' in html
    assert "<html" not in html
    assert _audits("read_conversation") == before + 1


# -- drafts, closed conversations, referring back ------------------------------------------------------


def test_draft_survives_leaving_the_page_and_goes_when_sent(client, login_as, kari, gp):
    login_as(kari)
    token = csrf_from(client, f"/meldinger/ny/{gp.id}")
    saved = client.post(
        "/meldinger/utkast/0",
        data={"csrf_token": token, "unit": gp.id, "topic": "prescription", "subject": "Resept", "body": "Jeg trenger"},
        headers={"HX-Request": "true"},
    )
    assert saved.status_code == 200 and "Utkast lagret" in saved.get_data(as_text=True)
    assert "Du har et utkast" in client.get("/meldinger").get_data(as_text=True)
    form = client.get(f"/meldinger/ny/{gp.id}").get_data(as_text=True)
    assert "Jeg trenger" in form and 'value="Resept"' in form
    assert re.search(r'value="prescription"[^>]*checked|checked[^>]*value="prescription"', form)
    _send(client, gp, topic="prescription", subject="Resept", body="Jeg trenger ny resept.")
    assert _count(MessageDraft) == 0


def test_draft_button_without_javascript_keeps_the_text(client, login_as, kari, gp):
    login_as(kari)
    response = _send(client, gp, body="Halvferdig", utkast="1")
    assert response.status_code == 303
    assert _count(Conversation) == 0
    assert "Halvferdig" in client.get(f"/meldinger/ny/{gp.id}").get_data(as_text=True)


def test_closed_conversation_stays_readable_refuses_replies_and_a_new_one_can_refer_to_it(
    client, app, login_as, kari, gp, dr_aune
):
    old = factories.conversation(kari, kari.person, gp, subject="Gammel sak")
    staff_client = app.test_client()
    login_as(dr_aune, staff_client)
    token = csrf_from(staff_client, f"/ansatt/meldinger/{old.id}")
    staff_client.post(f"/ansatt/meldinger/{old.id}/avslutt", data={"csrf_token": token})
    login_as(kari)
    page = client.get(f"/meldinger/{old.id}").get_data(as_text=True)
    assert "Samtalen er avsluttet" in page and "Hei, jeg lurer på noe." in page
    token = csrf_from(client, "/meldinger")
    refused = client.post(
        f"/meldinger/{old.id}",
        data={"csrf_token": token, "body": "Et spørsmål til"},
        content_type="multipart/form-data",
    )
    assert refused.status_code == 409
    assert "Teksten er tatt vare på" in refused.get_data(as_text=True)
    assert _count(Message) == 1
    form = client.get(f"/meldinger/ny/{gp.id}?om={old.id}").get_data(as_text=True)
    assert re.search(rf'<option selected value="{old.id}"|<option value="{old.id}" selected', form)
    _send(client, gp, refers_to=str(old.id), subject="Oppfølging")
    new = db.session.scalars(select(Conversation).where(Conversation.subject == "Oppfølging")).one()
    assert new.refers_to_id == old.id
    assert "Gammel sak" in client.get(f"/meldinger/{new.id}").get_data(as_text=True)


def test_refer_to_someone_elses_conversation_is_refused(client, login_as, kari, per, gp):
    factories.gp_of(per.person, gp)
    pers = factories.conversation(per, per.person, gp)
    login_as(kari)
    response = _send(client, gp, refers_to=str(pers.id))
    assert response.status_code == 400  # not one of the choices
    assert "Velg en av dine tidligere samtaler, eller ingen." in response.get_data(as_text=True)
    assert _count(Conversation) == 1


# -- a parent writes for a young child ---------------------------------------------------------------


def test_parent_writes_on_behalf_of_a_child_and_staff_see_it(client, app, login_as, kari, ola, gp, dr_aune):
    factories.parent_of(kari, ola)
    factories.gp_of(ola, gp)
    login_as(kari)
    token = csrf_from(client, "/")
    client.post("/profil", data={"csrf_token": token, "person": ola.id})
    _send(client, gp, subject="Ola har feber")
    conversation = db.session.scalars(select(Conversation)).one()
    assert conversation.person_id == ola.id
    message = db.session.scalars(select(Message)).one()
    assert message.on_behalf and message.relation_label == "parent" and message.author_id == kari.id
    staff_client = app.test_client()
    login_as(dr_aune, staff_client)
    page = staff_client.get(f"/ansatt/meldinger/{conversation.id}").get_data(as_text=True)
    assert "forelder, på vegne av Ola" in page and "Kari Nordmann" in page
    # Kari reads her own message as "Du, på vegne av Ola", not "Du forelder, …".
    mine = client.get(f"/meldinger/{conversation.id}").get_data(as_text=True)
    assert "på vegne av Ola" in mine and "forelder, på vegne av" not in mine


# -- nobody reaches what is not theirs ----------------------------------------------------------------


def test_id_swapping_finds_nothing_and_is_audited(client, login_as, kari, per, gp):
    factories.gp_of(per.person, gp)
    pers = factories.conversation(per, per.person, gp, body="Pers hemmelighet")
    login_as(kari)
    token = csrf_from(client, "/meldinger")
    for response in (
        client.get(f"/meldinger/{pers.id}"),
        client.get(f"/meldinger/{pers.id}/nye?rev=0"),
        client.get(f"/meldinger/{pers.id}/vedlegg/1"),
        client.post(
            f"/meldinger/{pers.id}", data={"csrf_token": token, "body": "hei"}, content_type="multipart/form-data"
        ),
        client.post(f"/meldinger/utkast/{pers.id}", data={"csrf_token": token, "body": "hei"}),
        client.get("/meldinger/999999"),
    ):
        # A poll is told to stop asking (286, htmx's "stop polling"), the rest find nothing.
        assert response.status_code == (286 if "/nye" in response.request.path else 404)
        assert "Pers hemmelighet" not in response.get_data(as_text=True)
    assert _count(Message) == 1 and _count(MessageDraft) == 0
    denied = db.session.scalars(select(AuditEvent).where(AuditEvent.outcome == "denied")).all()
    assert len(denied) == 6
    assert all(a.actor_user_id == kari.id for a in denied)


def test_message_text_is_escaped_on_every_page(client, app, login_as, kari, gp, dr_aune):
    payload = '<script>alert(1)</script><img src=x onerror=alert(2)><div hx-get="/logg-ut" hx-trigger="load">x</div>'
    conversation = factories.conversation(kari, kari.person, gp, body=payload, subject='<b hx-post="/x">Emne</b>')
    login_as(kari)
    staff_client = app.test_client()
    login_as(dr_aune, staff_client)
    for html in (
        client.get(f"/meldinger/{conversation.id}").get_data(as_text=True),
        client.get("/meldinger").get_data(as_text=True),
        staff_client.get(f"/ansatt/meldinger/{conversation.id}").get_data(as_text=True),
        staff_client.get("/ansatt/meldinger").get_data(as_text=True),
    ):
        assert "<script>alert" not in html and "<img src=x" not in html and '<div hx-get="/logg-ut"' not in html
        assert "<b hx-post" not in html
        assert "&lt;" in html


def test_a_parent_taps_the_notice_of_an_answer_and_lands_in_the_childs_conversation(
    client, app, login_as, kari, ola, gp, dr_aune
):
    factories.parent_of(kari, ola)
    factories.gp_of(ola, gp)
    conversation = factories.conversation(kari, ola, gp, subject="Ola har feber")
    answer_as(app, dr_aune, conversation.id, "Kom til legevakten om feberen stiger.")
    notification = db.session.scalars(select(Notification)).one()
    assert notification.account_id == kari.id and notification.subject_person_id == ola.id
    login_as(kari)
    tap = client.get(f"/varsler/{notification.token}")
    assert tap.headers["Location"] == f"/meldinger/{conversation.id}"
    page = client.get(tap.headers["Location"]).get_data(as_text=True)
    assert "Kom til legevakten om feberen stiger." in page


def test_a_flood_of_messages_is_stopped_and_refusals_do_not_count(app, client, login_as, kari, gp):
    app.config["MESSAGE_LIMIT_PER_ACCOUNT"], before = "2 per hour", app.config["MESSAGE_LIMIT_PER_ACCOUNT"]
    try:
        login_as(kari)
        assert _send(client, gp, body="x" * 2001).status_code == 400  # refused by the form: never counted
        assert _send(client, gp, subject="En", files=[(io.BytesIO(b"<html>"), "a.jpg")]).status_code == 409
        assert _send(client, gp, subject="To").status_code == 303
        assert _send(client, gp, subject="Tre").status_code == 303
        third = _send(client, gp, subject="Fire")
        assert third.status_code == 409
        assert "Du har sendt mange meldinger på kort tid." in third.get_data(as_text=True)
        assert db.session.scalars(select(Conversation.subject).order_by(Conversation.id)).all() == ["To", "Tre"]
    finally:
        app.config["MESSAGE_LIMIT_PER_ACCOUNT"] = before


def test_a_new_conversation_refers_only_to_one_with_the_same_unit(client, login_as, kari, gp):
    other = factories.message_unit("Hjertepoliklinikken", kind=factories.OrganisationKind.HOSPITAL)
    factories.gp_of(kari.person, other)
    elsewhere = factories.conversation(kari, kari.person, other, subject="Hjertesak")
    login_as(kari)
    form = client.get(f"/meldinger/ny/{gp.id}").get_data(as_text=True)
    assert "Hjertesak" not in form
    response = _send(client, gp, refers_to=str(elsewhere.id))
    assert response.status_code == 400
    assert db.session.scalar(select(func.count()).select_from(Conversation)) == 1


def test_an_autosave_that_arrives_after_the_send_does_not_bring_the_text_back(client, login_as, kari, gp):
    login_as(kari)
    assert _send(client, gp, body="Hei! Skal jeg øke dosen?").status_code == 303
    token = csrf_from(client, "/meldinger")
    late = client.post(
        "/meldinger/utkast/0",
        data={"csrf_token": token, "unit": gp.id, "subject": "Blodtrykket", "body": "Hei! Skal jeg øke dosen?"},
        headers={"HX-Request": "true"},
    )
    assert late.status_code == 204
    assert _count(MessageDraft) == 0


def test_saving_ones_own_draft_is_not_an_audited_read(client, login_as, kari, gp):
    login_as(kari)
    token = csrf_from(client, f"/meldinger/ny/{gp.id}")
    before = _count(AuditEvent)
    for text in ("H", "Hei", "Hei, jeg"):
        client.post("/meldinger/utkast/0", data={"csrf_token": token, "unit": gp.id, "body": text})
    assert _count(AuditEvent) == before and _count(MessageDraft) == 1


def test_a_new_message_to_another_unit_keeps_the_first_units_draft(client, login_as, kari, gp):
    other = factories.message_unit("Helsestasjonen")
    factories.gp_of(kari.person, other)
    login_as(kari)
    token = csrf_from(client, f"/meldinger/ny/{gp.id}")
    client.post(
        "/meldinger/utkast/0", data={"csrf_token": token, "unit": gp.id, "subject": "Resept", "body": "Til legen"}
    )
    client.post("/meldinger/utkast/0", data={"csrf_token": token, "unit": other.id, "body": "Til helsestasjonen"})
    assert _count(MessageDraft) == 2
    assert "Til legen" in client.get(f"/meldinger/ny/{gp.id}").get_data(as_text=True)
    assert "Til helsestasjonen" in client.get(f"/meldinger/ny/{other.id}").get_data(as_text=True)
    listing = client.get("/meldinger").get_data(as_text=True)
    assert listing.count("Fortsett å skrive") == 2 and "Helsestasjonen" in listing
    # Sending to one leaves the other's draft.
    _send(client, gp, body="Til legen")
    assert "Til helsestasjonen" in client.get(f"/meldinger/ny/{other.id}").get_data(as_text=True)
    assert "Til legen" not in client.get(f"/meldinger/ny/{gp.id}").get_data(as_text=True)


def test_having_written_with_a_unit_lets_the_patient_write_again(kari, gp):
    from app.people.models import UnitRelation

    unit = factories.message_unit("Tildelingskontoret")
    factories.gp_of(kari.person, unit)
    factories.conversation(kari, kari.person, unit)
    db.session.execute(UnitRelation.__table__.delete().where(UnitRelation.care_unit_id == unit.id))
    db.session.commit()
    choices = {c.unit.id: c.relation for c in services.units_for(kari.person)}
    assert choices[unit.id] == "conversation"
