"""Login rate limits, on the storage of the `limits` library (in memory, or Redis at scale).

Three fixed windows, each checked on every login step (password, code, enrolment):

- per account *and* address: a guesser at one address is stopped after a few tries;
- per account alone, looser: a guesser spread over many addresses is slowed down, while one
  attacker cannot lock the real patient out by failing on purpose from elsewhere;
- per address alone: one address cannot try many accounts.

Every attempt is counted *before* the password or code is checked (an atomic increment, so
parallel requests cannot slip past the limit), and given back when the attempt succeeds:
only failures use up the allowance. Page views never touch this.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app
from limits import RateLimitItem, parse
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter


@dataclass(frozen=True)
class Attempt:
    keys: tuple[tuple[str, RateLimitItem], ...]
    allowed: bool


class LoginThrottle:
    def __init__(self, app: Flask) -> None:
        # Without REDIS_URL the counts live in this process: right for `make run`, not for several workers.
        self.storage: Storage = storage_from_string(app.config["REDIS_URL"] or "memory://")
        self.per_pair = parse(app.config["LOGIN_LIMIT_PER_ACCOUNT_AND_ADDRESS"])
        self.per_account = parse(app.config["LOGIN_LIMIT_PER_ACCOUNT"])
        self.per_address = parse(app.config["LOGIN_LIMIT_PER_ADDRESS"])
        # For the other counts on the same storage (messages sent, proxy codes tried).
        self.windows = FixedWindowRateLimiter(self.storage)

    def attempt(self, account: str, address: str) -> Attempt:
        """Count an attempt. ``allowed`` is False when any window is used up: refuse it then."""
        keys = (
            (f"varde-login/pair/{account}/{address}", self.per_pair),
            (f"varde-login/account/{account}", self.per_account),
            (f"varde-login/address/{address}", self.per_address),
        )
        allowed = True
        for key, item in keys:
            if self.storage.incr(key, item.get_expiry()) > item.amount:
                allowed = False
        return Attempt(keys, allowed)

    def succeeded(self, attempt: Attempt) -> None:
        """A successful attempt does not use up the allowance."""
        for key, item in attempt.keys:
            self.storage.incr(key, item.get_expiry(), -1)

    def reset(self) -> None:
        self.storage.reset()


def init_app(app: Flask) -> None:
    app.extensions["varde.login_throttle"] = LoginThrottle(app)


def throttle() -> LoginThrottle:
    return current_app.extensions["varde.login_throttle"]


def windows() -> FixedWindowRateLimiter:
    """Fixed-window counts beyond login (messages sent, proxy codes and national ids tried), on the
    login limits' storage: in this process, or shared on Redis."""
    return throttle().windows
