"""Settings: secrets come from the environment or are generated once into instance/, never from code."""

from __future__ import annotations

import stat

from app.notify.vapid import load_private_key, public_key_b64


def test_missing_secrets_are_generated_once_into_the_instance_folder(tmp_path, database_url):
    from app import create_app
    from app.config import TestConfig

    class Bare(TestConfig):
        INSTANCE_PATH = str(tmp_path)
        SECRET_KEY = None
        SQLALCHEMY_DATABASE_URI = database_url
        VAPID_PRIVATE_KEY = None

    one, two = create_app(Bare), create_app(Bare)
    for name in ("secret_key", "vapid_private.pem"):
        path = tmp_path / name
        assert path.exists()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert one.config["SECRET_KEY"] == two.config["SECRET_KEY"] == (tmp_path / "secret_key").read_text().strip()
    assert len(one.config["SECRET_KEY"]) == 64
    assert one.config["VAPID_PUBLIC_KEY"] == two.config["VAPID_PUBLIC_KEY"]
    key = load_private_key(one.config["VAPID_PRIVATE_KEY"])
    assert public_key_b64(key) == one.config["VAPID_PUBLIC_KEY"]
    assert len(one.config["VAPID_PUBLIC_KEY"]) == 87  # 65-byte uncompressed P-256 point, base64url


def test_secrets_from_the_environment_win(tmp_path, database_url):
    from app import create_app
    from app.config import TestConfig

    class FromEnv(TestConfig):
        INSTANCE_PATH = str(tmp_path)
        SECRET_KEY = "s" * 64
        SQLALCHEMY_DATABASE_URI = database_url

    app = create_app(FromEnv)
    assert app.config["SECRET_KEY"] == "s" * 64
    assert not (tmp_path / "secret_key").exists()
