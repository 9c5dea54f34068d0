"""Demo messages: which units take messages, patients' GP offices and referrals, ready answers,
and conversations in every state — Kari's own, one she wrote for Ola, and a busy GP inbox.

Rows are written as the services would leave them (the high-water marks and revision included),
with times in the past, so the pages show read, answered, waiting and closed conversations.
"""

from __future__ import annotations

import io
import random
from datetime import datetime, timedelta

from PIL import Image, ImageDraw, ImageFilter
from sqlalchemy import select

from app import clock
from app.auth.models import User
from app.db import db
from app.demo.lookup import account as staff
from app.demo.lookup import person, unit
from app.messages import attachments
from app.messages.models import (
    Attachment,
    Conversation,
    ConversationState,
    Message,
    MessageInbox,
    MessageTemplate,
    Topic,
)
from app.people.models import CareUnit, Organisation, OrganisationKind, Person, UnitRelation, UnitRelationKind

# Hospital units that take messages, and their promised answer time in working days.
HOSPITAL_INBOXES = {
    "Hjertemedisinsk poliklinikk": 5,
    "Kreftklinikken": 3,
    "Barne- og ungdomsklinikken": 5,
    "Ortopedisk poliklinikk": 5,
    "Kvinneklinikken": 5,
}
TEMPLATES = {
    "Fastlegene": [
        ("Resept fornyet", "Hei! Resepten er fornyet og ligger klar på apoteket. Hilsen legekontoret"),
        (
            "Trenger time",
            "Hei! Dette bør vi se på sammen. Bestill en time hos fastlegen under Timer, "
            "eller ring oss, så finner vi en tid.",
        ),
        ("Prøvesvar normale", "Hei! Prøvesvarene dine er normale, og vi gjør ikke noe mer nå."),
        (
            "Sykmelding",
            "Hei! Sykmeldingen er forlenget, og du finner den hos NAV. Ta kontakt om du ikke blir bedre.",
        ),
    ],
    "Hjertemedisinsk poliklinikk": [
        (
            "Kontakt fastlegen",
            "Hei! Dette spørsmålet hører hjemme hos fastlegen din. Ta kontakt med legekontoret ditt.",
        ),
    ],
}
OTHER_SUBJECTS = [
    (Topic.PRESCRIPTION, "Fornye resept på Levaxin", "Hei, kan dere fornye resepten min på Levaxin 100 mikrogram?"),
    (Topic.SICK_NOTE, "Forlenge sykmelding", "Jeg er fortsatt dårlig i ryggen. Kan sykmeldingen forlenges en uke?"),
    (Topic.PRACTICAL, "Attest til idrettslaget", "Trenger en legeattest for å spille fotball. Hvordan gjør jeg det?"),
    (Topic.TREATMENT, "Bivirkninger av ny medisin", "Har fått vondt i magen etter at jeg begynte på ny medisin."),
    (Topic.OTHER, "Vaksine før reise", "Vi skal til Thailand i mars. Hvilke vaksiner trenger vi?"),
    (Topic.TREATMENT, "Blodprøvesvar", "Har jeg fått svar på blodprøven fra forrige uke?"),
    (Topic.PRACTICAL, "Bytte time", "Kan jeg flytte timen min på torsdag til neste uke?"),
]


def rash_photo() -> bytes:
    """A made-up photo of a rash on an arm (no real person in it)."""
    rng = random.Random(7)
    image = Image.new("RGB", (1200, 900), (226, 184, 160))
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x, y, r = rng.randint(250, 950), rng.randint(200, 700), rng.randint(8, 30)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(205, 95, 90))
    image = image.filter(ImageFilter.GaussianBlur(4))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=88)
    return out.getvalue()


class _Writer:
    """Conversations with messages at given times, their marks kept as the services keep them."""

    def __init__(self) -> None:
        self.stored = attachments.Stored()

    def start(
        self,
        person: Person,
        unit: CareUnit,
        author: User,
        topic: Topic,
        subject: str,
        at: datetime,
        *,
        refers_to: Conversation | None = None,
    ) -> Conversation:
        conversation = Conversation(
            person_id=person.id,
            care_unit_id=unit.id,
            organisation_id=unit.organisation_id,
            topic=topic,
            subject=subject,
            state=ConversationState.NEW,
            started_by_id=author.id,
            refers_to=refers_to,
            created_at=at,
            last_message_at=at,
        )
        db.session.add(conversation)
        return conversation

    def write(
        self,
        conversation: Conversation,
        author: User,
        body: str,
        at: datetime,
        *,
        staff: bool = False,
        relation: str | None = None,
        files: list[tuple[str, bytes]] = (),  # type: ignore[assignment]
    ) -> Message:
        message = Message(
            conversation=conversation,
            author_id=author.id,
            author_name=author.display_name,
            from_staff=staff,
            on_behalf=relation is not None,
            relation_label=relation,
            body=body,
            created_at=at,
        )
        for name, data in files:
            message.attachments.append(Attachment(**attachments.store(attachments.check(name, data), self.stored)))
        db.session.add(message)
        db.session.flush()
        conversation.last_message_at = at
        conversation.last_message_id = message.id
        conversation.revision = (conversation.revision or 0) + 1
        if staff:
            conversation.last_staff_message_id = message.id
            conversation.team_seen_message_id = message.id
            conversation.assigned_to_id = conversation.assigned_to_id or author.id
            conversation.state = ConversationState.WAITING
            conversation.waiting_since = None
        else:
            conversation.patient_seen_message_id = message.id
            conversation.state = ConversationState.OPEN if conversation.assigned_to_id else ConversationState.NEW
            conversation.waiting_since = conversation.waiting_since or at
        return message

    @staticmethod
    def read_by_team(conversation: Conversation, by: User | None = None) -> None:
        conversation.team_seen_message_id = conversation.last_message_id
        if by is not None:
            conversation.assigned_to_id = by.id
            if conversation.state is ConversationState.NEW:
                conversation.state = ConversationState.OPEN

    @staticmethod
    def read_by_patient(conversation: Conversation) -> None:
        conversation.patient_seen_message_id = conversation.last_message_id

    @staticmethod
    def close(conversation: Conversation, by: User, at: datetime) -> None:
        conversation.state = ConversationState.CLOSED
        conversation.closed_at = at
        conversation.closed_by_id = by.id
        conversation.waiting_since = None


def build(rng: random.Random) -> None:
    now = clock.utcnow()

    # Which units take messages.
    for care_unit, kind in db.session.execute(
        select(CareUnit, Organisation.kind).join(Organisation, Organisation.id == CareUnit.organisation_id)
    ):
        if kind is OrganisationKind.GP_OFFICE:
            db.session.add(
                MessageInbox(
                    care_unit_id=care_unit.id,
                    accepts_messages=True,
                    answer_days=3,
                    info="Legekontoret leser meldinger hverdager kl. 08–15.",
                    phone="73 52 00 00",
                )
            )
        elif kind is OrganisationKind.HEALTH_STATION:
            db.session.add(MessageInbox(care_unit_id=care_unit.id, accepts_messages=True, answer_days=2))
        elif kind is OrganisationKind.HOSPITAL:
            days = HOSPITAL_INBOXES.get(care_unit.name)
            db.session.add(
                MessageInbox(
                    care_unit_id=care_unit.id,
                    accepts_messages=days is not None,
                    answer_days=days or 5,
                    info=None if days else "Ring poliklinikken på hverdager kl. 08–15.",
                    phone=None if days else "72 57 30 00",
                )
            )
        elif care_unit.name == "Tildelingskontoret":
            db.session.add(MessageInbox(care_unit_id=care_unit.id, accepts_messages=True, answer_days=10))

    # Everyone has a GP office; the standing family and Per have Lade legesenter.
    lade = unit("Lade legesenter", "Fastlegene")
    offices = list(
        db.session.scalars(
            select(CareUnit)
            .join(Organisation)
            .where(Organisation.kind == OrganisationKind.GP_OFFICE)
            .order_by(CareUnit.id)
        )
    )
    # HER-ids, as the address register gives them: a GP list feed names the office by it.
    for number, office in enumerate(offices, start=81000):
        office.her_id = str(number)
    kari, ola, ingrid, per, nora = (
        person("Kari", "Nordmann"),
        person("Ola", "Nordmann"),
        person("Ingrid", "Nordmann"),
        person("Per", "Hansen"),
        person("Nora", "Berg"),
    )
    standing = {p.id for p in (kari, ola, ingrid, per, nora)}
    everyone = list(db.session.scalars(select(Person).order_by(Person.id)))
    for p in everyone:
        office = lade if p.id in standing or rng.random() < 0.3 else rng.choice(offices)
        db.session.add(UnitRelation(person_id=p.id, care_unit_id=office.id, kind=UnitRelationKind.GP))
    orthopaedics = unit("St. Olavs hospital", "Ortopedisk poliklinikk")
    db.session.add(UnitRelation(person_id=per.id, care_unit_id=orthopaedics.id, kind=UnitRelationKind.REFERRAL))

    # Ready answers.
    for unit_name, rows in TEMPLATES.items():
        targets = (
            [lade] + [u for u in offices if u.id != lade.id]
            if unit_name == "Fastlegene"
            else [unit("St. Olavs hospital", unit_name)]
        )
        for target in targets:
            for title, body in rows:
                db.session.add(MessageTemplate(care_unit_id=target.id, title=title, body=body))

    users = {u.person_id: u for u in db.session.scalars(select(User).where(User.person_id.is_not(None)))}
    aune, lund = staff("fastlege.aune"), staff("dr.lund")
    heart = unit("St. Olavs hospital", "Hjertemedisinsk poliklinikk")
    w = _Writer()
    k = users[kari.id]

    # Kari: a renewed prescription, closed; a question to the heart clinic, answered yesterday
    # (not read yet); a photo of a rash sent this morning; a message she wrote for Ola.
    old = w.start(kari, lade, k, Topic.PRESCRIPTION, "Fornye blodtrykksmedisin", now - timedelta(days=24, hours=3))
    w.write(old, k, "Hei! Kan dere fornye resepten på Amlodipin 5 mg? Jeg har tabletter til fredag.", old.created_at)
    w.read_by_team(old, aune)
    w.write(
        old,
        aune,
        "Hei Kari! Resepten er fornyet og ligger klar på apoteket. Husk kontroll av blodtrykket hos oss i vår.\n\n"
        "Hilsen Siri Aune, fastlege",
        now - timedelta(days=23, hours=6),
        staff=True,
    )
    w.read_by_patient(old)
    w.close(old, aune, now - timedelta(days=23, hours=6))

    heart_q = w.start(kari, heart, k, Topic.TREATMENT, "Svimmel etter økt dose", now - timedelta(days=2, hours=5))
    w.write(
        heart_q,
        k,
        "Hei. Etter at dosen ble økt på kontrollen, blir jeg svimmel når jeg reiser meg om morgenen. "
        "Er det normalt, eller bør jeg gjøre noe?",
        heart_q.created_at,
    )
    w.read_by_team(heart_q, lund)
    w.write(
        heart_q,
        lund,
        "Hei Kari. Det er vanlig de første ukene. Reis deg rolig, og drikk godt. Mål blodtrykket morgen og "
        "kveld i en uke, og skriv verdiene i Målinger. Blir det ikke bedre, ring oss.\n\nMarte Lund, lege",
        now - timedelta(hours=20),
        staff=True,
    )

    rash = w.start(kari, lade, k, Topic.TREATMENT, "Utslett på armen", now - timedelta(hours=3, minutes=12))
    w.write(
        rash,
        k,
        "Jeg har fått et kløende utslett på underarmen de siste tre dagene. Bilde er vedlagt. "
        "Trenger jeg time, eller kan jeg bruke en krem?",
        rash.created_at,
        files=[("utslett.jpg", rash_photo())],
    )

    for_ola = w.start(ola, lade, k, Topic.TREATMENT, "Ola har hatt feber i tre dager", now - timedelta(days=1, hours=2))
    w.write(
        for_ola,
        k,
        "Ola (8) har hatt feber rundt 38,5 i tre dager og hoster. Han spiser og drikker. Bør han sees?",
        for_ola.created_at,
        relation="parent",
    )
    w.read_by_team(for_ola, aune)

    # A busy GP inbox: other patients of Lade legesenter, in every state.
    lade_patients = [
        p for p in everyone if p.id not in standing and p.id in users and p.age_on(clock.today_in_norway()) >= 18
    ][:30]
    for i, patient in enumerate(lade_patients):
        author = users[patient.id]
        topic, subject, body = OTHER_SUBJECTS[i % len(OTHER_SUBJECTS)]
        started = now - timedelta(days=rng.randint(0, 12), hours=rng.randint(0, 10), minutes=rng.randint(0, 59))
        db.session.add(UnitRelation(person_id=patient.id, care_unit_id=lade.id, kind=UnitRelationKind.FOLLOW_UP))
        conversation = w.start(patient, lade, author, topic, subject, started)
        w.write(conversation, author, body, started)
        roll = rng.random()
        if roll < 0.35:
            continue  # new, nobody has it yet
        w.read_by_team(conversation, aune)
        if roll < 0.55:
            continue  # taken, not answered yet
        w.write(
            conversation,
            aune,
            "Takk for meldingen. " + TEMPLATES["Fastlegene"][i % 4][1],
            started + timedelta(hours=5),
            staff=True,
        )
        if roll > 0.8:
            w.read_by_patient(conversation)
            w.close(conversation, aune, started + timedelta(hours=5))
    db.session.flush()
