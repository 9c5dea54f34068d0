"""Push delivery against a push service of the tests' own (tests/push_service.py) on 127.0.0.1, which
checks the VAPID JWT and decrypts each aes128gcm body with the subscriber's key: the exact payload,
every class of answer (201, 404/410, 429 Retry-After, 5xx, timeouts, refused and dropped connections,
400/413), a worker killed between sending and marking, pruning, and no health detail in any payload."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from collections import Counter
from datetime import timedelta
from email.utils import format_datetime as http_date
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select, update

from app import clock
from app.db import db
from app.notify import delivery, events, services
from app.notify.models import DeliveryState, Notification, PushDelivery, PushSubscription
from app.record.models import RecordItem, ReleaseState
from app.record.release import release_due
from tests import factories
from tests.push_service import PushService

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def push():
    with PushService() as service:
        yield service
        service.assert_no_rejections()


@pytest.fixture
def fast_retries(app, monkeypatch):
    monkeypatch.setitem(app.config, "PUSH_TIMEOUT_SECONDS", 1)
    monkeypatch.setitem(app.config, "PUSH_MAX_ATTEMPTS", 3)
    monkeypatch.setitem(app.config, "PUSH_BACKOFF_SECONDS", 5)


def device(user, push: PushService, name: str) -> PushSubscription:
    """Register a subscription at the test push service for ``user``, as the browser would."""
    _subscriber, subscription = push.subscribe(name)
    sub, _created = services.subscribe(user.id, subscription, "Chrome · Android")
    services.save_settings(user.id, {"quiet_enabled": False})  # the suite also runs at night
    db.session.commit()
    return sub


def emit(person_id: int, kind: str = "result_released", **kw) -> Notification:
    event = events.emit(person_id, kind, object_type="record_item", object_id=1, url="/journal/prover/1", **kw)
    db.session.commit()
    return event.notifications[0]


def states() -> list[tuple[DeliveryState, int | None]]:
    db.session.expire_all()
    return [(d.state, d.last_status) for d in db.session.scalars(select(PushDelivery).order_by(PushDelivery.id))]


def the_delivery() -> PushDelivery:
    db.session.expire_all()
    [row] = db.session.scalars(select(PushDelivery)).all()
    return row


# -- What arrives ----------------------------------------------------------------------------


def test_exact_payload_headers_and_vapid(app, kari, push):
    device(kari, push, "kari-phone")
    notice = emit(kari.person_id)
    assert delivery.deliver_due()["sent"] == 1
    [message] = push.wait_for(1)
    assert message.json() == {
        "id": notice.token,
        "title": "Du har et nytt prøvesvar",
        "body": "Trykk for å åpne Varde.",
        "url": f"/varsler/{notice.token}",
        "tag": "varde-results",
    }
    assert message.ttl == 3 * 24 * 3600
    assert message.urgency == "normal"
    assert message.topic == "results"
    assert message.vapid_key == app.config["VAPID_PUBLIC_KEY"]
    assert message.claims["aud"] == push.origin
    assert message.claims["sub"] == app.config["VAPID_SUBJECT"]
    assert states() == [(DeliveryState.SENT, 201)]
    assert db.session.scalar(select(PushSubscription.last_success_at)) is not None


def test_payload_in_the_accounts_language(kari, push):
    kari.locale = "en"
    db.session.commit()
    device(kari, push, "kari-phone")
    emit(kari.person_id, "message_received")
    delivery.deliver_due()
    [message] = push.wait_for(1)
    assert message.json()["title"] == "You have a new message"
    assert message.json()["tag"] == "varde-messages"


def test_parent_payload_names_the_child_by_first_name_only(kari, ola, push):
    factories.parent_of(kari, ola)
    device(kari, push, "kari-phone")
    emit(ola.id)
    delivery.deliver_due()
    [message] = push.wait_for(1)
    assert message.json()["title"] == "Ola har et nytt prøvesvar"
    assert "Nordmann" not in message.text()


def test_offer_is_urgent_and_lives_until_it_expires(kari, push, frozen_clock):
    device(kari, push, "kari-phone")
    emit(kari.person_id, "appointment_offer", expires_at=frozen_clock.now + timedelta(minutes=45))
    delivery.deliver_due()
    [message] = push.wait_for(1)
    assert message.urgency == "high"
    assert message.ttl == 45 * 60
    assert message.topic == "offers"


def test_an_offer_that_expired_before_sending_is_not_sent(kari, push, frozen_clock):
    device(kari, push, "kari-phone")
    emit(kari.person_id, "appointment_offer", expires_at=frozen_clock.now + timedelta(minutes=5))
    frozen_clock.advance(minutes=6)
    assert delivery.deliver_due()["expired"] == 1
    assert push.attempts == []
    assert states() == [(DeliveryState.EXPIRED, None)]


def test_several_devices_each_get_it(kari, push):
    device(kari, push, "kari-phone")
    device(kari, push, "kari-laptop")
    notice = emit(kari.person_id)
    delivery.deliver_due()
    got = push.wait_for(2)
    assert sorted(m.name for m in got) == ["kari-laptop", "kari-phone"]
    assert {m.json()["id"] for m in got} == {notice.token}


def test_worker_task_sends(kari, push):
    from app.tasks import deliver_pushes

    device(kari, push, "kari-phone")
    emit(kari.person_id)
    deliver_pushes.call_local()  # what the consumer runs
    push.wait_for(1)
    assert the_delivery().state is DeliveryState.SENT


def test_commit_wakes_the_worker_and_nothing_is_sent_in_the_request(app, kari, push, monkeypatch):
    import app.tasks as tasks

    woken = []
    monkeypatch.setitem(app.config, "PUSH_WAKE_WORKER", True)
    monkeypatch.setattr(tasks, "deliver_pushes", lambda: woken.append(1))
    monkeypatch.setattr(tasks, "huey", SimpleNamespace(immediate=False))  # as in the real worker setup
    device(kari, push, "kari-phone")
    events.emit(kari.person_id, "result_released", url="/")
    assert woken == []  # not before commit
    db.session.commit()
    assert woken == [1]
    assert push.attempts == []  # enqueued, not sent: the worker sends
    events.emit(kari.person_id, "result_released", url="/")
    db.session.rollback()
    db.session.commit()
    assert woken == [1]  # a rolled-back event wakes nobody


# -- Answers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 410])
def test_gone_subscription_is_deleted(kari, push, status):
    device(kari, push, "kari-phone")
    push.script("kari-phone", status, times=2)
    emit(kari.person_id)
    emit(kari.person_id)  # a second one for the same device
    stats = delivery.deliver_due()
    assert stats["gone"] >= 1
    assert db.session.scalar(select(func.count(PushSubscription.id))) == 0
    assert {state for state, _ in states()} == {DeliveryState.GONE}


def test_429_waits_for_retry_after_seconds(kari, push, frozen_clock):
    device(kari, push, "kari-phone")
    push.script("kari-phone", 429, retry_after=120)
    emit(kari.person_id)
    assert delivery.deliver_due()["retry"] == 1
    row = the_delivery()
    assert row.state is DeliveryState.PENDING and row.last_status == 429
    assert row.next_attempt_at == frozen_clock.now + timedelta(seconds=120)
    frozen_clock.advance(seconds=119)
    assert delivery.deliver_due()["sent"] == 0  # not yet
    frozen_clock.advance(seconds=2)
    assert delivery.deliver_due()["sent"] == 1
    assert len(push.received) == 1


def test_429_with_an_http_date(kari, push, frozen_clock):
    device(kari, push, "kari-phone")
    push.script("kari-phone", 429, retry_after=http_date(frozen_clock.now + timedelta(minutes=10), usegmt=True))
    emit(kari.person_id)
    delivery.deliver_due()
    delay = (the_delivery().next_attempt_at - frozen_clock.now).total_seconds()
    assert 599 <= delay <= 601


def test_5xx_backs_off_with_jitter_then_gives_up(kari, push, frozen_clock, fast_retries):
    device(kari, push, "kari-phone")
    push.script("kari-phone", 503, times=3)
    emit(kari.person_id)
    delays = []
    for attempt in (1, 2):
        assert delivery.deliver_due()["retry"] == 1
        row = the_delivery()
        delays.append((row.next_attempt_at - frozen_clock.now).total_seconds())
        assert row.attempts == attempt and row.last_status == 503
        frozen_clock.now = row.next_attempt_at
    assert 2.5 <= delays[0] <= 7.5  # 5 s × (0.5–1.5)
    assert 5 <= delays[1] <= 15  # doubled
    assert delivery.deliver_due()["failed"] == 1
    row = the_delivery()
    assert row.state is DeliveryState.FAILED and row.attempts == 3 and row.last_status == 503
    assert push.received == []
    assert db.session.scalar(select(func.count(PushSubscription.id))) == 1  # the device stays


def test_5xx_then_success(kari, push, frozen_clock, fast_retries):
    device(kari, push, "kari-phone")
    push.script("kari-phone", 500)
    notice = emit(kari.person_id)
    delivery.deliver_due()
    frozen_clock.now = the_delivery().next_attempt_at
    assert delivery.deliver_due()["sent"] == 1
    assert [m.json()["id"] for m in push.received] == [notice.token]


def test_timeout_is_retried(kari, push, frozen_clock, fast_retries):
    device(kari, push, "kari-phone")
    push.script("kari-phone", "hang", seconds=3)
    notice = emit(kari.person_id)
    assert delivery.deliver_due()["retry"] == 1  # gave up after 1 s, not 3
    row = the_delivery()
    assert row.last_status == delivery.NO_ANSWER and row.last_error == "timeout"
    frozen_clock.now = row.next_attempt_at
    assert delivery.deliver_due()["sent"] == 1
    # The service may have accepted the slow one too: a duplicate, with the same id.
    push.wait_for(1)
    assert {m.json()["id"] for m in push.received} == {notice.token}


def test_dropped_connection_is_retried(kari, push, frozen_clock, fast_retries):
    device(kari, push, "kari-phone")
    push.script("kari-phone", "close")
    emit(kari.person_id)
    assert delivery.deliver_due()["retry"] == 1
    frozen_clock.now = the_delivery().next_attempt_at
    assert delivery.deliver_due()["sent"] == 1


def test_refused_connection_is_retried(kari, frozen_clock, fast_retries):
    # The port stays bound but never listens for the whole test, so a connection is refused
    # and no other server (the PushService below included) can be given the same port.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        with PushService() as other:
            _sub, subscription = other.subscribe("x")
        subscription["endpoint"] = f"http://127.0.0.1:{port}/push/x"
        services.subscribe(kari.id, subscription, "t")
        services.save_settings(kari.id, {"quiet_enabled": False})  # the suite also runs at night
        db.session.commit()
        emit(kari.person_id)
        outcome = delivery.deliver_due()
        assert outcome["retry"] == 1, outcome
    row = the_delivery()
    assert row.last_status == delivery.NO_ANSWER and row.state is DeliveryState.PENDING


@pytest.mark.parametrize("status", [400, 413])
def test_400_and_413_are_recorded_and_not_retried(kari, push, frozen_clock, status):
    device(kari, push, "kari-phone")
    push.script("kari-phone", status)
    emit(kari.person_id)
    assert delivery.deliver_due()["failed"] == 1
    assert states() == [(DeliveryState.FAILED, status)]
    frozen_clock.advance(days=1)
    assert delivery.deliver_due() == {"sent": 0, "gone": 0, "retry": 0, "failed": 0, "expired": 0}
    assert len(push.attempts) == 1
    assert db.session.scalar(select(func.count(PushSubscription.id))) == 1


def test_a_claimed_row_is_not_taken_twice(kari, push):
    device(kari, push, "kari-phone")
    emit(kari.person_id)
    now = clock.utcnow()
    first = delivery._claim(now, 10, timedelta(minutes=2))
    assert len(first) == 1
    assert delivery._claim(now, 10, timedelta(minutes=2)) == []  # another worker finds nothing


# -- A worker killed between sending and marking ---------------------------------------------

WORKER = textwrap.dedent(
    """
    import sys
    from tests.conftest import make_test_app
    from pathlib import Path
    app = make_test_app(Path(sys.argv[1]), sys.argv[2])
    with app.app_context():
        from app.notify.delivery import deliver_due
        print(deliver_due(), flush=True)
    """
)


def test_worker_killed_after_send_before_mark_loses_nothing(app, database_url, kari, push, frozen_clock):
    device(kari, push, "kari-phone")
    notice = emit(kari.person_id)
    worker = subprocess.Popen(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", WORKER, app.instance_path, database_url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    # The push service has the message; before it answers 201, the worker dies.
    push.script("kari-phone", lambda received: os.kill(worker.pid, signal.SIGKILL))
    try:
        out, err = worker.communicate(timeout=60)
    finally:
        worker.kill()
    assert worker.returncode == -signal.SIGKILL, (out + err).decode()[-2000:]
    assert len(push.received) == 1
    row = the_delivery()
    assert row.state is DeliveryState.PENDING and row.sent_at is None  # never marked sent
    assert row.claimed_until is not None
    assert delivery.deliver_due()["sent"] == 0  # still claimed by the dead worker
    frozen_clock.now = row.claimed_until + timedelta(seconds=1)
    assert delivery.deliver_due()["sent"] == 1  # its claim ran out: sent again
    ids = Counter(m.json()["id"] for m in push.received)
    assert ids == Counter({notice.token: 2})  # a duplicate with the same id (and tag): shown once
    assert {m.json()["tag"] for m in push.received} == {"varde-results"}
    assert states() == [(DeliveryState.SENT, 201)]


# -- Pruning ---------------------------------------------------------------------------------


def test_devices_not_seen_for_long_are_pruned(kari, push, frozen_clock):
    old = device(kari, push, "old-phone")
    device(kari, push, "new-phone")
    db.session.execute(
        update(PushSubscription)
        .where(PushSubscription.id == old.id)
        .values(last_seen_at=frozen_clock.now - timedelta(days=61), last_success_at=frozen_clock.now)
    )
    db.session.commit()
    assert delivery.prune()["subscriptions"] == 1
    assert [s.label for s in db.session.scalars(select(PushSubscription))] == ["Chrome · Android"]
    assert db.session.scalar(select(PushSubscription.endpoint)).endswith("new-phone")


def test_resubscribing_keeps_a_device_alive(client, kari, push, frozen_clock, login_as):
    from tests.conftest import csrf_from

    _subscriber, subscription = push.subscribe("kari-phone")
    login_as(kari)
    token = csrf_from(client, "/varsler/innstillinger")
    assert client.post("/varsler/enheter", json=subscription, headers={"X-CSRFToken": token}).status_code == 201
    frozen_clock.advance(days=59)
    login_as(kari)  # another day, another login on the same phone
    token = csrf_from(client, "/varsler/innstillinger")
    assert client.post("/varsler/enheter", json=subscription, headers={"X-CSRFToken": token}).status_code == 200
    frozen_clock.advance(days=59)
    assert delivery.prune()["subscriptions"] == 0


# -- Privacy ---------------------------------------------------------------------------------

MARKERS = (
    "MARKER-TESTNAME-HIV",
    "MARKER-VALUE-4711",
    "MARKER-DIAGNOSIS-F32",
    "MARKER-DEPARTMENT-PSYK",
    "MARKER-NOTE-TEXT",
    "MARKER-HOSPITAL",
)


def test_no_health_detail_in_any_payload_or_log(kari, ola, push, source, caplog, frozen_clock):
    """Fill the record with sensitive marker strings, release it all, and look for them in every
    payload, header and log line."""
    import logging

    caplog.set_level(logging.DEBUG)
    factories.parent_of(kari, ola)
    source.organisation.name = MARKERS[5]
    db.session.commit()
    device(kari, push, "kari-phone")
    for person in (kari.person, ola):
        factories.record(person, source, results=4, notes=2, years=0.01, prefix="m")
    items = db.session.scalars(select(RecordItem)).all()
    for item in items:
        item.title = f"{MARKERS[0]} {MARKERS[2]}"
        item.data = {**(item.data or {}), "value": MARKERS[1], "display": MARKERS[0], "unit_name": MARKERS[3]}
        item.release_state, item.released_at = ReleaseState.HELD, None
        item.release_due_at = frozen_clock.now - timedelta(minutes=1)
    db.session.commit()
    released = release_due()
    assert released == len(items)
    delivery.deliver_due()
    got = push.wait_for(1)
    assert len(got) >= 2  # Kari's own, and Ola's for his mother
    everything = "\n".join(m.text() + repr(m.headers) for m in got) + "\n" + caplog.text
    for marker in MARKERS:
        assert marker not in everything
    titles = {m.json()["title"] for m in got}
    assert titles <= {
        "Du har et nytt prøvesvar",
        "Du har et nytt notat",
        "Du har et nytt dokument",
        "Det er nytt i journalen din",
        "Ola har et nytt prøvesvar",
        "Ola har et nytt notat",
        "Ola har et nytt dokument",
        "Det er nytt i journalen til Ola",
    }
    for m in got:
        assert set(m.json()) == {"id", "title", "body", "url", "tag"}
        assert m.json()["url"] == f"/varsler/{m.json()['id']}"


def test_push_cli(app, kari, push):
    device(kari, push, "kari-phone")
    push.script("kari-phone", 413)
    emit(kari.person_id)
    emit(kari.person_id)
    runner = app.test_cli_runner()
    assert " pending  2" in runner.invoke(args=["push", "status"]).output
    assert "'sent': 1" in runner.invoke(args=["push", "deliver"]).output
    out = runner.invoke(args=["push", "status"]).output
    assert "    sent  1" in out and "  failed  1" in out and "last status 413" in out
    assert "'subscriptions': 0" in runner.invoke(args=["push", "prune"]).output


# -- Robustness (from review) ----------------------------------------------------------------


def test_one_row_that_cannot_be_prepared_does_not_hold_up_the_batch(kari, per, push, monkeypatch):
    device(kari, push, "kari-phone")
    device(per, push, "per-phone")
    emit(kari.person_id, "note_released")
    emit(per.person_id, "result_released")
    real = delivery._texts

    def texts(kind, locale, first_name):
        if kind == "note_released":
            raise RuntimeError("boom")
        return real(kind, locale, first_name)

    monkeypatch.setattr(delivery, "_texts", texts)
    stats = delivery.deliver_due()
    assert stats["sent"] == 1
    assert sorted(states()) == sorted([(DeliveryState.FAILED, None), (DeliveryState.SENT, 201)])
    assert [m.name for m in push.received] == ["per-phone"]


def test_a_row_whose_workers_keep_dying_is_given_up(app, kari, push, frozen_clock):
    device(kari, push, "kari-phone")
    emit(kari.person_id)
    db.session.execute(
        update(PushDelivery).values(attempts=app.config["PUSH_MAX_ATTEMPTS"], claimed_until=frozen_clock.now)
    )
    db.session.commit()
    frozen_clock.advance(seconds=1)
    delivery.deliver_due()
    row = the_delivery()
    assert row.state is DeliveryState.FAILED and "gave up" in row.last_error
    assert push.attempts == []


def test_a_parents_push_waiting_out_the_night_is_dropped_if_the_child_turned_12(kari, push, frozen_clock):
    child = factories.PersonFactory(given_name="Emma", family_name="Nordmann", birth_date=factories.birth_for_age(11))
    factories.parent_of(kari, child)
    device(kari, push, "kari-phone")
    emit(child.id)
    frozen_clock.advance(days=365)
    delivery.deliver_due()
    assert states() == [(DeliveryState.GONE, None)]
    assert push.attempts == []


def test_a_closed_account_gets_no_push(kari, push):
    device(kari, push, "kari-phone")
    emit(kari.person_id)
    kari.active = False
    db.session.commit()
    delivery.deliver_due()
    assert states() == [(DeliveryState.GONE, None)]


def test_a_childs_news_has_its_own_topic_and_tag(kari, ola, push):
    factories.parent_of(kari, ola)
    device(kari, push, "kari-phone")
    emit(kari.person_id)
    emit(ola.id)
    delivery.deliver_due()
    own, childs = sorted(push.wait_for(2), key=lambda m: m.json()["title"].startswith("Ola"))
    assert (own.topic, own.json()["tag"]) == ("results", "varde-results")
    assert childs.topic.startswith("results-") and childs.topic != own.topic and len(childs.topic) <= 32
    assert childs.json()["tag"] == "varde-" + childs.topic


def test_an_answer_never_overwrites_a_row_that_was_ended_meanwhile(kari, push, frozen_clock):
    device(kari, push, "kari-phone")
    emit(kari.person_id)
    now = frozen_clock.now
    [row_id] = delivery._claim(now, 10, timedelta(minutes=5))
    jobs, _expired = delivery._load_jobs([row_id], now)
    services.remove_device(kari.id, subscription_id=jobs[0].subscription_id)  # removed while sending
    db.session.commit()
    delivery._record([delivery.Answer(jobs[0], 201)], now, now + timedelta(minutes=5))
    assert states() == [(DeliveryState.GONE, None)]


def test_our_encryption_is_what_http_ece_reads():
    """The worker encrypts with `cryptography` directly (half the cost); http_ece, the library
    pywebpush uses, must read it as RFC 8291 aes128gcm."""
    import http_ece

    from tests.push_service import Subscriber

    subscriber = Subscriber()
    body = delivery.encrypt_aes128gcm(subscriber.public, subscriber.auth, b'{"title":"Du har et nytt pr\\u00f8vesvar"}')
    plain = http_ece.decrypt(body, private_key=subscriber.private_key, auth_secret=subscriber.auth, version="aes128gcm")
    assert plain == b'{"title":"Du har et nytt pr\\u00f8vesvar"}'
    assert plain == subscriber.decrypt(body)


def test_429_slows_down_everything_waiting_for_that_push_service(app, kari, per, push, frozen_clock, monkeypatch):
    monkeypatch.setitem(app.config, "PUSH_BATCH", 1)  # the second push is not in the first batch
    device(kari, push, "kari-phone")
    device(per, push, "per-phone")
    push.script("kari-phone", 429, retry_after=120)
    emit(kari.person_id)
    emit(per.person_id)
    delivery.deliver_due()
    assert len(push.attempts) == 1  # Per's push was not sent into the rate limit
    db.session.expire_all()
    waits = {d.next_attempt_at for d in db.session.scalars(select(PushDelivery))}
    assert waits == {frozen_clock.now + timedelta(seconds=120)}
    frozen_clock.advance(seconds=121)
    assert delivery.deliver_due()["sent"] == 2


def test_a_claim_takes_no_more_rows_than_asked(kari, push):
    for n in range(3):
        device(kari, push, f"kari-{n}")
    emit(kari.person_id)
    now = clock.utcnow()
    for _ in range(3):
        assert len(delivery._claim(now, 1, timedelta(minutes=2))) == 1
    assert delivery._claim(now, 1, timedelta(minutes=2)) == []
