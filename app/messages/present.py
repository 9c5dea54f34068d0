"""How conversations and messages read: their states, and short times ("i dag kl. 14:32")."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from app import clock
from app.appointments.formatting import day_text
from app.messages.models import Conversation, ConversationState, MessageStatus

STATUS_WORDS = {
    MessageStatus.SENT: _l("Sendt"),
    MessageStatus.READ: _l("Lest av behandler"),
    MessageStatus.ANSWERED: _l("Besvart"),
}


def state_words(conversation: Conversation) -> str:
    """The conversation's state as the patient and the team read it."""
    if conversation.state is ConversationState.CLOSED:
        return _("Avsluttet")
    if conversation.state is ConversationState.WAITING:
        return _("Besvart")
    if conversation.team_seen_message_id >= conversation.last_message_id:
        return _("Lest, venter på svar")
    return _("Sendt, venter på svar")


def status_words(status: MessageStatus) -> str:
    return str(STATUS_WORDS[status])


def short_clock(moment: datetime) -> str:
    return moment.astimezone(clock.NORWAY).strftime("%H:%M")


def short_time(moment: datetime) -> str:
    """ "i dag kl. 14:32", "i går kl. 09:10", "mandag 2. november kl. 08:00" (with the year when it is not this one)."""
    local = moment.astimezone(clock.NORWAY)
    today = clock.today_in_norway()
    if local.date() == today:
        return _("i dag kl. %(time)s", time=short_clock(moment))
    if local.date() == today - timedelta(days=1):
        return _("i går kl. %(time)s", time=short_clock(moment))
    return _(
        "%(day)s kl. %(time)s", day=day_text(local.date(), year=local.year != today.year), time=short_clock(moment)
    )
