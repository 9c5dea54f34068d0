"""The staff inbox: a unit's views, taking and giving conversations, templates, answering and
closing, and that staff reach only their own units' conversations."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app import clock
from app.access.models import AuditEvent
from app.auth.models import Role
from app.db import db
from app.messages.models import Conversation, ConversationState, MessageTemplate
from app.notify.models import Event
from tests import factories
from tests.conftest import csrf_from, write_as


@pytest.fixture
def gp(gp, per):
    """Kari's GP office (tests/conftest.py), Per's too."""
    factories.gp_of(per.person, gp)
    return gp


@pytest.fixture
def secretary(gp):
    user = factories.staff("sekretaer.lie", "Helsesekretær Lie", Role.CLERK)
    factories.member_of(user, gp)
    return user


@pytest.fixture
def elsewhere():
    """A clinician at another unit."""
    unit = factories.message_unit("Byåsen legesenter")
    user = factories.staff("dr.byasen", "Dr. Ivar Moe", Role.CLINICIAN)
    factories.member_of(user, unit)
    return user


def _post(client, url, **data):  # type: ignore[no-untyped-def]
    token = csrf_from(client, "/ansatt/meldinger")
    return client.post(url, data={"csrf_token": token, **data}, content_type="multipart/form-data")


def _reload(conversation: Conversation) -> Conversation:
    db.session.expire_all()
    return db.session.get(Conversation, conversation.id)


def test_views_show_the_units_conversations_and_each_listed_patient_is_audited(
    client, login_as, kari, per, gp, dr_aune, elsewhere
):
    a = factories.conversation(kari, kari.person, gp, subject="Karis sak")
    factories.conversation(per, per.person, gp, subject="Pers sak")
    other_unit = db.session.scalars(
        select(factories.CareUnit).where(factories.CareUnit.name == "Byåsen legesenter team")
    ).one()
    factories.gp_of(kari.person, other_unit)
    factories.conversation(kari, kari.person, other_unit, subject="Til et annet kontor")
    login_as(dr_aune)
    html = client.get("/ansatt/meldinger").get_data(as_text=True)
    assert "Karis sak" in html and "Pers sak" in html and "Til et annet kontor" not in html
    assert "Kari Nordmann" in html and "Sendt, venter på svar" in html
    listed = db.session.scalars(
        select(AuditEvent.subject_person_id)
        .where(AuditEvent.action == "list_inbox")
        .order_by(AuditEvent.subject_person_id)
    ).all()
    assert listed == sorted([kari.person_id, per.person_id])
    assert "Ingen nye" not in html
    # Take one: it leaves "Nye" for "Mine".
    _post(client, f"/ansatt/meldinger/{a.id}/tildel", meg="1")
    assert _reload(a).state is ConversationState.OPEN and _reload(a).assigned_to_id == dr_aune.id
    assert "Karis sak" not in client.get("/ansatt/meldinger?visning=ny").get_data(as_text=True)
    assert "Karis sak" in client.get("/ansatt/meldinger?visning=mine").get_data(as_text=True)


def test_give_to_a_colleague_and_back_to_the_unit(client, login_as, kari, gp, dr_aune, secretary, elsewhere):
    c = factories.conversation(kari, kari.person, gp)
    login_as(secretary)  # a clerk sorts the unit's messages
    assert _post(client, f"/ansatt/meldinger/{c.id}/tildel", to=str(dr_aune.id)).status_code == 303
    assert _reload(c).assigned_to_id == dr_aune.id
    # Someone outside the unit cannot be given it.
    assert _post(client, f"/ansatt/meldinger/{c.id}/tildel", to=str(elsewhere.id)).status_code == 400
    assert _reload(c).assigned_to_id == dr_aune.id
    returned = _post(client, f"/ansatt/meldinger/{c.id}/tildel", to="")
    assert _reload(c).assigned_to_id is None and _reload(c).state is ConversationState.NEW
    page = client.get(returned.headers["Location"]).get_data(as_text=True)
    assert "Samtalen er lagt tilbake i Nye" in page and "Samtalen er tildelt" not in page


def test_a_template_fills_the_answer_and_only_the_units_own(client, login_as, kari, gp, dr_aune, elsewhere):
    c = factories.conversation(kari, kari.person, gp, topic="prescription")
    mine = MessageTemplate(
        care_unit_id=gp.id, title="Resept fornyet", body="Resepten er fornyet og ligger klar på apoteket."
    )
    theirs = MessageTemplate(
        care_unit_id=elsewhere.memberships[0].care_unit_id, title="Fremmed", body="Fra et annet kontor"
    )
    db.session.add_all([mine, theirs])
    db.session.commit()
    login_as(dr_aune)
    page = client.get(f"/ansatt/meldinger/{c.id}").get_data(as_text=True)
    assert "Resept fornyet" in page and "Fremmed" not in page
    filled = client.get(f"/ansatt/meldinger/{c.id}?mal={mine.id}").get_data(as_text=True)
    assert "Resepten er fornyet og ligger klar på apoteket." in filled
    foreign = client.get(f"/ansatt/meldinger/{c.id}?mal={theirs.id}").get_data(as_text=True)
    assert "Fra et annet kontor" not in foreign
    # What was already written (autosaved as one types) stays; the template comes after it.
    token = csrf_from(client, f"/ansatt/meldinger/{c.id}")
    saved = client.post(f"/ansatt/meldinger/{c.id}/utkast", data={"csrf_token": token, "body": "Hei Kari!"})
    assert saved.status_code == 200 and "Utkast lagret" in saved.get_data(as_text=True)
    both = client.get(f"/ansatt/meldinger/{c.id}?mal={mine.id}").get_data(as_text=True)
    assert "Hei Kari!\n\nResepten er fornyet og ligger klar på apoteket." in both


def test_answer_and_close_in_one_then_the_patient_can_only_read(client, app, login_as, kari, gp, dr_aune):
    c = factories.conversation(kari, kari.person, gp)
    login_as(dr_aune)
    response = _post(client, f"/ansatt/meldinger/{c.id}/svar", body="Dette er avklart.", close="y")
    assert response.status_code == 303
    c = _reload(c)
    assert c.state is ConversationState.CLOSED and c.closed_by_id == dr_aune.id and c.waiting_since is None
    assert db.session.scalar(select(func.count()).select_from(Event)) == 1
    assert "Avsluttet" in client.get("/ansatt/meldinger?visning=lukket").get_data(as_text=True)
    # Once closed, no more answers.
    refused = _post(client, f"/ansatt/meldinger/{c.id}/svar", body="En ting til")
    assert refused.status_code == 409 or "Samtalen er avsluttet" in refused.get_data(as_text=True)


def test_closing_without_an_answer_tells_nobody(client, login_as, kari, gp, dr_aune):
    c = factories.conversation(kari, kari.person, gp)
    login_as(dr_aune)
    _post(client, f"/ansatt/meldinger/{c.id}/avslutt")
    assert _reload(c).state is ConversationState.CLOSED
    assert db.session.scalar(select(func.count()).select_from(Event)) == 0


def test_the_patient_writing_again_brings_it_back_to_whoever_has_it(client, app, login_as, kari, gp, dr_aune):
    c = factories.conversation(kari, kari.person, gp)
    login_as(dr_aune)
    _post(client, f"/ansatt/meldinger/{c.id}/svar", body="Hvor lenge har du hatt det?")
    assert _reload(c).state is ConversationState.WAITING
    assert "Venter på pasienten" in client.get("/ansatt/meldinger?visning=venter").get_data(as_text=True)
    write_as(app, kari, c.id, "I tre dager.")
    c = _reload(c)
    assert c.state is ConversationState.OPEN and c.assigned_to_id == dr_aune.id and c.waiting_since is not None
    mine = client.get("/ansatt/meldinger?visning=mine").get_data(as_text=True)
    assert "Ulest" in mine


def test_overdue_conversations_are_flagged(client, login_as, kari, gp, dr_aune, frozen_clock):
    factories.conversation(kari, kari.person, gp, subject="Venter lenge")
    frozen_clock.advance(days=8)
    login_as(dr_aune)
    assert "Over svarfristen" in client.get("/ansatt/meldinger").get_data(as_text=True)


def test_staff_of_another_unit_reach_nothing_and_each_attempt_is_audited(client, login_as, kari, gp, elsewhere):
    c = factories.conversation(kari, kari.person, gp, body="Privat")
    login_as(elsewhere)
    for response in (
        client.get(f"/ansatt/meldinger/{c.id}"),
        client.get(f"/ansatt/meldinger/{c.id}/nye?rev=0"),
        client.get(f"/ansatt/meldinger/{c.id}/vedlegg/1"),
        _post(client, f"/ansatt/meldinger/{c.id}/svar", body="Hei"),
        _post(client, f"/ansatt/meldinger/{c.id}/tildel", meg="1"),
        _post(client, f"/ansatt/meldinger/{c.id}/avslutt"),
        client.get(f"/meldinger/{c.id}"),
    ):
        assert response.status_code == (286 if "/nye" in response.request.path else 404)
        assert "Privat" not in response.get_data(as_text=True)
    assert _reload(c).state is ConversationState.NEW and _reload(c).assigned_to_id is None
    denied = db.session.scalar(
        select(func.count()).where(AuditEvent.outcome == "denied", AuditEvent.actor_user_id == elsewhere.id)
    )
    assert denied == 6  # the patient page is no way in for staff at all (no record of their own is chosen)


def test_patients_do_not_reach_the_inbox(client, login_as, kari, gp):
    c = factories.conversation(kari, kari.person, gp)
    login_as(kari)
    assert client.get("/ansatt/meldinger").status_code == 404
    assert client.get(f"/ansatt/meldinger/{c.id}").status_code == 404


def test_staff_poll_sees_a_new_patient_message(client, app, login_as, kari, gp, dr_aune):
    c = factories.conversation(kari, kari.person, gp)
    login_as(dr_aune)
    client.get(f"/ansatt/meldinger/{c.id}")
    revision = _reload(c).revision
    assert client.get(f"/ansatt/meldinger/{c.id}/nye?rev={revision}", headers={"HX-Request": "true"}).status_code == 204
    write_as(app, kari, c.id, "Glemte å si: det klør.")
    polled = client.get(f"/ansatt/meldinger/{c.id}/nye?rev={revision}", headers={"HX-Request": "true"})
    assert polled.status_code == 200 and "det klør" in polled.get_data(as_text=True)


def test_waiting_since_counts_working_days(app):
    from app.messages.services import working_days_after

    friday = clock.utcnow().replace(year=2026, month=11, day=27, hour=10, minute=0, second=0, microsecond=0)
    assert working_days_after(friday, 3).weekday() == 2  # Friday + 3 working days = Wednesday
    assert working_days_after(friday, 1) - friday >= timedelta(days=3)


def test_the_unit_sets_whether_it_takes_messages_and_its_answer_time(client, app, login_as, kari, gp, secretary):
    from app.messages.models import MessageInbox

    login_as(secretary)
    bad = _post(client, f"/ansatt/meldinger/innstillinger?enhet={gp.id}", answer_days="0", phone="ring oss")
    assert bad.status_code == 400
    html = bad.get_data(as_text=True)
    assert "Svarfristen må være mellom 1 og 30 virkedager." in html and "Skriv telefonnummeret med sifre" in html
    assert db.session.get(MessageInbox, gp.id).answer_days == 3
    ok = _post(
        client,
        f"/ansatt/meldinger/innstillinger?enhet={gp.id}",
        answer_days="2",
        info="Vi leser meldinger hverdager før kl. 12.",
        phone="73 52 00 00",
    )  # the box "takes messages" left unticked
    assert ok.status_code == 303
    db.session.expire_all()
    settings = db.session.get(MessageInbox, gp.id)
    assert (settings.accepts_messages, settings.answer_days, settings.phone) == (False, 2, "73 52 00 00")
    patient = app.test_client()
    login_as(kari, patient)
    page = patient.get("/meldinger/ny").get_data(as_text=True)
    assert "Tar ikke imot meldinger her." in page and "Vi leser meldinger hverdager før kl. 12." in page


def test_templates_are_added_and_deleted_by_the_units_own_staff(client, login_as, gp, dr_aune, elsewhere, app):
    login_as(dr_aune)
    assert _post(client, f"/ansatt/meldinger/maler?enhet={gp.id}", title="", body="").status_code == 400
    _post(client, f"/ansatt/meldinger/maler?enhet={gp.id}", title="Time hos oss", body="Bestill en time under Timer.")
    template = db.session.scalars(select(MessageTemplate)).one()
    assert (template.care_unit_id, template.title) == (gp.id, "Time hos oss")
    other = app.test_client()
    login_as(elsewhere, other)
    token = csrf_from(other, "/ansatt/meldinger")
    assert other.post(f"/ansatt/meldinger/maler/{template.id}/slett", data={"csrf_token": token}).status_code == 404
    assert (
        other.post(
            f"/ansatt/meldinger/maler?enhet={gp.id}", data={"csrf_token": token, "title": "x", "body": "y"}
        ).status_code
        == 404
    )
    _post(client, f"/ansatt/meldinger/maler/{template.id}/slett")
    assert db.session.scalar(select(func.count()).select_from(MessageTemplate)) == 0


@pytest.fixture
def busy_app(tmp_path_factory, database_url):  # type: ignore[no-untyped-def]
    """The same database with a connection for each of twelve writers at once."""
    from app import create_app
    from app.config import TestConfig

    class Config(TestConfig):
        INSTANCE_PATH = str(tmp_path_factory.mktemp("busy"))
        SQLALCHEMY_DATABASE_URI = database_url
        SQLALCHEMY_ENGINE_OPTIONS = {"pool_size": 12, "max_overflow": 0, "pool_pre_ping": False}

    busy = create_app(Config)
    yield busy
    with busy.app_context():
        db.engine.dispose()


def test_patient_and_team_writing_at_once_leave_every_mark_true(app, busy_app, kari, gp, dr_aune):
    """Ten writers on one conversation at the same moment (the patient's side and the team's):
    each takes its turn on the conversation's row, so no mark goes backwards, no step of the
    revision is lost, and the state is what the last message says."""
    import threading

    from app.access import policy
    from app.auth.models import User
    from app.messages import attachments, services
    from app.messages.models import Message

    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time; the race is PostgreSQL's")
    c = factories.conversation(kari, kari.person, gp)
    base = c.revision
    # Plain ids for the threads: touching the test's own objects there would use its session.
    ids = {"conversation": c.id, "staff": dr_aune.id, "patient": kari.id}
    start = threading.Barrier(10)
    failures: list[BaseException] = []

    def write(i: int) -> None:
        with busy_app.test_request_context():
            try:
                conversation = db.session.get(Conversation, ids["conversation"])
                start.wait(timeout=30)
                if i % 2:
                    services.reply_as_staff(
                        db.session.get(User, ids["staff"]), conversation, f"svar {i}", [], False, attachments.Stored()
                    )
                else:
                    patient = db.session.get(User, ids["patient"])
                    decision = policy._decide_messages(patient, patient.person)
                    services.reply_as_patient(
                        patient, patient.person, decision, conversation, f"spørsmål {i}", [], attachments.Stored()
                    )
                db.session.commit()
            except BaseException as error:
                failures.append(error)
                db.session.rollback()
            finally:
                db.session.remove()

    threads = [threading.Thread(target=write, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert failures == []
    c = _reload(c)
    messages = db.session.scalars(select(Message).where(Message.conversation_id == c.id).order_by(Message.id)).all()
    assert len(messages) == 11
    last = messages[-1]
    assert c.last_message_id == last.id
    assert c.last_staff_message_id == max(m.id for m in messages if m.from_staff)
    assert c.revision == base + 10
    if last.from_staff:
        assert c.state is ConversationState.WAITING and c.waiting_since is None
    else:
        assert c.state is ConversationState.OPEN and c.waiting_since is not None


def test_an_answer_to_a_page_the_patient_has_written_on_since_is_refused_and_kept(
    client, app, login_as, kari, gp, dr_aune
):
    """The patient writes again while the doctor writes: sending would mark the new message read
    and answered though nobody saw it. It is refused, the text is kept, the new message shown."""
    c = factories.conversation(kari, kari.person, gp)
    login_as(dr_aune)
    page = client.get(f"/ansatt/meldinger/{c.id}").get_data(as_text=True)
    seen = re.search(r'name="seen" id="reply-seen" value="(\d+)"', page).group(1)
    write_as(app, kari, c.id, "Nå har jeg feber også.")
    before = _reload(c)
    refused = _post(client, f"/ansatt/meldinger/{c.id}/svar", body="Ta Paracet ved behov.", seen=seen)
    assert refused.status_code == 409
    html = refused.get_data(as_text=True)
    assert "Pasienten har skrevet en ny melding mens du skrev." in html
    assert "Ta Paracet ved behov." in html and "Nå har jeg feber også." in html
    after = _reload(c)
    assert after.state is ConversationState.NEW and after.last_staff_message_id == 0
    assert after.last_message_id == before.last_message_id
    # Closing from the old page is refused the same way; from the new page it goes through.
    assert _post(client, f"/ansatt/meldinger/{c.id}/avslutt", seen=seen).status_code == 409
    assert _reload(c).state is ConversationState.NEW
    assert (
        _post(client, f"/ansatt/meldinger/{c.id}/svar", body="Ta Paracet.", seen=str(after.last_message_id)).status_code
        == 303
    )
    assert _reload(c).state is ConversationState.WAITING


def test_a_hand_made_cursor_without_a_zone_gives_the_first_page(client, login_as, kari, gp, dr_aune):
    factories.conversation(kari, kari.person, gp)
    login_as(dr_aune)
    assert client.get("/ansatt/meldinger?etter=2026-01-01T00:00:00_5").status_code == 200
    login_as(kari)
    assert client.get("/meldinger?for=2026-01-01T00:00:00_5").status_code == 200
    assert client.get("/meldinger?for=not-a-time_x").status_code == 200


def test_all_unanswered_shows_what_colleagues_hold_too(client, login_as, kari, per, gp, dr_aune, secretary):
    a = factories.conversation(kari, kari.person, gp, subject="Hos Aune")
    factories.conversation(per, per.person, gp, subject="Ingen har den")
    login_as(dr_aune)
    _post(client, f"/ansatt/meldinger/{a.id}/tildel", meg="1")
    login_as(secretary)
    assert "Hos Aune" not in client.get("/ansatt/meldinger?visning=ny").get_data(as_text=True)
    everything = client.get("/ansatt/meldinger?visning=ubesvart").get_data(as_text=True)
    assert "Hos Aune" in everything and "Ingen har den" in everything and "Hos Dr. Siri Aune" in everything
