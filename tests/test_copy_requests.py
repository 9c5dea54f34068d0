"""A copy of the record (innsyn, pbrl. § 5-1): the patient asks an organisation for a copy of the
whole record or a part; staff of that organisation see the queue with the 30-day deadline and
answer with a PDF (a released document in the record, with an event) or refuse with a reason.
Bad input writes nothing, staff reach only their own organisations' requests, and every staff
read is audited."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from pypdf import PdfWriter
from sqlalchemy import func, select

from app import clock
from app.access.models import AuditEvent
from app.auth.models import Role
from app.db import db
from app.notify.models import Event, Notification
from app.people.models import OrganisationKind
from app.record.models import CopyRequest, CopyRequestState, ItemKind, RecordItem, ReleaseState
from tests import factories
from tests.conftest import csrf_from

PAGE = "/journal/kopi"
QUEUE = "/ansatt/innsyn"


def pdf(script: bool = False) -> bytes:
    """A real one-page PDF written by pypdf; with ``script``, one that runs JavaScript on opening."""
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    if script:
        from pypdf.actions import JavaScript

        writer.add_open_action(JavaScript("app.alert('hei');"))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def ask(client, **fields):  # type: ignore[no-untyped-def]
    token = csrf_from(client, PAGE)
    return client.post(PAGE, data={"csrf_token": token, **fields})


def requests_count() -> int:
    return db.session.scalar(select(func.count(CopyRequest.id)))


def copy_documents() -> list[RecordItem]:
    return list(db.session.scalars(select(RecordItem).where(RecordItem.source_type == "CopyRequest")))


@pytest.fixture
def gp_office(app):
    """Another organisation, where Kari has never been (sorted before St. Olavs by name)."""
    return factories.hospital("Byåsen legekontor", OrganisationKind.GP_OFFICE)


@pytest.fixture
def kari_at_hospital(kari, source):
    """Kari has a record at St. Olavs hospital."""
    factories.record(kari.person, source, results=2, notes=1)
    return kari


@pytest.fixture
def lund(app, dr_lund, org):
    """Dr. Lund works at St. Olavs hospital."""
    factories.works_at(dr_lund, org)
    return dr_lund


def client_for(app, user):  # type: ignore[no-untyped-def]
    c = app.test_client()
    factories.session_for(user, c)
    return c


def kari_asks(app, kari, org, **fields):  # type: ignore[no-untyped-def]
    c = client_for(app, kari)
    response = ask(c, organisation=str(org.id), **({"scope": "whole"} | fields))
    assert response.status_code == 303, response.get_data(as_text=True)
    return db.session.scalars(select(CopyRequest).order_by(CopyRequest.id.desc())).first()


def send_copy(app, staff, copy_request, data: bytes, text: str = "", filename: str = "kopi.pdf"):  # type: ignore[no-untyped-def]
    c = client_for(app, staff)
    token = csrf_from(c, f"{QUEUE}/{copy_request.id}")
    return c.post(
        f"{QUEUE}/{copy_request.id}/send",
        data={"csrf_token": token, "answer_text": text, "document": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
    )


def refuse(app, staff, copy_request, reason: str):  # type: ignore[no-untyped-def]
    c = client_for(app, staff)
    token = csrf_from(c, f"{QUEUE}/{copy_request.id}")
    return c.post(f"{QUEUE}/{copy_request.id}/avsla", data={"csrf_token": token, "reason": reason})


# -- The patient asks ---------------------------------------------------------------------------


def test_the_page_offers_the_instant_copy_and_lists_where_the_patient_has_been_first(
    client, login_as, kari_at_hospital, org, gp_office
):
    login_as(kari_at_hospital)
    html = client.get(PAGE).get_data(as_text=True)
    assert "Vil du ha en kopi med en gang?" in html
    assert "/journal/utskrift" in html and "/journal/eksport.json" in html
    # St. Olavs (where Kari has a record) before Byåsen (which sorts first by name).
    assert html.index("St. Olavs hospital") < html.index("Byåsen legekontor")
    assert "Der du har vært" in html and "Andre virksomheter" in html
    # The record's front page leads here.
    assert PAGE in client.get("/journal").get_data(as_text=True)


def test_asking_for_the_whole_record(app, client, login_as, kari_at_hospital, org):
    login_as(kari_at_hospital)
    response = ask(client, organisation=str(org.id), scope="whole")
    assert response.status_code == 303
    copy_request = db.session.scalars(select(CopyRequest)).one()
    assert copy_request.person_id == kari_at_hospital.person_id
    assert copy_request.organisation_id == org.id
    assert copy_request.whole_record is True
    assert copy_request.part_text is None
    assert copy_request.state is CopyRequestState.RECEIVED
    assert copy_request.requested_by_id == kari_at_hospital.id
    assert copy_request.requested_by_relation is None
    assert copy_request.due_on == clock.today_in_norway() + timedelta(days=app.config["COPY_REQUEST_DAYS"])
    html = client.get(PAGE).get_data(as_text=True)
    assert "Forespørselen er sendt til St. Olavs hospital" in html
    assert "Mottatt" in html and "svarfrist" in html


def test_asking_for_a_part_with_a_period(client, login_as, kari, org):
    login_as(kari)
    today = clock.today_in_norway()
    response = ask(
        client,
        organisation=str(org.id),
        scope="part",
        part_text="  Røntgen av kneet  ",
        period_from=(today - timedelta(days=400)).isoformat(),
        period_to=(today - timedelta(days=10)).strftime("%d.%m.%Y"),  # typed, Norwegian style
    )
    assert response.status_code == 303
    copy_request = db.session.scalars(select(CopyRequest)).one()
    assert copy_request.whole_record is False
    assert copy_request.part_text == "Røntgen av kneet"
    assert copy_request.period_from == today - timedelta(days=400)
    assert copy_request.period_to == today - timedelta(days=10)
    assert "Røntgen av kneet" in client.get(PAGE).get_data(as_text=True)


def test_a_part_is_ignored_when_the_whole_record_is_asked_for(client, login_as, kari, org):
    login_as(kari)
    response = ask(client, organisation=str(org.id), scope="whole", part_text="glemt", period_from="nonsens")
    assert response.status_code == 303
    copy_request = db.session.scalars(select(CopyRequest)).one()
    assert (copy_request.whole_record, copy_request.part_text, copy_request.period_from) == (True, None, None)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"organisation": ""}, "Velg hvem du vil ha kopi fra."),
        ({"organisation": "999999"}, "Velg hvem du vil ha kopi fra."),
        ({"organisation": "abc"}, "Velg hvem du vil ha kopi fra."),
        ({"scope": "everything"}, "Velg om du vil ha hele journalen eller deler av den."),
        ({"scope": "part", "part_text": "   "}, "Skriv hvilke deler av journalen du vil ha kopi av"),
        (
            {"scope": "part", "part_text": "x" * 1001},
            "Beskrivelsen er for lang: 1001 tegn. Den kan være høyst 1000 tegn.",
        ),
        ({"scope": "part", "part_text": "Notater", "period_from": "31.02.2024"}, "Skriv datoen som dag.måned.år"),
        ({"scope": "part", "part_text": "Notater", "period_from": "FUTURE"}, "Fra-datoen kan ikke være fram i tid."),
        ({"scope": "part", "part_text": "Notater", "period_to": "FUTURE"}, "Til-datoen kan ikke være fram i tid."),
        (
            {"scope": "part", "part_text": "Notater", "period_from": "2024-05-02", "period_to": "2024-05-01"},
            "Til-datoen kan ikke være før fra-datoen.",
        ),
    ],
)
def test_bad_input_says_what_is_wrong_and_writes_nothing(client, login_as, kari, org, fields, message):
    login_as(kari)
    tomorrow = (clock.today_in_norway() + timedelta(days=1)).isoformat()
    data = {"organisation": str(org.id), "scope": "whole"} | fields
    data = {k: (tomorrow if v == "FUTURE" else v) for k, v in data.items()}
    response = ask(client, **data)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in html
    assert 'class="error-summary"' in html
    assert requests_count() == 0


def test_a_second_open_request_for_the_whole_record_is_refused(client, login_as, kari, org):
    login_as(kari)
    assert ask(client, organisation=str(org.id), scope="whole").status_code == 303
    response = ask(client, organisation=str(org.id), scope="whole")
    assert response.status_code == 409
    assert "Du har allerede en forespørsel hos St. Olavs hospital som ikke er besvart." in response.get_data(
        as_text=True
    )
    assert requests_count() == 1
    # A part of it may still be asked for.
    assert ask(client, organisation=str(org.id), scope="part", part_text="Blodprøvene").status_code == 303
    assert requests_count() == 2


def test_a_parent_asks_for_a_young_child(client, login_as, kari, ola, org):
    factories.parent_of(kari, ola)
    login_as(kari)
    assert client.post("/profil", data={"csrf_token": csrf_from(client, "/"), "person": ola.id}).status_code in (
        302,
        303,
    )
    page = client.get(PAGE).get_data(as_text=True)
    assert "Du ber om kopi på vegne av Ola." in page
    assert ask(client, organisation=str(org.id), scope="whole").status_code == 303
    copy_request = db.session.scalars(select(CopyRequest)).one()
    assert copy_request.person_id == ola.id
    assert copy_request.requested_by_id == kari.id
    assert copy_request.requested_by_relation == "parent"


@pytest.mark.parametrize(("level", "allowed"), [("full", True), ("standard", False), ("read_only", False)])
def test_a_proxy_asks_only_at_the_full_level(client, login_as, kari, per, org, level, allowed):
    from app.people.models import ProxyLevel, Relation, RelationKind

    # Kari has given Per power of attorney at this level.
    db.session.add(
        Relation(holder_id=per.person_id, subject_id=kari.person_id, kind=RelationKind.PROXY, level=ProxyLevel(level))
    )
    db.session.commit()
    login_as(per)
    client.post("/profil", data={"csrf_token": csrf_from(client, "/"), "person": kari.person_id})
    if not allowed:
        assert client.get(PAGE).status_code == 404
        assert requests_count() == 0
        return
    assert ask(client, organisation=str(org.id), scope="whole").status_code == 303
    copy_request = db.session.scalars(select(CopyRequest)).one()
    assert (copy_request.person_id, copy_request.requested_by_id) == (kari.person_id, per.id)
    assert copy_request.requested_by_relation == "proxy"


def test_without_the_export_right_there_is_no_page(app, client, login_as, ingrid, org, dr_lund):
    # A 14-year-old's own login has no export right (from 16).
    login_as(ingrid)
    assert client.get(PAGE).status_code == 404
    assert ask(client, organisation=str(org.id)).status_code in (400, 404)
    assert requests_count() == 0
    # Staff have no record of their own here.
    assert client_for(app, dr_lund).get(PAGE).status_code == 404


def test_the_form_needs_its_csrf_token(client, login_as, kari, org):
    login_as(kari)
    client.get(PAGE)
    response = client.post(PAGE, data={"organisation": str(org.id), "scope": "whole"})
    assert response.status_code in (400, 403)
    assert requests_count() == 0


# -- Staff: the queue ---------------------------------------------------------------------------


def test_the_queue_counts_down_and_flags_overdue_requests(app, frozen_clock, kari, per, org, lund):
    first = kari_asks(app, kari, org)
    frozen_clock.advance(days=2)
    second = kari_asks(app, per, org)
    staff = client_for(app, lund)
    html = staff.get(QUEUE).get_data(as_text=True)
    assert "Kari Nordmann" in html and "Per Hansen" in html
    assert "28 dager igjen" in html and "30 dager igjen" in html
    assert "Hele journalen" in html
    assert "Over fristen" not in html
    assert html.index("Kari Nordmann") < html.index("Per Hansen")  # the soonest deadline first

    frozen_clock.advance(days=28)  # Kari's deadline is today
    html = client_for(app, lund).get(QUEUE).get_data(as_text=True)
    assert "Frist i dag" in html and "2 dager igjen" in html

    frozen_clock.advance(days=3)
    html = client_for(app, lund).get(QUEUE).get_data(as_text=True)
    assert "3 dager over fristen" in html and "1 dag over fristen" in html
    assert html.count('class="tag tag--overdue">Over fristen') == 2
    assert "2 forespørsler er over fristen." in html
    assert {first.id, second.id} == {r.id for r in db.session.scalars(select(CopyRequest))}


def test_each_patient_listed_is_an_audit_row(app, kari, per, org, lund):
    kari_asks(app, kari, org)
    kari_asks(app, per, org)
    client_for(app, lund).get(QUEUE)
    rows = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "list_copy_requests")).all()
    assert {r.subject_person_id for r in rows} == {kari.person_id, per.person_id}
    assert {(r.actor_user_id, r.organisation_id, r.basis, r.outcome) for r in rows} == {
        (lund.id, org.id, "care_relation", "ok")
    }


def test_the_queue_pages_twenty_at_a_time_and_has_an_answered_tab(app, org, lund):
    people = [factories.patient(f"P{i}", "Pasient", age=40, username=f"p{i}", with_totp=True) for i in range(21)]
    for person in people:
        kari_asks(app, person, org)
    html = client_for(app, lund).get(QUEUE).get_data(as_text=True)
    assert html.count('class="item-row"') == 20
    more = re.search(r'href="(/ansatt/innsyn\?[^"]*etter=[^"]+)"', html)
    assert more, "no Vis flere link"
    rest = client_for(app, lund).get(more.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert rest.count('class="item-row"') == 1
    answered = client_for(app, lund).get(f"{QUEUE}?visning=besvarte").get_data(as_text=True)
    assert "Ingen besvarte forespørsler ennå." in answered


def test_staff_of_another_organisation_see_nothing_and_get_404(app, kari, org, dr_berg):
    copy_request = kari_asks(app, kari, org)
    elsewhere = factories.hospital("Sykehuset Levanger")
    factories.works_at(dr_berg, elsewhere)
    berg = client_for(app, dr_berg)
    assert "Kari Nordmann" not in berg.get(QUEUE).get_data(as_text=True)
    assert berg.get(f"{QUEUE}/{copy_request.id}").status_code == 404
    denied = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "read_copy_request", AuditEvent.outcome == "denied")
    ).one()
    assert denied.subject_person_id == kari.person_id and denied.actor_user_id == dr_berg.id
    # Nor can they answer it.
    assert send_copy_status(app, dr_berg, copy_request) == 404
    assert db.session.get(CopyRequest, copy_request.id).state is CopyRequestState.RECEIVED
    assert berg.get(f"{QUEUE}/999999").status_code == 404


def send_copy_status(app, staff, copy_request) -> int:  # type: ignore[no-untyped-def]
    c = client_for(app, staff)
    token = csrf_from(c, "/")
    return c.post(
        f"{QUEUE}/{copy_request.id}/send",
        data={"csrf_token": token, "document": (io.BytesIO(pdf()), "kopi.pdf")},
        content_type="multipart/form-data",
    ).status_code


def test_only_clinicians_and_clerks_have_the_queue(app, kari, org):
    clerk = factories.staff("merkantil.strand", "Tove Strand", Role.CLERK)
    factories.works_at(clerk, org)
    admin = factories.staff("admin", "Admin", Role.ADMINISTRATOR)
    kari_asks(app, kari, org)
    assert "Kari Nordmann" in client_for(app, clerk).get(QUEUE).get_data(as_text=True)
    assert client_for(app, admin).get(QUEUE).status_code == 404
    assert client_for(app, kari).get(QUEUE).status_code == 404


def test_reading_a_request_is_audited_and_shown_to_the_patient(app, kari, org, lund):
    copy_request = kari_asks(app, kari, org, scope="part", part_text="Notatene fra mai")
    html = client_for(app, lund).get(f"{QUEUE}/{copy_request.id}").get_data(as_text=True)
    assert "Notatene fra mai" in html and "Send kopien" in html and "Avslå" in html
    row = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "read_copy_request")).one()
    assert (row.subject_person_id, row.actor_user_id, row.organisation_id, row.basis, row.outcome) == (
        kari.person_id,
        lund.id,
        org.id,
        "care_relation",
        "ok",
    )
    assert row.object_type == "copy_request" and row.object_id == str(copy_request.id)
    seen = client_for(app, kari).get("/journal/hvem-har-sett").get_data(as_text=True)
    assert "Dr. Marte Lund" in seen


# -- Staff: the answer --------------------------------------------------------------------------


def test_sending_the_copy_makes_a_released_document_and_tells_the_patient(app, kari, org, lund):
    copy_request = kari_asks(app, kari, org)
    content = pdf()
    response = send_copy(app, lund, copy_request, content, text="Her er kopien du ba om.")
    assert response.status_code == 303
    copy_request = db.session.get(CopyRequest, copy_request.id)
    assert copy_request.state is CopyRequestState.ANSWERED
    assert copy_request.handled_by_id == lund.id
    assert copy_request.answered_at is not None
    assert copy_request.answer_text == "Her er kopien du ba om."
    (item,) = copy_documents()
    assert copy_request.document_id == item.id
    assert item.kind is ItemKind.DOCUMENT and item.person_id == kari.person_id and item.organisation_id == org.id
    assert item.release_state is ReleaseState.RELEASED and item.released_at is not None and item.announced
    assert item.title == "Kopi av journalen fra St. Olavs hospital"
    assert (item.source_system, item.source_id) == ("varde", str(copy_request.id))

    url = f"/journal/dokumenter/{item.id}"
    event = db.session.scalars(select(Event).where(Event.kind == "copy_answered")).one()
    assert (event.person_id, event.object_type, event.object_id, event.url) == (
        kari.person_id,
        "record_item",
        item.id,
        url,
    )
    notification = db.session.scalars(select(Notification).where(Notification.kind == "copy_answered")).one()
    assert notification.account_id == kari.id

    patient = client_for(app, kari)
    assert "Kopien av journalen din er klar" in patient.get("/varsler").get_data(as_text=True)
    assert "Kopi av journalen fra St. Olavs hospital" in patient.get(url).get_data(as_text=True)
    download = patient.get(f"{url}/fil")
    assert download.status_code == 200
    assert download.headers["Content-Type"] == "application/pdf"
    assert download.data == content
    page = patient.get(PAGE).get_data(as_text=True)
    assert "Besvart" in page and url in page and "Her er kopien du ba om." in page


def test_a_childs_copy_is_announced_to_the_parent_by_first_name(app, kari, ola, org, lund):
    factories.parent_of(kari, ola)
    c = client_for(app, kari)
    c.post("/profil", data={"csrf_token": csrf_from(c, "/"), "person": ola.id})
    assert ask(c, organisation=str(org.id), scope="whole").status_code == 303
    copy_request = db.session.scalars(select(CopyRequest)).one()
    assert send_copy(app, lund, copy_request, pdf()).status_code == 303
    notification = db.session.scalars(select(Notification).where(Notification.kind == "copy_answered")).one()
    assert (notification.account_id, notification.subject_person_id) == (kari.id, ola.id)
    assert "Kopien av journalen til Ola er klar" in client_for(app, kari).get("/varsler").get_data(as_text=True)


@pytest.mark.parametrize(
    ("content", "filename", "message"),
    [
        (pdf(script=True), "kopi.pdf", "inneholder skript"),
        (b"%PDF-1.4 not really", "kopi.pdf", "kan ikke leses"),
        (b"just text", "kopi.pdf", "verken et bilde"),
    ],
)
def test_a_pdf_that_is_not_clean_is_refused_and_nothing_is_written(app, kari, org, lund, content, filename, message):
    copy_request = kari_asks(app, kari, org)
    response = send_copy(app, lund, copy_request, content, filename=filename)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert db.session.get(CopyRequest, copy_request.id).state is CopyRequestState.RECEIVED
    assert copy_documents() == []
    assert db.session.scalar(select(func.count(Event.id)).where(Event.kind == "copy_answered")) == 0


def test_a_photo_is_not_a_copy(app, kari, org, lund):
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (20, 20), (1, 2, 3)).save(out, "PNG")
    copy_request = kari_asks(app, kari, org)
    response = send_copy(app, lund, copy_request, out.getvalue(), filename="kopi.png")
    assert response.status_code == 400
    assert "Kopien må være en PDF-fil." in response.get_data(as_text=True)
    assert copy_documents() == []


def test_the_pdf_is_required(app, kari, org, lund):
    copy_request = kari_asks(app, kari, org)
    c = client_for(app, lund)
    token = csrf_from(c, f"{QUEUE}/{copy_request.id}")
    response = c.post(
        f"{QUEUE}/{copy_request.id}/send",
        data={"csrf_token": token, "answer_text": "Vedlagt."},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert "Velg PDF-filen med kopien." in response.get_data(as_text=True)
    assert db.session.get(CopyRequest, copy_request.id).state is CopyRequestState.RECEIVED


def test_refusing_with_a_reason_the_patient_reads(app, kari, org, lund):
    copy_request = kari_asks(app, kari, org)
    empty = refuse(app, lund, copy_request, "  ")
    assert empty.status_code == 400
    assert "Skriv hvorfor forespørselen avslås." in empty.get_data(as_text=True)
    assert db.session.get(CopyRequest, copy_request.id).state is CopyRequestState.RECEIVED

    response = refuse(app, lund, copy_request, "Vi har ingen journal om deg.")
    assert response.status_code == 303
    copy_request = db.session.get(CopyRequest, copy_request.id)
    assert copy_request.state is CopyRequestState.REFUSED
    assert copy_request.answer_text == "Vi har ingen journal om deg."
    assert copy_request.handled_by_id == lund.id and copy_request.document_id is None
    # She hears that there is an answer, not what it says, and the tap leads to her requests.
    [notice] = db.session.scalars(select(Notification).where(Notification.kind == "copy_refused")).all()
    assert notice.account_id == kari.id and notice.url == PAGE
    page = client_for(app, kari).get(PAGE).get_data(as_text=True)
    assert "Avslått" in page and "Vi har ingen journal om deg." in page
    assert "Besvarte" in client_for(app, lund).get(f"{QUEUE}?visning=besvarte").get_data(as_text=True)
    # Refused, the whole record may be asked for again.
    kari_asks(app, kari, org)


def test_answering_twice_is_refused_and_changes_nothing(app, kari, org, lund, dr_berg):
    copy_request = kari_asks(app, kari, org)
    assert send_copy(app, lund, copy_request, pdf(), text="Første").status_code == 303
    factories.works_at(dr_berg, org)
    again = send_copy(app, dr_berg, copy_request, pdf(), text="Andre")
    assert again.status_code == 409
    assert "Forespørselen er allerede besvart. Ingenting ble endret." in again.get_data(as_text=True)
    refused = refuse(app, dr_berg, copy_request, "For sent")
    assert refused.status_code == 409
    copy_request = db.session.get(CopyRequest, copy_request.id)
    assert copy_request.state is CopyRequestState.ANSWERED
    assert (copy_request.handled_by_id, copy_request.answer_text) == (lund.id, "Første")
    assert len(copy_documents()) == 1
    assert db.session.scalar(select(func.count(Event.id)).where(Event.kind == "copy_answered")) == 1
