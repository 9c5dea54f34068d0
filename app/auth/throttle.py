"""Login rate limits per account and per address, on the `limits` library (Redis at scale).

Only failed attempts count: someone who logs in correctly is never slowed down, while guessing a
password or a code stops after a few tries. Checked only on the login steps, so ordinary page
views pay nothing for it.
"""

from __future__ import annotations

from flask import Flask, current_app
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter


class LoginThrottle:
    def __init__(self, app: Flask) -> None:
        # Without REDIS_URL the counts live in this process: right for `make run`, not for several workers.
        self.storage = storage_from_string(app.config["REDIS_URL"] or "memory://")
        self.strategy = MovingWindowRateLimiter(self.storage)
        self.per_account = parse(app.config["LOGIN_LIMIT_PER_ACCOUNT"])
        self.per_address = parse(app.config["LOGIN_LIMIT_PER_ADDRESS"])

    def allowed(self, account: str, address: str) -> bool:
        """False when this account or this address has used up its failed attempts."""
        return self.strategy.test(self.per_account, "login-account", account) and self.strategy.test(
            self.per_address, "login-address", address
        )

    def failed(self, account: str, address: str) -> None:
        self.strategy.hit(self.per_account, "login-account", account)
        self.strategy.hit(self.per_address, "login-address", address)

    def reset(self) -> None:
        self.storage.reset()


def init_app(app: Flask) -> None:
    app.extensions["varde.login_throttle"] = LoginThrottle(app)


def throttle() -> LoginThrottle:
    return current_app.extensions["varde.login_throttle"]
