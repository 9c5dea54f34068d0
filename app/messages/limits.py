"""How many messages one account may send from the patient's side: enough for any real need, not
enough to flood a care unit's inbox. Counted on the `limits` storage the login limits use (in
memory, or Redis at scale); a message that is refused for another reason gives its count back."""

from __future__ import annotations

from flask import current_app
from flask_babel import gettext as _
from limits import parse

from app.auth.throttle import windows
from app.refusal import Refused


class LimitReached(Refused):
    """The account has sent its share for now."""


def take(account_id: int) -> None:
    """Count one message; LimitReached when the account has sent its share (an attempt over the
    share counts too, until the window ends). Counts live in the `limits` storage: per process
    in memory, or shared on Redis (as the login limits)."""
    item = parse(current_app.config["MESSAGE_LIMIT_PER_ACCOUNT"])
    if not windows().hit(item, "varde-messages", str(account_id)):
        raise LimitReached(
            _("Du har sendt mange meldinger på kort tid. Vent litt før du sender flere, eller ring behandlingsstedet.")
        )


def give_back(account_id: int) -> None:
    """A message that was counted but not sent does not use up the share."""
    item = parse(current_app.config["MESSAGE_LIMIT_PER_ACCOUNT"])
    windows().storage.incr(item.key_for("varde-messages", str(account_id)), item.get_expiry(), -1)
