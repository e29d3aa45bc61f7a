"""Buyer replies stop the cadence: SMTP receiver, the raw-MIME endpoint and django-anymail."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import smtplib
import socket
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

import pytest
from django.urls import reverse

from deals.models import DealEvent
from followups.inbound import inbound_email_receive
from followups.models import BouncingAddress, DealEmail, Reminder, RepTask
from followups.services import reminder_email
from notifications.models import Kind, Notification

from .workers import ROOT, database_url

DOMAIN = "replies.example.test"
SECRET = "s3cret-inbound-token"


@pytest.fixture
def inbound(settings):
    settings.INBOUND_EMAIL_DOMAIN = DOMAIN
    settings.INBOUND_EMAIL_SECRET = SECRET
    return settings


def _first_email_reminder(deal) -> Reminder:
    return Reminder.objects.filter(deal=deal, channel="email").order_by("sequence").first()


def _reply(
    to: str, *, subject="Re: the contract", text="Can we talk on Thursday?", **headers
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Ann Buyer <ann@acme.example>"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = headers.pop("message_id", f"<{time.time_ns()}@acme.example>")
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(text + "\n\nOn Mon, Rita wrote:\n> Friendly reminder...\n")
    return message


def _dsn(failed: str, original_id: str, original_reply_to: str, action: str = "failed") -> bytes:
    """A delivery status notification (RFC 3464) as mail servers send it."""
    status = "5.1.1" if action == "failed" else "4.4.1"
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.acme.example>\r\n"
        f"To: {original_reply_to}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <dsn-{time.time_ns()}@mx.acme.example>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="RPT"\r\n'
        "\r\n--RPT\r\nContent-Type: text/plain\r\n\r\n"
        "This is the mail system. Your message could not be delivered.\r\n"
        "\r\n--RPT\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.acme.example\r\n\r\n"
        f"Final-Recipient: rfc822; {failed}\r\nAction: {action}\r\nStatus: {status}\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n"
        "\r\n--RPT\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {original_id}\r\nTo: {failed}\r\nReply-To: {original_reply_to}\r\n"
        "Subject: Following up on the contract\r\n"
        "\r\n--RPT--\r\n"
    ).encode()


def _scheduled(deal) -> int:
    return Reminder.objects.filter(deal=deal, status=Reminder.Status.SCHEDULED).count()


# --- the SMTP receiver, for real ---------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def smtp_receiver(tmp_path: Path, settings):
    port = _free_port()
    var = tmp_path / "var-smtp"
    for folder in ("broker/out", "broker/processed", "media"):
        (var / folder).mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REDIS_URL": "",
        "SECRET_KEY": settings.SECRET_KEY,
        "DEBUG": "0",
        "INBOUND_EMAIL_DOMAIN": DOMAIN,
        "CLOSING_VAR_DIR": str(var),
        "DB_CONN_MAX_AGE": "0",
    }
    log = open(tmp_path / "smtp.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        ["timeout", "-s", "KILL", "120", sys.executable, "manage.py", "inbound_smtp",
         "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        for _ in range(200):  # up to 20 s for Django to start and the port to listen
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            assert proc.poll() is None, (tmp_path / "smtp.log").read_text()
            time.sleep(0.1)
        else:
            pytest.fail("inbound_smtp did not start:\n" + (tmp_path / "smtp.log").read_text())
        yield port
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=10)
        log.close()


def _wait_for(count: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while DealEmail.objects.count() < count:
        assert time.monotonic() < deadline, "the receiver did not store the message in time"
        time.sleep(0.1)


@pytest.mark.django_db(transaction=True)
def test_smtp_receiver_pauses_on_a_reply_not_on_an_out_of_office_and_marks_bounces(
    postgres, rep, deal, sent_version, inbound, tmp_path
):
    """Mail sent with smtplib to `manage.py inbound_smtp`: an out-of-office is recorded and
    stops nothing; the buyer's reply to a reminder pauses the cadence, adds a task and a
    notification (once, even if delivered twice); a bounce report marks the address;
    unreadable mail is refused with 550."""
    reminder = _first_email_reminder(deal)
    sent = reminder_email(reminder)
    reply_to = sent.reply_to[0]
    assert reply_to.startswith("replies+d") and reply_to.endswith("@" + DOMAIN)
    before = _scheduled(deal)
    assert before > 0

    with smtp_receiver(tmp_path, inbound) as port, smtplib.SMTP("127.0.0.1", port) as smtp:
        away = _reply(
            reply_to,
            subject="Out of office: back on Monday",
            text="I am out of the office until Monday.",
            Auto_Submitted="auto-replied",
            In_Reply_To=reminder.message_id,
        )
        smtp.send_message(away, to_addrs=[reply_to])
        _wait_for(1)
        assert DealEmail.objects.get().kind == DealEmail.Kind.AUTO_REPLY
        assert _scheduled(deal) == before
        assert not RepTask.objects.filter(kind="email").exists()

        answer = _reply(
            reply_to,
            In_Reply_To=reminder.message_id,
            References=reminder.message_id,
            message_id="<answer-1@acme.example>",
        )
        smtp.send_message(answer, to_addrs=[reply_to])
        smtp.send_message(answer, to_addrs=[reply_to])  # delivered twice
        _wait_for(2)
        time.sleep(0.5)

        bounce = _dsn("ann@acme.example", reminder.message_id, reply_to)
        smtp.sendmail("", [reply_to], bounce)
        _wait_for(3)

        with pytest.raises(smtplib.SMTPDataError) as refused:
            smtp.sendmail("x@example.com", [reply_to], b"this is not an email at all")
        assert refused.value.smtp_code == 550

    replies = DealEmail.objects.filter(kind=DealEmail.Kind.REPLY)
    assert replies.count() == 1
    reply = replies.get()
    assert reply.deal == deal and reply.matched_by == "token" and reply.source == "smtp"
    assert Reminder.objects.filter(deal=deal, status=Reminder.Status.SCHEDULED).count() == 0
    paused = Reminder.objects.filter(deal=deal, status=Reminder.Status.PAUSED)
    assert paused.count() == before
    assert set(paused.values_list("closed_reason", flat=True)) == {"the buyer replied"}
    task = RepTask.objects.get(kind="email")
    assert task.owner == rep and task.title == "Answer the buyer: Re: the contract"
    assert task.note == "Can we talk on Thursday?"
    timeline = DealEvent.objects.filter(deal=deal, kind=DealEvent.Kind.EMAIL)
    assert any("Can we talk on Thursday?" in e.reason for e in timeline)
    assert any("Auto-reply from ann@acme.example" in e.reason for e in timeline)
    notification = Notification.objects.get(recipient=rep, kind=Kind.BUYER_REPLIED)
    assert notification.text == (
        "ann@acme.example replied on “Acme rollout”: “Can we talk on Thursday?”"
    )
    assert BouncingAddress.objects.filter(email="ann@acme.example").exists()
    assert Notification.objects.filter(recipient=rep, kind=Kind.REMINDER_BOUNCED).count() == 1
    assert DealEmail.objects.count() == 3  # the refused message wrote nothing


# --- POST /inbound/email/ ---------------------------------------------------------------------


def _post(client, raw: bytes, secret: str | None = SECRET, **extra):
    headers = {"HTTP_X_INBOUND_SECRET": secret} if secret is not None else {}
    return client.generic(
        "POST", reverse("inbound_email"), raw, content_type="message/rfc822", **headers, **extra
    )


def test_the_endpoint_is_off_without_a_secret(client, settings):
    """While INBOUND_EMAIL_SECRET is empty there is no endpoint (404)."""
    settings.INBOUND_EMAIL_SECRET = ""
    assert _post(client, b"From: a@b.example\n\nhi", secret="").status_code == 404


def test_a_wrong_secret_gets_401_and_writes_nothing(client, inbound, deal):
    """A missing or wrong X-Inbound-Secret is refused with 401."""
    raw = _reply("x@example.com").as_bytes()
    assert _post(client, raw, secret=None).status_code == 401
    response = _post(client, raw, secret="wrong")
    assert response.status_code == 401 and "X-Inbound-Secret" in response.json()["error"]
    assert not DealEmail.objects.exists()


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"this is not an email at all\r\n",
        b"From: ann@acme.example\r\nContent-Type: multipart/mixed\r\n\r\nno boundary here\r\n",
        b"Subject: no sender\r\n\r\nbody\r\n",
        (
            b'From: ann@acme.example\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
            b"no parts at all\r\n"
        ),
    ],
    ids=["empty", "not-mime", "multipart-without-boundary", "no-sender", "boundary-never-starts"],
)
def test_malformed_mime_gets_400_and_writes_nothing(client, inbound, raw):
    """Bad MIME is refused with a 400 and a message; nothing is half-written."""
    response = _post(client, raw)
    assert response.status_code == 400, response.content
    assert response.json()["error"]
    assert not DealEmail.objects.exists()


def test_sizes_and_parts_are_bounded(client, inbound):
    """Too big is 413, too many parts 400, before anything is stored."""
    inbound.INBOUND_EMAIL_MAX_BYTES = 2000
    big = _reply("x@example.com", text="x" * 5000).as_bytes()
    assert _post(client, big).status_code == 413
    inbound.INBOUND_EMAIL_MAX_BYTES = 1_000_000
    inbound.INBOUND_EMAIL_MAX_PARTS = 3
    many = _reply("x@example.com")
    for n in range(5):
        many.add_attachment(b"data", maintype="application", subtype="octet-stream",
                            filename=f"{n}.bin")  # fmt: skip
    response = _post(client, many.as_bytes())
    assert response.status_code == 400 and "parts" in response.json()["error"]
    assert not DealEmail.objects.exists()


def test_a_reply_posted_raw_or_as_a_form_field_is_matched_once(
    client, inbound, rep, deal, sent_version
):
    """The same reply posted as message/rfc822 and again as the form field `email` is
    stored once, on the deal, and pauses its follow-ups."""
    reminder = _first_email_reminder(deal)
    raw = _reply(reminder_email(reminder).reply_to[0], message_id="<r1@acme.example>").as_bytes()
    first = _post(client, raw)
    assert first.status_code == 200
    assert first.json() == {
        "id": first.json()["id"], "kind": "reply", "status": "matched", "deal": deal.pk,
    }  # fmt: skip
    again = client.post(
        reverse("inbound_email"), {"email": raw.decode()}, HTTP_X_INBOUND_SECRET=SECRET
    )
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert DealEmail.objects.count() == 1
    assert _scheduled(deal) == 0
    assert RepTask.objects.filter(kind="email", deal=deal).count() == 1


def test_a_reply_quoting_our_message_id_is_matched_by_thread(client, inbound, deal, rep):
    """A reply sent to the rep's own address still finds the deal by In-Reply-To: the
    Message-IDs of deal email name the deal (signed)."""
    from deals import addressing

    ours = addressing.message_id(deal.pk)
    raw = _reply("rita@example.com", In_Reply_To=ours, References=ours).as_bytes()
    response = _post(client, raw)
    assert response.json()["deal"] == deal.pk
    assert DealEmail.objects.get().matched_by == "thread"
    forged = ours.replace(f"<d{deal.pk}-", f"<d{deal.pk + 1}-")
    stranger = _reply("rita@example.com", In_Reply_To=forged).as_bytes()
    assert _post(client, stranger).json()["status"] == "unmatched"


def test_unmatched_mail_is_kept_for_the_admin_inbox(client, inbound, admin_user):
    """Mail that names no deal is stored, unmatched, and listed in the admin."""
    raw = _reply("sales@example.com", subject="Question about pricing").as_bytes()
    response = _post(client, raw)
    assert response.json()["status"] == "unmatched" and response.json()["deal"] is None
    client.force_login(admin_user)
    page = client.get(reverse("admin:followups_dealemail_changelist") + "?status=unmatched")
    assert page.status_code == 200 and b"Question about pricing" in page.content


def test_a_bounce_report_pauses_and_marks_the_address(client, inbound, rep, deal, sent_version):
    """A DSN naming a reminder marks the address bouncing, pauses the follow-ups and tells
    the rep; a delay report does neither."""
    reminder = _first_email_reminder(deal)
    sent = reminder_email(reminder)
    delayed = _dsn("ann@acme.example", reminder.message_id, sent.reply_to[0], action="delayed")
    assert _post(client, delayed).json()["kind"] == "auto_reply"  # not a failure
    scheduled = _scheduled(deal)
    assert scheduled > 0 and not BouncingAddress.objects.exists()
    DealEmail.objects.all().delete()
    Reminder.objects.filter(deal=deal, status=Reminder.Status.PAUSED).update(
        status=Reminder.Status.SCHEDULED
    )
    scheduled = _scheduled(deal)

    failed = _dsn("ann@acme.example", reminder.message_id, sent.reply_to[0])
    response = _post(client, failed)
    assert response.json()["kind"] == "bounce" and response.json()["deal"] == deal.pk
    assert BouncingAddress.objects.get().email == "ann@acme.example"
    assert _scheduled(deal) == 0
    assert Reminder.objects.filter(deal=deal, status=Reminder.Status.PAUSED).count() == scheduled
    assert not RepTask.objects.filter(kind="email").exists()
    assert Notification.objects.get(recipient=rep).kind == Kind.REMINDER_BOUNCED
    client.force_login(rep)
    page = client.get(deal.get_absolute_url()).content.decode()
    assert 'data-testid="bouncing"' in page and "Email to ann@acme.example bounced" in page


# --- django-anymail (Postmark) ---------------------------------------------------------------


def _basic(user="esp", password="hook-pass") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def anymail_secret(inbound):
    inbound.ANYMAIL = {**inbound.ANYMAIL, "WEBHOOK_SECRET": "esp:hook-pass"}
    return inbound


def test_anymail_webhooks_are_off_without_a_secret(client, inbound):
    """Without ANYMAIL_WEBHOOK_SECRET the ESP webhooks do not exist (forged mail is no risk)."""
    inbound.ANYMAIL = {**inbound.ANYMAIL, "WEBHOOK_SECRET": ""}
    url = reverse("anymail:postmark_inbound_webhook")
    assert client.post(url, "{}", content_type="application/json").status_code == 404


def test_postmark_inbound_feeds_the_same_matcher(client, anymail_secret, rep, deal, sent_version):
    """A Postmark inbound webhook (parsed by anymail) is a reply like any other."""
    reminder = _first_email_reminder(deal)
    reply_to = reminder_email(reminder).reply_to[0]
    payload = {
        "FromFull": {"Email": "ann@acme.example", "Name": "Ann Buyer"},
        "ToFull": [{"Email": reply_to, "Name": ""}],
        "OriginalRecipient": reply_to,
        "Subject": "Re: the contract",
        "MessageID": "a8c1040e-db1c-4e18-ac79-bc5f64c7ce2c",
        "TextBody": "Looks good, one question on billing.",
        "Headers": [
            {"Name": "Message-ID", "Value": "<pm-1@acme.example>"},
            {"Name": "In-Reply-To", "Value": reminder.message_id},
        ],
    }
    url = reverse("anymail:postmark_inbound_webhook")
    wrong = client.post(url, json.dumps(payload), content_type="application/json",
                        HTTP_AUTHORIZATION=_basic(password="nope"))  # fmt: skip
    assert wrong.status_code == 400 and not DealEmail.objects.exists()
    response = client.post(
        url, json.dumps(payload), content_type="application/json", HTTP_AUTHORIZATION=_basic()
    )
    assert response.status_code == 200
    email = DealEmail.objects.get()
    assert email.deal == deal and email.source == "anymail:postmark"
    assert email.kind == DealEmail.Kind.REPLY
    assert _scheduled(deal) == 0
    assert Notification.objects.get(recipient=rep).kind == Kind.BUYER_REPLIED


def test_postmark_bounce_tracking_pauses_once(client, anymail_secret, rep, deal, sent_version):
    """A Postmark hard bounce (tracking webhook) marks the address and pauses the deal's
    follow-ups; the same event delivered again changes nothing more."""
    payload = {
        "RecordType": "Bounce",
        "Type": "HardBounce",
        "ID": 4323372036854775807,
        "Email": "ann@acme.example",
        "Description": "The server was unable to deliver your message (ex: unknown user).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "BouncedAt": "2026-11-30T16:33:54.9070259Z",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Metadata": {"deal_id": str(deal.pk)},
    }
    url = reverse("anymail:postmark_tracking_webhook")
    for _ in range(2):
        response = client.post(url, json.dumps(payload), content_type="application/json",
                               HTTP_AUTHORIZATION=_basic())  # fmt: skip
        assert response.status_code == 200
    assert BouncingAddress.objects.get().email == "ann@acme.example"
    assert _scheduled(deal) == 0
    assert Notification.objects.filter(recipient=rep, kind=Kind.REMINDER_BOUNCED).count() == 1
    assert DealEmail.objects.filter(kind=DealEmail.Kind.BOUNCE).count() == 1


def test_the_service_refuses_before_writing(db, inbound):
    """The one service all doors use refuses bad input with a clear message."""
    from followups.inbound import MalformedEmail

    with pytest.raises(MalformedEmail, match="no sender"):
        inbound_email_receive(raw=b"Subject: hi\r\n\r\nbody", source="test")
    assert not DealEmail.objects.exists()


def test_a_colleague_copying_the_deal_address_is_not_the_buyer(
    client, inbound, rep, teammate, deal, sent_version
):
    """A rep's reply-all to the deal's address is logged on the thread but pauses nothing."""
    reply_to = reminder_email(_first_email_reminder(deal)).reply_to[0]
    message = _reply(reply_to, text="Looping in legal.")
    message.replace_header("From", "Tim <tim@example.com>")
    assert _post(client, message.as_bytes()).json()["status"] == "matched"
    assert _scheduled(deal) > 0
    assert not RepTask.objects.filter(kind="email").exists()
    assert not Notification.objects.exists()
    event = DealEvent.objects.filter(deal=deal, kind=DealEvent.Kind.EMAIL).get()
    assert event.actor == teammate and "Looping in legal." in event.reason


@pytest.mark.django_db(transaction=True)
def test_the_same_reply_delivered_at_once_twice_acts_once(
    postgres, inbound, rep, deal, sent_version
):
    """Two doors deliver the same reply at the same moment (each on its own PostgreSQL
    connection): one row, one pause, one task, one notification; neither delivery fails."""
    import threading

    from django.db import connection

    reply_to = reminder_email(_first_email_reminder(deal)).reply_to[0]
    raw = _reply(reply_to, message_id="<race-1@acme.example>").as_bytes()
    start, results, errors = threading.Barrier(2), [], []

    def deliver(source: str) -> None:
        try:
            start.wait(5)
            results.append(inbound_email_receive(raw=raw, source=source).pk)
        except Exception as exc:  # recorded for the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver, args=(s,)) for s in ("smtp", "http")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert errors == [] and len(results) == 2 and results[0] == results[1]
    assert DealEmail.objects.count() == 1
    assert RepTask.objects.filter(kind="email").count() == 1
    assert Notification.objects.filter(kind=Kind.BUYER_REPLIED).count() == 1
    assert DealEvent.objects.filter(deal=deal, kind=DealEvent.Kind.EMAIL).count() == 1
