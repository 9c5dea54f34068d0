"""The VAPID key pair that signs web push requests (RFC 8292)."""

from __future__ import annotations

import base64
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from app.config import ensure_secret_file


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(value: str) -> bytes:
    """base64url without padding (keys in web push are written so), to bytes."""
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _generate_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def load_private_key(value: str) -> ec.EllipticCurvePrivateKey:
    """Accept PEM or the raw 32-byte scalar in base64url (the two forms pywebpush takes)."""
    value = value.strip()
    if value.startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(value.encode(), password=None)
    else:
        raw = b64url_decode(value)
        key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("VAPID_PRIVATE_KEY is not an EC P-256 key")
    return key


def public_key_b64(key: ec.EllipticCurvePrivateKey) -> str:
    """The applicationServerKey browsers need: the uncompressed point, base64url."""
    raw = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return _b64url(raw)


def configure(config: dict, instance_path: Path) -> None:
    """Fill VAPID_PRIVATE_KEY / VAPID_PUBLIC_KEY from the environment or instance/vapid_private.pem."""
    private = config.get("VAPID_PRIVATE_KEY") or ensure_secret_file(instance_path / "vapid_private.pem", _generate_pem)
    key = load_private_key(private)
    derived = public_key_b64(key)
    given = config.get("VAPID_PUBLIC_KEY")
    if given and given != derived:
        raise ValueError("VAPID_PUBLIC_KEY does not belong to VAPID_PRIVATE_KEY")
    config["VAPID_PRIVATE_KEY"] = private
    config["VAPID_PUBLIC_KEY"] = derived
