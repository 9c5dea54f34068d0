"""Pages about access itself: what changes when a child turns 12 or 16 (where the notice a month
before leads). Generic on purpose: nothing about any one child, so there is nothing to check but
the login every page needs."""

from __future__ import annotations

from flask import Blueprint, Response, abort

from app.access import policy
from app.web import htmx

bp = Blueprint("people", __name__, url_prefix="/tilgang")


@bp.route("/endring/<int:threshold>")
def access_change(threshold: int) -> Response:
    """What changes at 12 (parents: GP and municipal times and messages only) or at 16 (parents:
    nothing; the young person: everything)."""
    if threshold not in (policy.PARENT_FULL_ACCESS_UNTIL_AGE, policy.PARENT_ACCESS_UNTIL_AGE):
        abort(404)
    youth_from = policy.youth_login_age()
    return htmx.render(
        "people/access_change.html",
        threshold=threshold,
        full_until=policy.PARENT_FULL_ACCESS_UNTIL_AGE,
        youth_age=max(youth_from, policy.PARENT_FULL_ACCESS_UNTIL_AGE) if youth_from is not None else None,
        adult_age=policy.PARENT_ACCESS_UNTIL_AGE,
    )
