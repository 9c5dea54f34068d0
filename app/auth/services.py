"""Passwords, second factor, recovery codes and the steps of a login.

Plain functions; routes call them and own the HTTP side. Nothing here reads ``request``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import secrets

import pyotp
import segno
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from sqlalchemy import or_, select, update

from app import clock
from app.auth.models import Identity, IdentityProvider, RecoveryCode, User
from app.db import db

TOTP_ISSUER = "Varde"
RECOVERY_CODE_COUNT = 10
# Recovery codes: 10 characters from an alphabet without look-alikes (no 0/O, 1/l/I).
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def _hasher() -> PasswordHasher:
    cfg = current_app.config
    return PasswordHasher(time_cost=cfg["ARGON2_TIME_COST"], memory_cost=cfg["ARGON2_MEMORY_COST"])


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def normalise_username(raw: str) -> str:
    """Usernames compare without spaces and case (a national id typed with spaces still matches).

    Control characters (NUL breaks PostgreSQL text) make it match nothing.
    """
    compact = "".join((raw or "").split()).lower()
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in compact):
        return ""
    return compact[:255]


def find_local_user(username: str) -> User | None:
    subject = normalise_username(username)
    if not subject:
        return None
    return db.session.scalar(
        select(User).join(Identity).where(Identity.provider == IdentityProvider.LOCAL, Identity.subject == subject)
    )


def check_password(username: str, password: str) -> User | None:
    """The user whose password this is, or None. Takes the same time whether or not the user exists."""
    user = find_local_user(username)
    hasher = _hasher()
    if user is None or not user.password_hash or not user.is_active:
        # Verify against a throwaway hash so that unknown accounts cost as much as known ones.
        with contextlib.suppress(VerificationError, InvalidHashError):
            hasher.verify(_dummy_hash(), password)
        return None
    try:
        hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)
    return user


_DUMMY: dict[tuple[int, int], str] = {}


def _dummy_hash() -> str:
    cfg = current_app.config
    key = (cfg["ARGON2_TIME_COST"], cfg["ARGON2_MEMORY_COST"])
    if key not in _DUMMY:
        _DUMMY[key] = _hasher().hash(secrets.token_hex(16))
    return _DUMMY[key]


# --- second factor ------------------------------------------------------------------------------


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, account_name: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account_name, issuer_name=TOTP_ISSUER)


def totp_qr_svg(uri: str) -> str:
    """The provisioning URI as an inline SVG QR code (no style attributes: fits the strict CSP)."""
    qr = segno.make(uri, error="m")
    # A viewBox (omitsize) lets CSS size it without cropping; 4 modules of quiet zone as the standard asks.
    return qr.svg_inline(scale=5, border=4, dark="#111", light="#fff", omitsize=True)


def verify_totp(secret: str, code: str, last_step: int | None) -> int | None:
    """The time step the code belongs to (now ±30 s), or None. A step at or before last_step is refused."""
    code = "".join((code or "").split())
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    now = clock.utcnow()
    current = totp.timecode(now)
    for step in (current - 1, current, current + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def totp_code_already_used(secret: str, code: str, last_step: int | None) -> bool:
    """True when the code is right but its time step was used before (so the user should wait)."""
    return last_step is not None and verify_totp(secret, code, last_step - 2) is not None


def claim_totp_step(user: User, step: int) -> bool:
    """Record that the code of ``step`` was used; False if it (or a later one) already was.

    A conditional UPDATE, so two requests racing with the same code cannot both win.
    """
    result = db.session.execute(
        update(User)
        .where(User.id == user.id, or_(User.totp_last_step.is_(None), User.totp_last_step < step))
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def enable_totp(user: User, secret: str, step: int) -> list[str]:
    """Turn on the second factor and return fresh recovery codes (shown once, stored hashed)."""
    user.totp_secret = secret
    user.totp_enabled_at = clock.utcnow()
    user.totp_last_step = step
    return new_recovery_codes(user)


def new_recovery_codes(user: User) -> list[str]:
    db.session.execute(RecoveryCode.__table__.delete().where(RecoveryCode.user_id == user.id))
    codes = ["".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(10)) for _ in range(RECOVERY_CODE_COUNT)]
    for code in codes:
        db.session.add(RecoveryCode(user_id=user.id, code_hash=_code_hash(code)))
    return [f"{c[:5]}-{c[5:]}" for c in codes]


def use_recovery_code(user: User, raw: str) -> bool:
    """Accept an unused recovery code once, even when two requests race with the same code.

    Codes have 50 bits of entropy and attempts are rate limited, so a keyed fast hash is enough.
    """
    code = "".join(ch for ch in (raw or "").lower() if ch.isascii() and ch.isalnum())
    if len(code) != 10:
        return False
    result = db.session.execute(
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == _code_hash(code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=clock.utcnow())
    )
    return result.rowcount == 1


def remaining_recovery_codes(user: User) -> int:
    return len(
        db.session.scalars(
            select(RecoveryCode.id).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
        ).all()
    )


def _code_hash(code: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, code.encode(), hashlib.sha256).hexdigest()


# --- creating accounts --------------------------------------------------------------------------


def create_local_user(
    *, username: str, password: str | None, display_name: str, password_hash: str | None = None, **fields: object
) -> User:
    """Create a user with a local identity. Pass ``password_hash`` to reuse one (demo data)."""
    user = User(
        display_name=display_name, password_hash=password_hash or (password and hash_password(password)), **fields
    )
    user.identities.append(Identity(provider=IdentityProvider.LOCAL, subject=normalise_username(username)))
    db.session.add(user)
    return user
