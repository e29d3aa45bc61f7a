"""Services for email the rep writes to the buying group from the deal page.

Texts are templates over the deal's fields, rendered in the same sandbox as contracts and
cadences. Each email is a `DealEmail` row (the timeline line is written with it) and is
sent by a Celery task after commit, with a Message-ID naming the deal and In-Reply-To /
References pointing at the last message exchanged with that buyer on this deal, so mail
clients show one thread and the buyer's answer comes back to the deal.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext

from deals import addressing
from deals.models import Contact, Deal, DealEvent, User, can_work_deal
from deals.services import DealError, NotPermitted, deal_activity_record

from .models import BouncingAddress, DealEmail

log = logging.getLogger(__name__)

MAX_SUBJECT = 200
MAX_BODY = 20000


# --- the signing link in buyer emails ----------------------------------------------------


def signing_url_for(version) -> str:
    """A freshly issued link to `version` if it is a built-in contract out for signature."""
    if version is None or version.provider != "builtin" or not version.envelope_id:
        return ""
    if not version.is_out:
        return ""
    from contracts.esign.builtin import signing_url

    return signing_url(version)  # the link of the first signer whose turn it is


def signing_link_paragraph(version, body: str) -> str:
    """The paragraph that puts the signing link under a reminder (unless its text has it)."""
    url = signing_url_for(version)
    if not url or url in body:
        return ""
    return (
        f"\n\nThe contract (version {version.number}) is ready for you to sign here, "
        f"no account needed:\n{url}\n"
    )


# --- the rep writes ------------------------------------------------------------------------


def deal_email_recipients(deal: Deal) -> list[Contact]:
    """The buying group's contacts with an email address, each once."""
    seen: dict[int, Contact] = {}
    for stakeholder in deal.stakeholders.select_related("contact").order_by("role", "pk"):
        contact = stakeholder.contact
        if contact.email and contact.archived_at is None:
            seen.setdefault(contact.pk, contact)
    return list(seen.values())


def _render(text: str, *, deal: Deal, contact: Contact, by: User) -> str:
    from django.template import Context, TemplateSyntaxError

    from contracts.documents import SANDBOX

    from .services import _template_data

    try:
        template = SANDBOX.from_string(text)
    except TemplateSyntaxError as exc:
        raise DealError(gettext("The email has a template error: %(exc)s") % {"exc": exc}) from None
    data = _template_data(
        {
            "deal": deal,
            "account": deal.account,
            "contact": contact,
            "rep": by,
            "site_url": settings.SITE_URL,
        }
    )
    return template.render(Context(data, autoescape=False)).strip()


def _thread_parent(deal: Deal, address: str) -> DealEmail | None:
    """The last message exchanged with `address` on this deal (to answer in its thread)."""
    return (
        DealEmail.objects.filter(deal=deal)
        .filter(
            Q(direction=DealEmail.Direction.OUT, to_addresses__iexact=address)
            | Q(
                direction=DealEmail.Direction.IN,
                kind=DealEmail.Kind.REPLY,
                from_address__iexact=address,
            )
        )
        .order_by("-created_at", "-pk")
        .first()
    )


@transaction.atomic
def deal_email_send(
    *, deal: Deal, by: User, contact: Contact, subject: str, body: str
) -> DealEmail:
    """Write to one buying-group contact; it leaves after commit (Celery), threaded."""
    if not can_work_deal(deal, by):
        raise NotPermitted(can_work_deal.denied_message)
    if not deal.stakeholders.filter(contact=contact).exists():
        raise DealError(
            gettext("%(contact)s is not in this deal's buying group.") % {"contact": contact}
        )
    if not contact.email:
        raise DealError(gettext("%(contact)s has no email address.") % {"contact": contact})
    subject = " ".join((subject or "").split())
    if not subject:
        raise DealError(gettext("Write a subject."))
    if not (body or "").strip():
        raise DealError(gettext("The email is empty."))
    if len(subject) > MAX_SUBJECT or len(body) > MAX_BODY:
        raise DealError(
            gettext(
                "Keep the subject under %(MAX_SUBJECT)s and the text under %(MAX_BODY)s characters."
            )
            % {"MAX_SUBJECT": MAX_SUBJECT, "MAX_BODY": MAX_BODY}
        )
    subject = " ".join(_render(subject, deal=deal, contact=contact, by=by).split())[:300]
    text = _render(body, deal=deal, contact=contact, by=by)
    if not subject or not text:
        raise DealError(gettext("The email renders empty: check the template variables."))
    parent = _thread_parent(deal, contact.email)
    references = ""
    if parent is not None:
        # RFC 5322 §3.6.4: the parent's References (or its In-Reply-To), then the parent.
        earlier = parent.references or parent.in_reply_to
        references = " ".join(f"{earlier} {parent.message_id}".split()[-20:])
    email = DealEmail.objects.create(
        deal=deal,
        direction=DealEmail.Direction.OUT,
        kind=DealEmail.Kind.REP_EMAIL,
        status=DealEmail.Status.QUEUED,
        message_id=addressing.message_id(deal.pk),
        in_reply_to=parent.message_id if parent else "",
        references=references,
        from_address=settings.DEFAULT_FROM_EMAIL[:300],
        to_addresses=contact.email,
        subject=subject,
        text=text,
        source="app",
        contact=contact,
        sent_by=by,
    )
    bouncing = BouncingAddress.objects.filter(email__iexact=contact.email).exists()
    deal_activity_record(
        deal=deal,
        by=by,
        kind=DealEvent.Kind.EMAIL,
        reason=f"Email to {contact} <{contact.email}>: “{subject}”"
        + (" (this address bounced before)" if bouncing else ""),
        email_id=email.pk,
        direction="out",
    )
    from .tasks import send_deal_email

    email_id = email.pk
    transaction.on_commit(lambda: send_deal_email.delay(email_id))
    return email


def deal_email_deliver(*, email_id: int) -> bool:
    """Send one queued rep email; a second run sends nothing (fixed Message-ID)."""
    email = DealEmail.objects.select_related("deal", "sent_by").get(pk=email_id)
    if email.status != DealEmail.Status.QUEUED:
        return False
    headers = {"Message-ID": email.message_id}
    if email.in_reply_to:
        headers["In-Reply-To"] = email.in_reply_to
        headers["References"] = email.references or email.in_reply_to
    rep = email.sent_by
    message = EmailMessage(
        subject=email.subject,
        body=email.text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[email.to_addresses],
        reply_to=addressing.reply_to(email.deal_id, rep.email if rep else ""),
        headers=headers,
    )
    message.metadata = {"deal_id": str(email.deal_id)}  # ESP tracking events (anymail)
    message.send()
    DealEmail.objects.filter(pk=email.pk, status=DealEmail.Status.QUEUED).update(
        status=DealEmail.Status.SENT, sent_at=timezone.now()
    )
    return True


@transaction.atomic
def deal_email_failed(*, email_id: int, error: str) -> None:
    """Sending gave up: the rep sees it on the timeline."""
    email = DealEmail.objects.select_for_update().select_related("deal").get(pk=email_id)
    if email.status != DealEmail.Status.QUEUED:
        return
    email.status = DealEmail.Status.FAILED
    email.error = error[:2000]
    email.save(update_fields=["status", "error"])
    deal_activity_record(
        deal=email.deal,
        by=None,
        kind=DealEvent.Kind.EMAIL,
        reason=f"Email “{email.subject}” to {email.to_addresses} could not be sent: {error}"[:1000],
        email_id=email.pk,
        failed=True,
    )
