"""Adult proxies (fullmakt): a patient of 16 or more gives someone of 18 or more access to their
record at one of HelsaMi's levels, by national id or by a one-time code, and can end it at any
time. What each level lets the proxy do is the access policy's (``policy.LEVEL_RIGHTS``); this
module only keeps the relations. Every refusal is a ``Refused`` with a plain message, and
nothing is written then.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import date, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from app import clock
from app.access import policy
from app.access.models import AuditEvent
from app.access.services import audit
from app.auth.models import User
from app.db import db
from app.people import services as people_services
from app.people.models import Person, ProxyInvitation, ProxyLevel, Relation, RelationKind
from app.people.nin import InvalidNin, parse_nin
from app.refusal import Refused

# No 0/O, 1/I/L: read aloud or copied from a screen without mistakes. 10 characters: ~49 bits.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 10
LONGEST_END = timedelta(days=366 * 10)


def _check_giver(giver: Person, today: date) -> None:
    if giver.age_on(today) < policy.PROXY_GIVER_MIN_AGE:
        raise Refused(_("Du må være minst %(age)s år for å gi noen fullmakt.", age=policy.PROXY_GIVER_MIN_AGE))
    if giver.is_protected:
        raise Refused(people_services.protected_message())


def _check_receiver(giver: Person, receiver: Person, today: date) -> None:
    if receiver.id == giver.id:
        raise Refused(_("Du kan ikke gi fullmakt til deg selv."))
    if receiver.age_on(today) < policy.PROXY_HOLDER_MIN_AGE:
        raise Refused(_("Den som får fullmakt, må være minst %(age)s år.", age=policy.PROXY_HOLDER_MIN_AGE))
    if receiver.is_protected or giver.is_protected:
        raise Refused(people_services.protected_message())


def _check_end(valid_until: date | None, today: date) -> None:
    if valid_until is None:
        return
    if valid_until < today:
        raise Refused(_("Sluttdatoen kan ikke være tilbake i tid."))
    if valid_until > today + LONGEST_END:
        raise Refused(
            _("Sluttdatoen kan være høyst ti år fram i tid. La feltet stå tomt for en fullmakt uten sluttdato.")
        )


def _grant(
    giver: Person, receiver: Person, level: ProxyLevel, valid_until: date | None, by: User, source: str
) -> Relation:
    """Add the relation, or renew the one there was (a revoked one, or a change of level)."""
    key = (receiver.id, giver.id, RelationKind.PROXY)
    terms = {"source": source, "now": clock.utcnow(), "by_id": by.id, "level": level, "valid_until": valid_until}
    before = people_services.existing_relation(*key)
    # The level the proxy held until now (None: they held none), so the page can say what changed.
    previous_level = before.level if before is not None and before.in_force_on(clock.today_in_norway()) else None
    try:
        with db.session.begin_nested():  # a double tap inserts once; the second renews that row
            relation = people_services.put_in_force(people_services.existing_relation(*key), *key, **terms)
    except IntegrityError:
        relation = people_services.put_in_force(people_services.existing_relation(*key), *key, **terms)
    audit(
        "proxy_granted",
        actor_user_id=by.id,
        subject_person_id=giver.id,
        object_type="relation",
        object_id=relation.id,
        basis="own",
    )
    relation.previous_level = previous_level  # type: ignore[attr-defined]
    return relation


def invite_by_national_id(
    viewer: User, giver: Person, national_id: str, level: ProxyLevel, valid_until: date | None
) -> Relation:
    """Give the person with this national id access at ``level`` (renewing a proxy they had)."""
    today = clock.today_in_norway()
    _check_giver(giver, today)
    try:
        nin = parse_nin(national_id, allow_synthetic=bool(current_app.config.get("DEMO_MODE"))).value
    except InvalidNin:
        raise Refused(_("Fødselsnummeret er ikke gyldig. Sjekk at alle de 11 sifrene er riktige.")) from None
    receiver = db.session.scalar(select(Person).where(Person.national_id == nin))
    if receiver is not None and receiver.id == giver.id:
        raise Refused(_("Du kan ikke gi fullmakt til deg selv."))
    if receiver is None or receiver.is_protected:
        # One answer for both: whether someone is in Varde, or has a confidential address, is not
        # for anyone to find out by trying numbers. (Too young shows in the number itself.)
        raise Refused(
            _(
                "Vi kan ikke gi fullmakt til dette fødselsnummeret i Varde. "
                "Sjekk nummeret, eller lag en engangskode i stedet."
            )
        )
    _check_receiver(giver, receiver, today)
    _check_end(valid_until, today)
    return _grant(giver, receiver, level, valid_until, viewer, "patient")


def _code_hash(code: str) -> str:
    key = (current_app.config.get("SECRET_KEY") or "").encode()
    return hmac.new(key, code.encode(), hashlib.sha256).hexdigest()


def normalise_code(text: str | None) -> str:
    return "".join(ch for ch in (text or "").upper() if ch.isalnum())


def format_code(code: str) -> str:
    return f"{code[:4]}-{code[4:8]}-{code[8:]}"


def make_code(viewer: User, giver: Person, level: ProxyLevel, valid_until: date | None) -> tuple[ProxyInvitation, str]:
    """A one-time code for someone not found by national id (or who should choose to accept).
    Returns the invitation and the code, which is shown once and stored only as a hash."""
    today = clock.today_in_norway()
    _check_giver(giver, today)
    _check_end(valid_until, today)
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    invitation = ProxyInvitation(
        subject_id=giver.id,
        code_hash=_code_hash(code),
        level=level,
        valid_until=valid_until,
        expires_at=clock.utcnow() + timedelta(days=current_app.config["PROXY_CODE_DAYS"]),
        created_by_id=viewer.id,
        created_at=clock.utcnow(),
    )
    db.session.add(invitation)
    db.session.flush()
    audit(
        "proxy_code_created",
        actor_user_id=viewer.id,
        subject_person_id=giver.id,
        object_type="proxy_invitation",
        object_id=invitation.id,
        basis="own",
    )
    return invitation, format_code(code)


def accept_code(viewer: User, receiver: Person, text: str) -> Relation:
    """The receiver enters a code: they become the giver's proxy at the code's level. A code works
    once (taken with a conditional UPDATE, so two at once cannot both use it)."""
    code = normalise_code(text)
    if len(code) != CODE_LENGTH:
        raise Refused(_("Koden har %(n)s tegn. Sjekk at du har skrevet den riktig.", n=CODE_LENGTH))
    invitation = db.session.scalar(select(ProxyInvitation).where(ProxyInvitation.code_hash == _code_hash(code)))
    if invitation is None:
        raise Refused(_("Koden er ikke gyldig. Sjekk at du har skrevet den riktig."))
    now = clock.utcnow()
    if invitation.used_at is not None:
        raise Refused(_("Koden er allerede brukt. Be om en ny kode."))
    if invitation.cancelled_at is not None:
        raise Refused(_("Koden er trukket tilbake av den som laget den. Be om en ny kode."))
    if invitation.expires_at <= now:
        raise Refused(_("Koden har gått ut. Be om en ny kode."))
    giver = db.session.get(Person, invitation.subject_id)
    if giver is None:
        raise Refused(_("Koden er ikke gyldig. Sjekk at du har skrevet den riktig."))
    if giver.id == receiver.id:
        raise Refused(_("Du kan ikke bruke en kode du har laget selv."))
    today = clock.today_in_norway()
    _check_giver(giver, today)
    _check_receiver(giver, receiver, today)
    if invitation.valid_until is not None and invitation.valid_until < today:
        raise Refused(_("Fullmakten koden gjaldt, har allerede gått ut. Be om en ny kode."))
    # Taken only while still unused, not withdrawn and not expired: a withdrawal or another use
    # at the same moment wins, and this one changes nothing.
    taken = db.session.execute(
        update(ProxyInvitation)
        .where(
            ProxyInvitation.id == invitation.id,
            ProxyInvitation.used_at.is_(None),
            ProxyInvitation.cancelled_at.is_(None),
            ProxyInvitation.expires_at > now,
        )
        .values(used_at=now, used_by_id=receiver.id)
    ).rowcount
    if taken != 1:
        raise Refused(_("Koden er allerede brukt eller trukket tilbake. Be om en ny kode."))
    relation = _grant(giver, receiver, invitation.level, invitation.valid_until, viewer, "patient")
    audit(
        "proxy_code_used",
        actor_user_id=viewer.id,
        subject_person_id=giver.id,
        object_type="proxy_invitation",
        object_id=invitation.id,
        basis="proxy",
    )
    return relation


def cancel_code(viewer: User, giver: Person, invitation_id: int) -> ProxyInvitation | None:
    """Withdraw an unused code of the giver's. None if there is no such code of theirs."""
    invitation = db.session.get(ProxyInvitation, invitation_id)
    if invitation is None or invitation.subject_id != giver.id:
        return None
    withdrawn = db.session.execute(
        update(ProxyInvitation)
        .where(
            ProxyInvitation.id == invitation.id,
            ProxyInvitation.used_at.is_(None),
            ProxyInvitation.cancelled_at.is_(None),
        )
        .values(cancelled_at=clock.utcnow())
    ).rowcount
    if withdrawn == 1:  # used or withdrawn at the same moment: nothing more to do
        audit(
            "proxy_code_cancelled",
            actor_user_id=viewer.id,
            subject_person_id=giver.id,
            object_type="proxy_invitation",
            object_id=invitation.id,
            basis="own",
        )
    return invitation


def end(viewer: User, person: Person, relation_id: int) -> Relation | None:
    """End a proxy: by the patient who gave it, or by the proxy. None if it is neither's (a
    forged id); refused if it has already ended. The proxy loses access on their next request."""
    relation = db.session.get(Relation, relation_id)
    if (
        relation is None
        or relation.kind is not RelationKind.PROXY
        or person.id not in (relation.subject_id, relation.holder_id)
    ):
        return None
    if relation.revoked_at is not None or (
        relation.valid_until is not None and relation.valid_until < clock.today_in_norway()
    ):
        raise Refused(_("Fullmakten er allerede avsluttet."))
    ended = db.session.execute(
        update(Relation)
        .where(Relation.id == relation.id, Relation.revoked_at.is_(None))
        .values(revoked_at=clock.utcnow(), revoked_by_id=viewer.id)
    ).rowcount
    if ended != 1:  # ended at the same moment (a double tap): once is enough
        raise Refused(_("Fullmakten er allerede avsluttet."))
    db.session.refresh(relation)
    audit(
        "proxy_revoked",
        actor_user_id=viewer.id,
        subject_person_id=relation.subject_id,
        object_type="relation",
        object_id=relation.id,
        basis="own" if person.id == relation.subject_id else "proxy",
    )
    return relation


def given_by(patient: Person) -> list[Relation]:
    """The proxies and guardians of the patient, those in force first, then the ended ones."""
    rows = db.session.scalars(
        select(Relation)
        .options(joinedload(Relation.holder))
        .where(Relation.subject_id == patient.id, Relation.kind.in_((RelationKind.PROXY, RelationKind.GUARDIAN)))
        .order_by(Relation.revoked_at.is_not(None), Relation.created_at.desc())
    ).all()
    today = clock.today_in_norway()
    return sorted(rows, key=lambda r: not r.in_force_on(today))


def held_by(person: Person) -> list[Relation]:
    """Whom the person is a proxy or guardian for, in force."""
    today = clock.today_in_norway()
    return list(
        db.session.scalars(
            select(Relation)
            .options(joinedload(Relation.subject))
            .where(
                Relation.holder_id == person.id,
                Relation.kind.in_((RelationKind.PROXY, RelationKind.GUARDIAN)),
                policy.in_force(today),
            )
            .order_by(Relation.created_at.desc())
        )
    )


def open_codes(patient: Person) -> list[ProxyInvitation]:
    now = clock.utcnow()
    return list(
        db.session.scalars(
            select(ProxyInvitation)
            .where(
                ProxyInvitation.subject_id == patient.id,
                ProxyInvitation.used_at.is_(None),
                ProxyInvitation.cancelled_at.is_(None),
                ProxyInvitation.expires_at > now,
            )
            .order_by(ProxyInvitation.created_at.desc())
        )
    )


def activity(patient: Person, holder_id: int, limit: int = 100) -> list[AuditEvent]:
    """What a relative did in the patient's record (from the audit log), newest first: every read
    and action they made while acting for the patient."""
    accounts = select(User.id).where(User.person_id == holder_id)
    return list(
        db.session.scalars(
            select(AuditEvent)
            .where(
                AuditEvent.subject_person_id == patient.id,
                AuditEvent.actor_user_id.in_(accounts),
                or_(AuditEvent.basis.in_(("parent", "proxy", "guardian")), AuditEvent.object_type == "relation"),
                AuditEvent.outcome == "ok",
            )
            .order_by(AuditEvent.id.desc())
            .limit(limit)
        )
    )
