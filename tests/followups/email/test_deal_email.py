"""The buyer's side of deal email: signing links in reminders, Reply-To, the rep's emails."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.urls import reverse

from contracts import services as contract_services
from contracts.models import ContractVersion
from deals import addressing
from deals.models import DealEvent
from followups.deal_email import deal_email_send
from followups.inbound import inbound_email_receive
from followups.models import DealEmail, Reminder
from followups.services import reminder_email

DOMAIN = "replies.example.test"


@pytest.fixture(autouse=True)
def inbound_domain(settings):
    settings.INBOUND_EMAIL_DOMAIN = DOMAIN


@pytest.fixture
def builtin_out(termed_deal, rep, run_on_commit):
    """A built-in contract out for signature, its cadence planned."""
    version = contract_services.contract_generate(deal=termed_deal, by=rep)
    run_on_commit(contract_services.contract_send, version=version, by=rep)
    version.refresh_from_db()
    mail.outbox.clear()
    return version


def test_every_reminder_carries_a_fresh_link_that_opens_the_contract(
    builtin_out, termed_deal, client
):
    """A reminder email has the deal's reply address, and a signing link (issued when it is
    sent) that opens the version out for signature."""
    reminder = Reminder.objects.filter(deal=termed_deal, channel="email").first()
    message = reminder_email(reminder)
    assert message.reply_to == [f"replies+{addressing.deal_token(termed_deal.pk)}@{DOMAIN}"]
    link = re.search(r"https?://\S+/sign/\S+/", message.body).group(0)
    assert "ready for you to sign" in message.body
    response = client.get(link.replace("http://127.0.0.1:8000", ""))
    assert response.status_code == 200 and b"Acme GmbH" in response.content


def test_a_reminder_of_a_withdrawn_version_has_no_link(builtin_out, termed_deal, rep):
    """No link is offered for a version that can no longer be signed."""
    reminder = Reminder.objects.filter(deal=termed_deal, channel="email").first()
    ContractVersion.objects.filter(pk=builtin_out.pk).update(status=ContractVersion.Status.VOIDED)
    reminder.contract_version.refresh_from_db()
    assert "/sign/" not in reminder_email(reminder).body


def test_the_signing_email_names_the_deal_for_replies(termed_deal, rep, run_on_commit):
    """The signing-link email has the deal's Reply-To and a Message-ID naming the deal."""
    version = contract_services.contract_generate(deal=termed_deal, by=rep)
    run_on_commit(contract_services.contract_send, version=version, by=rep)
    sent = mail.outbox[0]
    assert sent.reply_to[0].startswith(f"replies+d{termed_deal.pk}-")
    assert addressing.deal_id_from_message_ids([sent.extra_headers["Message-ID"]]) == termed_deal.pk
    assert "works as long as this version is out for signature" in sent.body


def test_the_rep_writes_from_the_deal_page_threaded_and_logged(
    client, termed_deal, rep, django_capture_on_commit_callbacks
):
    """The compose page lists the buying group; the email renders the deal's fields, leaves
    after commit, is on the timeline, and the next one answers in the same thread."""
    client.force_login(rep)
    url = reverse("followups:deal_email", args=[termed_deal.pk])
    page = client.get(url)
    assert page.status_code == 200 and b"Ann Buyer &lt;ann@acme.example&gt;" in page.content
    contact = termed_deal.stakeholders.get().contact
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            url,
            {
                "contact": contact.pk,
                "subject": "Next steps for {{ deal.title }}",
                "body": "Hi {{ contact.first_name }},\n\nthe {{ deal.currency }} "
                "{{ deal.amount }} offer stands.\n\n{{ rep.first_name }}",
            },
        )
    assert response.status_code == 302
    first = mail.outbox[-1]
    assert first.subject == "Next steps for Acme rollout"
    assert first.body.startswith("Hi Ann,\n\nthe EUR 12,000.00 offer stands.")
    assert first.reply_to[0].startswith(f"replies+d{termed_deal.pk}-")
    assert "In-Reply-To" not in first.extra_headers
    assert DealEmail.objects.get().status == DealEmail.Status.SENT
    assert DealEvent.objects.filter(
        deal=termed_deal, kind=DealEvent.Kind.EMAIL, reason__contains="Next steps for Acme"
    ).exists()

    # The buyer answers; the rep's next email is in the same thread.
    reply = (
        f"From: Ann <ann@acme.example>\r\nTo: {first.reply_to[0]}\r\nSubject: Re: Next steps\r\n"
        f"Message-ID: <ann-1@acme.example>\r\nIn-Reply-To: {first.extra_headers['Message-ID']}"
        "\r\n\r\nThursday works.\r\n"
    ).encode()
    inbound_email_receive(raw=reply, source="test")
    with django_capture_on_commit_callbacks(execute=True):
        deal_email_send(
            deal=termed_deal, by=rep, contact=contact, subject="Thursday", body="See you then."
        )
    second = mail.outbox[-1]
    assert second.extra_headers["In-Reply-To"] == "<ann-1@acme.example>"
    assert first.extra_headers["Message-ID"] in second.extra_headers["References"]


def test_bad_emails_are_refused_clearly(client, termed_deal, rep, other_rep, teammate):
    """Template errors and empty texts are form errors; strangers cannot write."""
    client.force_login(rep)
    url = reverse("followups:deal_email", args=[termed_deal.pk])
    contact = termed_deal.stakeholders.get().contact
    broken = client.post(url, {"contact": contact.pk, "subject": "Hi", "body": "{% load x %}"})
    assert broken.status_code == 400 and b"template error" in broken.content
    assert not DealEmail.objects.exists()
    client.force_login(other_rep)
    assert client.get(url).status_code == 404
    client.force_login(teammate)  # may read the team's deals, not write on them
    assert client.get(url).status_code == 403
