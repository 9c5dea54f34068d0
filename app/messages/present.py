"""How conversations and messages read: their states, topics and short times ("i dag kl. 14:32").

An inbox page shows 20 rows with a handful of phrases each; the phrases are looked up once per
request (``_words``) and filled in with ``%``, not translated again for every row.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import g
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from app import clock
from app.messages.models import TOPIC_LABELS, Conversation, ConversationState, MessageStatus
from app.record.present import item_date

STATUS_WORDS = {
    MessageStatus.SENT: _l("Sendt"),
    MessageStatus.READ: _l("Lest av behandler"),
    MessageStatus.ANSWERED: _l("Besvart"),
}


def _words() -> dict:
    words = g.get("_varde_message_words")
    if words is None:
        words = g._varde_message_words = {
            "closed": _("Avsluttet"),
            "answered": _("Besvart"),
            "read": _("Lest, venter på svar"),
            "sent": _("Sendt, venter på svar"),
            "topics": {topic: str(label) for topic, label in TOPIC_LABELS.items()},
            "today": _("i dag kl. %(time)s"),
            "yesterday": _("i går kl. %(time)s"),
            "other": _("%(day)s kl. %(time)s"),
            "day": _("EEEE d. MMMM"),
            "day_year": _("EEEE d. MMMM y"),
            "today_date": clock.today_in_norway(),
            # The inbox rows' phrases.
            "unread": _("Ulest"),
            "born": _("f. %(date)s"),
            "with": _("Hos %(name)s"),
            "overdue": _("Over svarfristen"),
            "due": _("Svar innen %(when)s"),
        }
    return words


def row_words() -> dict:
    return _words()


def state_words(conversation: Conversation) -> str:
    """The conversation's state as the patient and the team read it."""
    words = _words()
    if conversation.state is ConversationState.CLOSED:
        return words["closed"]
    if conversation.state is ConversationState.WAITING:
        return words["answered"]
    if conversation.team_seen_message_id >= conversation.last_message_id:
        return words["read"]
    return words["sent"]


def topic_label(topic: object) -> str:
    return _words()["topics"][topic]


def status_words(status: MessageStatus) -> str:
    return str(STATUS_WORDS[status])


def short_clock(moment: datetime) -> str:
    return moment.astimezone(clock.NORWAY).strftime("%H:%M")


def short_time(moment: datetime) -> str:
    """ "i dag kl. 14:32", "i går kl. 09:10", "mandag 2. november kl. 08:00" (with the year when it is not this one)."""
    words = _words()
    local = moment.astimezone(clock.NORWAY)
    day, today = local.date(), words["today_date"]
    time = local.strftime("%H:%M")
    if day == today:
        return words["today"] % {"time": time}
    if day == today - timedelta(days=1):
        return words["yesterday"] % {"time": time}
    fmt = words["day"] if day.year == today.year else words["day_year"]
    return words["other"] % {"day": item_date(day, fmt), "time": time}
