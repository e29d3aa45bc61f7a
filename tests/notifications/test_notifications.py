"""Notifications: each kind comes once from its event, the way the user chose, in the bell."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core import mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from contracts import services as contract_services
from contracts.esign.builtin import signing_token
from contracts.mail import signed_copy_send
from contracts.models import ContractVersion
from deals import services as deal_services
from deals.models import Deal, DealState
from deals.signals import deal_reassigned
from notifications import services
from notifications.models import Delivery, DigestSent, Kind, Notification
from tests.conftest import make_user


def _sent(run_on_commit, deal, rep) -> ContractVersion:
    version = contract_services.contract_generate(deal=deal, by=rep)
    run_on_commit(contract_services.contract_send, version=version, by=rep)
    version.refresh_from_db()
    mail.outbox.clear()
    return version


def _kinds(user) -> list[str]:
    return list(Notification.objects.filter(recipient=user).values_list("kind", flat=True))


def test_the_buyer_opening_the_link_notifies_the_rep_once(termed_deal, rep, client, run_on_commit):
    """The first view of a version notifies its owner (in the app); opening it again does not."""
    version = _sent(run_on_commit, termed_deal, rep)
    url = reverse("contracts_public:sign", args=[signing_token(version)])
    assert client.get(url).status_code == 200
    assert client.get(url).status_code == 200
    notification = Notification.objects.get(recipient=rep)
    assert notification.kind == Kind.CONTRACT_VIEWED
    assert notification.deal == termed_deal
    assert notification.link == termed_deal.get_absolute_url()
    assert "Ann Buyer opened contract version 1" in notification.text
    assert notification.delivery == Delivery.IN_APP and not mail.outbox

    client.force_login(rep)
    bell = client.get(reverse("notifications:bell"))
    assert b'data-testid="bell-count">1<' in bell.content
    assert b'hx-trigger="every 30s"' in bell.content


def test_a_signature_notifies_the_rep_hands_over_and_emails_the_signed_copy(
    termed_deal, rep, manager, client, run_on_commit, django_capture_on_commit_callbacks
):
    """Signing emails the rep a notification, the account manager gets the customer, and
    signer and rep get the signed PDF; running the copy task again sends nothing more."""
    version = _sent(run_on_commit, termed_deal, rep)
    token = signing_token(version)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("contracts_public:submit", args=[token]),
            {"full_name": "Ann Buyer", "consent": "on"},
        )
    assert response.status_code == 302
    termed_deal.refresh_from_db()
    assert termed_deal.state == DealState.CLOSED_WON
    assert set(_kinds(rep)) == {Kind.CONTRACT_SIGNED}
    assert _kinds(manager) == [Kind.CUSTOMER_HANDOFF]

    by_subject = {m.subject: m for m in mail.outbox}
    copy = by_subject["Signed: Acme rollout (contract version 1)"]
    assert set(copy.to) == {"ann@acme.example", "rita@example.com"}
    (name, pdf, mimetype) = copy.attachments[0]
    assert mimetype == "application/pdf" and pdf.startswith(b"%PDF")
    assert copy.extra_headers["Message-ID"].startswith(f"<d{termed_deal.pk}-")
    signed_note = next(m for m in mail.outbox if m.to == ["rita@example.com"] and m is not copy)
    assert "Ann Buyer signed contract version 1" in signed_note.body
    handoff = next(m for m in mail.outbox if m.to == ["mona@example.com"])
    assert "you take over onboarding" in handoff.body

    sent = len(mail.outbox)
    assert signed_copy_send(version_id=version.pk) is False  # a retried task sends nothing
    assert len(mail.outbox) == sent
    assert Notification.objects.filter(recipient=rep).count() == 1


def test_a_decline_notifies_once(termed_deal, rep, client, run_on_commit):
    """A declined contract notifies its owner once, with the buyer's reason."""
    version = _sent(run_on_commit, termed_deal, rep)
    url = reverse("contracts_public:decline", args=[signing_token(version)])
    client.post(url, {"reason": "Payment terms too short"})
    client.post(url, {"reason": "Again"})  # refused: already declined
    notification = Notification.objects.get(recipient=rep, kind=Kind.CONTRACT_DECLINED)
    assert "Payment terms too short" in notification.text


def test_a_failed_send_notifies_once_per_failure(termed_deal, rep, run_on_commit):
    """Sending that fails for good notifies; the same failure recorded twice does not, a
    retry that fails again does."""
    version = _sent(run_on_commit, termed_deal, rep)
    contract_services.contract_send_failed(version_id=version.pk, message="Mail server down.")
    contract_services.contract_send_failed(version_id=version.pk, message="Mail server down.")
    assert _kinds(rep) == [Kind.SENDING_FAILED]
    version.refresh_from_db()
    run_on_commit(contract_services.contract_resend, version=version, by=rep)  # sent again
    version.refresh_from_db()
    assert version.status == ContractVersion.Status.SENT
    contract_services.contract_send_failed(version_id=version.pk, message="Still down.")
    assert _kinds(rep).count(Kind.SENDING_FAILED) == 2


def test_a_signature_after_the_deal_closed_is_flagged(termed_deal, rep, client, run_on_commit):
    """A buyer who signs a contract of a deal already lost makes a 'signed after close'."""
    version = _sent(run_on_commit, termed_deal, rep)
    deal_services.deal_transition(
        deal=termed_deal, transition="mark_lost", by=rep, loss_reason="timing"
    )
    client.post(
        reverse("contracts_public:submit", args=[signing_token(version)]),
        {"full_name": "Ann Buyer", "consent": "on"},
    )
    version.refresh_from_db()
    assert version.status == ContractVersion.Status.COMPLETED
    notification = Notification.objects.get(recipient=rep, kind=Kind.SIGNED_AFTER_CLOSE)
    assert "already closed / lost" in notification.text
    assert not Notification.objects.filter(kind=Kind.CONTRACT_SIGNED).exists()


def test_a_manager_override_tells_the_owner(deal, rep, manager):
    """A manager's override to won notifies the rep whose deal it is; the manager, who is
    the account manager too, is not told about their own action."""
    deal_services.deal_transition(
        deal=deal, transition="override_won", by=manager, reason="Signed on paper"
    )
    notification = Notification.objects.get(recipient=rep)
    assert notification.kind == Kind.MANAGER_OVERRIDE
    assert "Signed on paper" in notification.text
    assert not Notification.objects.filter(recipient=manager).exists()


def test_reassigning_a_deal_tells_the_new_owner(deal, rep, teammate, manager):
    """The deal_reassigned signal (sent by whoever reassigns deals) notifies the new owner."""
    with transaction.atomic():
        Deal.objects.filter(pk=deal.pk).update(owner=teammate)
        deal.owner = teammate
        deal_reassigned.send(sender=Deal, deal=deal, previous_owner=rep, by=manager)
        deal_reassigned.send(sender=Deal, deal=deal, previous_owner=rep, by=manager)
    notification = Notification.objects.get(recipient=teammate)
    assert notification.kind == Kind.DEAL_REASSIGNED
    assert "it was Rita’s" in notification.text


def test_a_stalled_deal_notifies_once_per_stall(deal, rep):
    """A deal without activity past its state's threshold notifies its owner once; new
    activity and a new stall notify again."""
    old = timezone.now() - dt.timedelta(days=30)
    Deal.objects.filter(pk=deal.pk).update(last_activity_at=old)
    assert services.stalled_deals_notify() == 1
    assert services.stalled_deals_notify() == 0
    deal_services.deal_note_add(deal=deal, by=rep, text="Called, no answer")
    assert services.stalled_deals_notify() == 0  # active again
    Deal.objects.filter(pk=deal.pk).update(last_activity_at=old + dt.timedelta(days=1))
    assert services.stalled_deals_notify() == 1
    assert Notification.objects.filter(recipient=rep, kind=Kind.DEAL_STALLED).count() == 2


def test_notify_is_idempotent_per_event_and_emails_once(
    deal, rep, django_capture_on_commit_callbacks
):
    """The same causing event (a retried task) makes one row and one email."""
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            services.notify(
                recipient=rep, kind=Kind.BUYER_REPLIED, deal=deal, key="reply:1", text="Hi"
            )
    assert Notification.objects.filter(recipient=rep).count() == 1
    assert len(mail.outbox) == 1
    assert mail.outbox[0].extra_headers["Message-ID"].startswith("<notification-")
    assert services.notification_email_send(notification_id=Notification.objects.get().pk) is False


@pytest.mark.parametrize(
    ("delivery", "stored", "emailed"),
    [
        (Delivery.OFF, False, False),
        (Delivery.IN_APP, True, False),
        (Delivery.DIGEST, True, False),
        (Delivery.EMAIL, True, True),
    ],
)
def test_preferences_are_honoured(
    deal, rep, delivery, stored, emailed, django_capture_on_commit_callbacks
):
    """Off stores nothing, in-app and digest store without an email now, email sends at once."""
    services.preferences_set(user=rep, choices={Kind.CONTRACT_VIEWED: delivery})
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        services.notify(
            recipient=rep, kind=Kind.CONTRACT_VIEWED, deal=deal, key="viewed:9", text="Seen"
        )
    assert Notification.objects.filter(recipient=rep).exists() is stored
    assert bool(mail.outbox) is emailed
    other_kind = services.preferences_for(rep)[Kind.CONTRACT_SIGNED]
    assert other_kind == Delivery.EMAIL  # untouched kinds keep their default


def test_the_preferences_page_saves_and_refuses_nonsense(client, rep):
    """The settings page lists every kind; an unknown delivery changes nothing (400)."""
    client.force_login(rep)
    page = client.get(reverse("notifications:preferences"))
    assert page.status_code == 200
    for _, label in Kind.choices:
        assert label.encode() in page.content
    bad = client.post(reverse("notifications:preferences"), {Kind.DEAL_STALLED: "pigeon"})
    assert bad.status_code == 400
    assert services.preferences_for(rep)[Kind.DEAL_STALLED] == Delivery.DIGEST
    ok = client.post(reverse("notifications:preferences"), {Kind.DEAL_STALLED: "off"})
    assert ok.status_code == 302
    assert services.preferences_for(rep)[Kind.DEAL_STALLED] == Delivery.OFF


def test_the_digest_groups_a_day_at_eight_in_the_users_time_zone(deal, make_deal, rep):
    """Digest notifications wait for 08:00 in the user's zone and go out as one email, once;
    what came after 08:00 waits for the next morning's digest."""
    rep.time_zone = "America/New_York"
    rep.save()
    second = make_deal(title="Beta expansion")
    services.preferences_set(user=rep, choices={Kind.CONTRACT_VIEWED: Delivery.DIGEST})
    at = dt.datetime.fromisoformat
    for when, on, text in [
        ("2026-11-29T10:00:00-05:00", deal, "Ann opened v1"),
        ("2026-11-29T15:30:00-05:00", second, "Bob opened v1"),
        ("2026-11-29T21:00:00-05:00", deal, "Ann opened v1 again"),
        ("2026-11-30T09:00:00-05:00", deal, "Ann opened v2"),
    ]:
        with time_machine.travel(at(when), tick=False):
            services.notify(
                recipient=rep, kind=Kind.CONTRACT_VIEWED, deal=on, key=f"v:{when}", text=text
            )
    # 08:00 in Berlin (the default zone) is 02:00 in New York: nothing yet for this user.
    assert services.digests_send_due(now=at("2026-11-30T02:00:00-05:00")) == 0
    assert services.digests_send_due(now=at("2026-11-30T07:59:00-05:00")) == 0
    assert services.digests_send_due(now=at("2026-11-30T08:00:00-05:00")) == 1
    assert services.digests_send_due(now=at("2026-11-30T08:30:00-05:00")) == 0
    assert len(mail.outbox) == 1
    body = mail.outbox[0].body
    assert "Ann opened v1" in body and "Bob opened v1" in body and "Ann opened v1 again" in body
    assert "Ann opened v2" not in body
    assert services.digests_send_due(now=at("2026-12-01T08:00:00-05:00")) == 1
    assert "Ann opened v2" in mail.outbox[1].body
    assert [d.count for d in DigestSent.objects.order_by("day")] == [3, 1]


def test_the_digest_email_lists_the_day_by_deal(deal, make_deal, rep):
    """One email: each deal once, its updates under it, in the user's local times."""
    rep.time_zone = "Asia/Tokyo"
    rep.save()
    second = make_deal(title="Beta expansion")
    services.preferences_set(user=rep, choices={Kind.DEAL_STALLED: Delivery.DIGEST})
    at = dt.datetime.fromisoformat
    for when, on, text in [
        ("2026-11-29T09:00:00+09:00", deal, "First"),
        ("2026-11-29T12:00:00+09:00", second, "Second"),
        ("2026-11-29T18:00:00+09:00", deal, "Third"),
    ]:
        with time_machine.travel(at(when), tick=False):
            services.notify(recipient=rep, kind=Kind.DEAL_STALLED, deal=on, key=when, text=text)
    assert services.digests_send_due(now=at("2026-11-30T07:30:00+09:00")) == 0
    assert services.digests_send_due(now=at("2026-11-30T08:01:00+09:00")) == 1
    assert services.digests_send_due(now=at("2026-11-30T08:06:00+09:00")) == 0
    assert len(mail.outbox) == 1
    body = mail.outbox[0].body
    assert mail.outbox[0].subject == "Your deals on 30 November: 3 updates"
    assert body.count("Acme rollout") == 1 and body.count("Beta expansion") == 1
    assert body.index("First") < body.index("Third") < body.index("Beta expansion")
    assert "Sun 09:00 Deal stalled: First" in body
    assert Notification.objects.filter(digested_at__isnull=True).count() == 0


def test_the_list_marks_read_and_opens_the_deal(client, deal, rep, teammate):
    """The list shows the user's notifications; opening one marks it read and goes to the
    deal; mark-all clears the rest; someone else's is a 404."""
    for n in range(3):
        with transaction.atomic():
            services.notify(
                recipient=rep, kind=Kind.CONTRACT_VIEWED, deal=deal, key=f"k{n}", text=f"Note {n}"
            )
    theirs = services.notify(
        recipient=teammate, kind=Kind.CONTRACT_VIEWED, deal=deal, key="t", text="Theirs"
    )
    client.force_login(rep)
    page = client.get(reverse("notifications:list"))
    assert b"3 unread" in page.content and b"Theirs" not in page.content
    first = Notification.objects.filter(recipient=rep).first()
    opened = client.post(reverse("notifications:open", args=[first.pk]))
    assert opened.status_code == 302 and opened["Location"] == deal.get_absolute_url()
    first.refresh_from_db()
    assert first.read_at is not None
    partial = client.post(
        reverse(
            "notifications:read",
            args=[Notification.objects.unread().filter(recipient=rep).first().pk],
        ),
        HTTP_HX_REQUEST="true",
    )
    assert partial.status_code == 200 and b"Mark as read" not in partial.content
    client.post(reverse("notifications:read_all"))
    assert not Notification.objects.filter(recipient=rep).unread().exists()
    assert client.post(reverse("notifications:open", args=[theirs.pk])).status_code == 404
    assert Notification.objects.get(pk=theirs.pk).read_at is None
    other = make_user("zed", None)
    client.force_login(other)
    assert client.get(reverse("notifications:bell")).content.count(b"bell-count") == 0


def test_a_signed_out_bell_stops_polling(client):
    """Polling after the session ended gets htmx's stop code, not the login page."""
    response = client.get(reverse("notifications:bell"))
    assert response.status_code == 286 and response.content == b""


@pytest.mark.django_db(transaction=True)
def test_one_event_notified_from_two_connections_at_once_is_one_row(postgres, deal, rep):
    """Two workers running the same event's code at the same moment (each its own
    PostgreSQL connection) make one notification, and neither fails."""
    import threading

    from django.db import connection

    start, errors = threading.Barrier(2), []

    def run() -> None:
        try:
            start.wait(5)
            with transaction.atomic():
                services.notify(
                    recipient=rep, kind=Kind.CONTRACT_VIEWED, deal=deal, key="race", text="Seen"
                )
        except Exception as exc:  # recorded for the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert errors == []
    assert Notification.objects.filter(recipient=rep, key="race").count() == 1


def test_the_list_and_the_bell_take_a_fixed_number_of_queries(
    client, deal, make_deal, rep, django_assert_max_num_queries, django_assert_num_queries
):
    """However many notifications and deals, the list and the bell cost the same queries."""
    client.force_login(rep)

    def add(n: int, start: int) -> None:
        for i in range(start, start + n):
            with transaction.atomic():
                services.notify(
                    recipient=rep,
                    kind=Kind.DEAL_STALLED,
                    deal=make_deal(title=f"Deal {i}"),
                    key=f"n{i}",
                    text=f"Stalled {i}",
                )

    add(2, 0)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        assert client.get(reverse("notifications:list")).status_code == 200
    add(20, 2)
    with django_assert_num_queries(len(few.captured_queries)):
        assert b"Stalled 21" in client.get(reverse("notifications:list")).content
    with django_assert_max_num_queries(4):  # session, user, count
        client.get(reverse("notifications:bell"))
