"""The follow-up email's MIME object: plain headers written cheaply, the same bytes as Django's."""

from __future__ import annotations

import random

import pytest
from django.core.mail import EmailMessage

from followups.mail import ReminderEmailMessage

SUBJECTS = [
    "Any questions on the Acme rollout agreement?",
    "",
    "x" * 67,  # "Subject: " + 67 = 76: the longest subject Django leaves unfolded
    "x" * 68,
    "x" * 69,
    "a " * 40,
    "two  spaces and a\ttab",
    " leading and trailing ",
    "Ihr Vertrag für Müller & Söhne – noch Fragen?",
    "=?utf-8?q?looks_encoded?= but is not",
    "Re: a long subject that goes on and on, well past the seventy-eight character limit",
]


def _kwargs(subject: str, i: int = 0) -> dict:
    return {
        "subject": subject,
        "body": f"Hi Bea,\n\n{subject}\nBench",
        "from_email": "Closing CRM <crm@example.com>",
        "to": ["bea@buyer.example"],
        "reply_to": ["deal-12+abcdef@reply.example.com"],
        "headers": {
            "Message-ID": f"<bench-{i}@closing-crm>",
            "X-Closing-Reminder": str(i),
            "Date": "Mon, 30 Nov 2026 12:49:41 -0000",
            "X-Echo": subject,
        },
    }


def _same(kwargs: dict) -> None:
    ours, django = ReminderEmailMessage(**kwargs).message(), EmailMessage(**kwargs).message()
    assert list(ours.items()) == list(django.items())
    for linesep in ("\n", "\r\n"):
        assert ours.as_bytes(linesep=linesep) == django.as_bytes(linesep=linesep)


@pytest.mark.parametrize("subject", SUBJECTS)
def test_the_reminder_email_is_byte_for_byte_djangos(subject):
    """Headers, values and flattened bytes are what Django's EmailMessage gives, for the
    SMTP line ending and the file backend's."""
    _same(_kwargs(subject))


def test_random_subjects_flatten_like_djangos():
    """Random ASCII, spaces, tabs, umlauts and control characters around the folding limit."""
    rng = random.Random(13)
    alphabet = "ab c\t=?:;,.<>\"'@ xyzäöü€  -_\x7f"
    for i in range(500):
        subject = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 120)))
        _same(_kwargs(subject, i))


def test_a_message_with_an_attachment_is_djangos_own():
    message = ReminderEmailMessage(**_kwargs("Contract"))
    message.attach("contract.txt", "the terms", "text/plain")
    assert type(message.message()).__name__ == "SafeMIMEMultipart"
