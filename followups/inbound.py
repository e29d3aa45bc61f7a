"""Services for mail coming back: buyers' replies, auto-replies and bounce reports.

Three doors lead here and all call `inbound_email_receive` with the raw MIME bytes: the SMTP
receiver (`manage.py inbound_smtp`), `POST /inbound/email/` and django-anymail's inbound
signal (its tracking signal's bounces call `email_bounce_record`). The message is bounded and
checked before anything is written; then, in one transaction:

- a reply that names a deal (the signed `replies+<token>@` address, or one of our
  Message-IDs in In-Reply-To/References) goes on the deal's timeline, pauses the deal's
  scheduled follow-ups ("buyer replied"), gives the rep an "answer the buyer" task, and
  sends `buyer_replied` (the notifications app tells the rep);
- an auto-reply (out of office…) is recorded on the timeline and stops nothing;
- a delivery-failure report marks the address as bouncing, pauses the follow-ups and
  sends `email_bounced`;
- anything else is kept unmatched, for the admin inbox. Nothing is dropped.

`DealEmail.message_id` is unique: the same message delivered twice is acted on once.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import logging
import re
from dataclasses import dataclass, field
from email import errors as mail_errors
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.html import strip_tags

from deals import addressing
from deals.models import Deal, DealEvent, User
from deals.services import deal_activity_record

from .models import BouncingAddress, DealEmail, Reminder, RepTask
from .signals import buyer_replied, email_bounced

log = logging.getLogger(__name__)


class InboundRefused(Exception):
    """The message is refused before anything was written; `message` says why."""

    status = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class MalformedEmail(InboundRefused):
    """Not a MIME message we can read."""


class EmailTooLarge(InboundRefused):
    status = 413


# --- reading a message -----------------------------------------------------------------

_FATAL_DEFECTS = (
    mail_errors.NoBoundaryInMultipartDefect,
    mail_errors.StartBoundaryNotFoundDefect,
    mail_errors.MultipartInvariantViolationDefect,
    mail_errors.MissingHeaderBodySeparatorDefect,
)
_HEADER_LINE = re.compile(rb"^[!-9;-~]{1,76}:")
_MAX_DEPTH = 10

_OUT_OF_OFFICE = re.compile(
    r"^\s*(auto(matic)?[\s_-]*(reply|response|antwort)|out of (the )?office|away from|"
    r"on (vacation|holiday|leave)|abwesenheit|automatische antwort|r[ée]ponse automatique|"
    r"absence|vacation)",
    re.IGNORECASE,
)


def parse_message(raw: bytes) -> EmailMessage:
    """Parse bounded raw MIME; MalformedEmail or EmailTooLarge before anything is written."""
    if not raw or not raw.strip():
        raise MalformedEmail("The message is empty.")
    if len(raw) > settings.INBOUND_EMAIL_MAX_BYTES:
        raise EmailTooLarge(f"The message is larger than {settings.INBOUND_EMAIL_MAX_BYTES} bytes.")
    first = raw.lstrip(b"\r\n").split(b"\n", 1)[0]
    if not (_HEADER_LINE.match(first) or first.startswith(b"From ")):
        raise MalformedEmail("The message does not start with a header.")
    try:
        message = email.message_from_bytes(raw, policy=email.policy.default)
    except Exception as exc:  # the parser is lenient; anything it raises is bad input
        raise MalformedEmail(f"The message cannot be parsed ({type(exc).__name__}).") from None
    for parts, (part, depth) in enumerate(_walk(message), start=1):
        if parts > settings.INBOUND_EMAIL_MAX_PARTS:
            raise MalformedEmail(
                f"The message has more than {settings.INBOUND_EMAIL_MAX_PARTS} parts."
            )
        if depth > _MAX_DEPTH:
            raise MalformedEmail("The message is nested too deeply.")
        bad = [d for d in part.defects if isinstance(d, _FATAL_DEFECTS)]
        if bad:
            raise MalformedEmail(f"Broken MIME structure: {type(bad[0]).__name__}.")
    try:
        sender = parseaddr(str(message.get("From", "")))[1]
    except Exception:
        sender = ""
    if "@" not in sender:
        raise MalformedEmail("The message has no sender (From) address.")
    return message


def _walk(message: Message, depth: int = 0):
    yield message, depth
    if message.is_multipart():
        payload = message.get_payload()
        if isinstance(payload, list):
            for part in payload:
                if isinstance(part, Message):
                    yield from _walk(part, depth + 1)


def _header(message: Message, name: str) -> str:
    try:
        return " ".join(str(message.get(name, "") or "").split())
    except Exception:  # an undecodable header is treated as missing
        return ""


def _addresses(message: Message, *names: str) -> list[str]:
    values = [_header(message, name) for name in names]
    return [addr.lower() for _, addr in getaddresses([v for v in values if v]) if "@" in addr]


def _message_ids(*values: str) -> list[str]:
    return re.findall(r"<[^<>\s]{1,250}>", " ".join(values))


def _text(message: EmailMessage) -> str:
    try:
        body = message.get_body(preferencelist=("plain", "html"))
        content = body.get_content() if body is not None else ""
        if body is not None and body.get_content_type() == "text/html":
            content = strip_tags(content)
    except Exception:
        content = ""
    if not isinstance(content, str):
        content = ""
    return content.strip()[: settings.INBOUND_EMAIL_MAX_TEXT]


def reply_part(text: str) -> str:
    """What the buyer wrote, without the quoted email below it."""
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(">"):
            break
        if re.match(
            r"^(On .{4,200} wrote:|Am .{4,200} schrieb .{1,200}:|-----Original Message)", stripped
        ):
            break
        lines.append(line)
    return "\n".join(lines).strip() or text.strip()


def is_auto_reply(message: Message) -> bool:
    """Written by a machine (out of office, a delay report, the mail system): recorded, but
    it must not stop the follow-ups the way a person's answer does."""
    if message.get_content_type() == "multipart/report":
        return True
    sender = parseaddr(_header(message, "From"))[1].lower()
    if sender.split("@")[0] in ("mailer-daemon", "postmaster", "noreply", "no-reply"):
        return True
    auto = _header(message, "Auto-Submitted").lower()
    if auto and auto != "no":
        return True
    if _header(message, "X-Autoreply") or _header(message, "X-Autorespond"):
        return True
    if _header(message, "X-Auto-Response-Suppress").lower() in ("all", "oof", "autoreply"):
        return True
    if _header(message, "Precedence").lower() in ("auto_reply", "auto-reply", "bulk", "junk"):
        return True
    return bool(_OUT_OF_OFFICE.search(_header(message, "Subject")))


@dataclass
class Bounce:
    recipients: list[str] = field(default_factory=list)
    reason: str = ""
    original: Message | None = None


def delivery_failure(message: Message) -> Bounce | None:
    """A DSN (multipart/report; report-type=delivery-status) with failed recipients, or None.

    Delays ("Action: delayed") are not failures: the mail may still arrive.
    """
    if message.get_content_type() != "multipart/report":
        return None
    if (message.get_param("report-type") or "").lower() != "delivery-status":
        return None
    bounce = Bounce()
    for part, _depth in _walk(message):
        kind = part.get_content_type()
        if kind == "message/delivery-status":
            for block in part.get_payload() or []:
                if not isinstance(block, Message):
                    continue
                action = _header(block, "Action").lower()
                status = _header(block, "Status")
                recipient = _header(block, "Final-Recipient") or _header(
                    block, "Original-Recipient"
                )
                if not recipient:
                    continue
                if action == "failed" or status.startswith("5"):
                    address = recipient.split(";", 1)[-1].strip().strip("<>").lower()
                    if "@" in address:
                        bounce.recipients.append(address)
                        bounce.reason = (_header(block, "Diagnostic-Code") or f"Status {status}")[
                            :500
                        ]
        elif kind in ("message/rfc822", "text/rfc822-headers") and bounce.original is None:
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                bounce.original = payload[0]
            elif isinstance(payload, str):
                bounce.original = email.message_from_string(payload, policy=email.policy.default)
    return bounce if bounce.recipients else None


# --- which deal ---------------------------------------------------------------------------


def deal_for_message(
    message: Message, *, envelope_to: list[str] = (), original: bool = False
) -> tuple[Deal | None, str]:
    """The deal a message answers, and how it was found ("token" or "thread").

    With `original=True` the message is one of ours quoted in a bounce report: its own
    Reply-To and Message-ID name the deal.
    """
    names = ("Reply-To", "From") if original else ("To", "Cc", "Delivered-To", "X-Original-To")
    recipients = [*envelope_to, *_addresses(message, *names)]
    deal_id = addressing.deal_id_from_addresses(recipients)
    how = "token"
    if deal_id is None:
        how = "thread"
        threads = ("Message-ID",) if original else ("In-Reply-To", "References")
        ids = _message_ids(*(_header(message, name) for name in threads))
        deal_id = addressing.deal_id_from_message_ids(ids)
        if deal_id is None and ids:
            deal_id = (
                Reminder.objects.filter(message_id__in=ids)
                .values_list("deal_id", flat=True)
                .first()
                or DealEmail.objects.filter(message_id__in=ids, deal__isnull=False)
                .values_list("deal_id", flat=True)
                .first()
            )
    if deal_id is None:
        return None, ""
    deal = Deal.objects.select_related("owner").filter(pk=deal_id).first()
    return deal, (how if deal else "")


# --- recording ------------------------------------------------------------------------------


def _message_id_of(message: Message, raw: bytes) -> str:
    found = _message_ids(_header(message, "Message-ID"))
    if found:
        return found[0][:300]
    return f"<sha256-{hashlib.sha256(raw).hexdigest()}@inbound.invalid>"


def _headers_text(message: Message) -> str:
    lines = []
    for name, value in message.items():
        try:
            lines.append(f"{name}: {value}")
        except Exception:
            continue
    return "\n".join(lines)[:20000]


def reminders_pause_for_deal(*, deal: Deal, reason: str) -> int:
    """Hold the deal's scheduled follow-ups (the rep resumes them from the deal page)."""
    ids = list(
        Reminder.objects.filter(deal=deal, status=Reminder.Status.SCHEDULED).values_list(
            "pk", flat=True
        )
    )
    if not ids:
        return 0
    count = Reminder.objects.filter(pk__in=ids, status=Reminder.Status.SCHEDULED).update(
        status=Reminder.Status.PAUSED, closed_reason=reason, updated_at=timezone.now()
    )
    deal_activity_record(
        deal=deal,
        by=None,
        kind=DealEvent.Kind.REMINDER,
        reason=f"{count} follow-up{'s' if count != 1 else ''} paused: {reason}.",
        paused=count,
    )
    return count


def _bouncing_mark(address: str, reason: str) -> None:
    now = timezone.now()
    row, created = BouncingAddress.objects.select_for_update().get_or_create(
        email=address, defaults={"reason": reason}
    )
    if not created:
        BouncingAddress.objects.filter(pk=row.pk).update(
            bounces=row.bounces + 1, last_bounced_at=now, reason=reason or row.reason
        )


def _deals_mailing(address: str) -> list[Deal]:
    """Open deals whose follow-ups go to `address` (when a bounce names no deal)."""
    deal_ids = set(
        Reminder.objects.filter(recipient__iexact=address).values_list("deal_id", flat=True)[:50]
    )
    from contracts.models import OUT_STATUSES, ContractVersion

    deal_ids |= set(
        ContractVersion.objects.filter(
            signer_email__iexact=address, status__in=OUT_STATUSES
        ).values_list("deal_id", flat=True)[:50]
    )
    return list(Deal.objects.open().filter(pk__in=deal_ids).select_related("owner"))


def _bounce_effects(
    *, deals: list[Deal], address: str, reason: str, key: str, record: DealEmail | None
) -> None:
    _bouncing_mark(address, reason)
    for deal in deals:
        deal_activity_record(
            deal=deal,
            by=None,
            kind=DealEvent.Kind.EMAIL,
            reason=f"Email to {address} bounced: {reason}"[:1000],
            email_id=record.pk if record else None,
            bounce=True,
        )
        reminders_pause_for_deal(deal=deal, reason=f"email to {address} bounced")
        email_bounced.send(
            sender=DealEmail, deal=deal, address=address, key=f"{key}:{deal.pk}", reason=reason
        )


def inbound_email_receive(
    *, raw: bytes, source: str, envelope_to: list[str] = (), envelope_from: str = ""
) -> DealEmail:
    """Record one inbound message and act on it (see the module docstring). Idempotent."""
    message = parse_message(raw)
    message_id = _message_id_of(message, raw)
    bounce = delivery_failure(message)
    auto = bounce is None and is_auto_reply(message)
    if bounce is not None:
        kind = DealEmail.Kind.BOUNCE
        deal, how = (
            deal_for_message(bounce.original, original=True) if bounce.original else (None, "")
        )
        if deal is None:  # a report sent to the deal's reply address
            deal, how = deal_for_message(message, envelope_to=list(envelope_to))
    else:
        kind = DealEmail.Kind.AUTO_REPLY if auto else DealEmail.Kind.REPLY
        deal, how = deal_for_message(message, envelope_to=list(envelope_to))
    sender = parseaddr(_header(message, "From"))[1].lower()
    subject = _header(message, "Subject")[:300]
    text = _text(message)
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = DealEmail.objects.create(
                    deal=deal,
                    direction=DealEmail.Direction.IN,
                    kind=kind,
                    status=DealEmail.Status.MATCHED if deal else DealEmail.Status.UNMATCHED,
                    message_id=message_id,
                    in_reply_to=_header(message, "In-Reply-To")[:300],
                    references=_header(message, "References")[:5000],
                    from_address=sender[:300],
                    to_addresses=", ".join([*envelope_to, *_addresses(message, "To", "Cc")])[:5000],
                    subject=subject,
                    text=text,
                    headers=_headers_text(message),
                    source=source[:40],
                    matched_by=how,
                )
        except IntegrityError:
            existing = DealEmail.objects.get(message_id=message_id)
            log.info("Inbound message %s was already received (%s)", message_id, existing.pk)
            return existing
        if bounce is not None:
            for address in dict.fromkeys(bounce.recipients):
                deals = [deal] if deal else _deals_mailing(address)
                if deals and record.deal_id is None:
                    record.deal = deals[0]
                    record.status = DealEmail.Status.MATCHED
                    record.matched_by = "address"
                    record.save(update_fields=["deal", "status", "matched_by"])
                _bounce_effects(
                    deals=deals,
                    address=address,
                    reason=bounce.reason,
                    key=f"email-{record.pk}-{address}",
                    record=record,
                )
        elif deal is not None:
            _reply_effects(deal=deal, record=record, auto=auto)
    return record


def _reply_effects(*, deal: Deal, record: DealEmail, auto: bool) -> None:
    said = reply_part(record.text)
    colleague = User.objects.filter(email__iexact=record.from_address, is_active=True).first()
    if colleague is not None and not auto:
        # A rep copied the deal's address (reply-all): logged, but it is not the buyer.
        deal_activity_record(
            deal=deal,
            by=colleague,
            kind=DealEvent.Kind.EMAIL,
            reason=f"{colleague} wrote on the thread: “{record.subject}”. {said}"[:2000],
            email_id=record.pk,
            direction="in",
        )
        return
    if auto:
        deal_activity_record(
            deal=deal,
            by=None,
            kind=DealEvent.Kind.EMAIL,
            reason=f"Auto-reply from {record.from_address}: “{record.subject}” (follow-ups go on).",
            email_id=record.pk,
            auto_reply=True,
        )
        return
    deal_activity_record(
        deal=deal,
        by=None,
        kind=DealEvent.Kind.EMAIL,
        reason=f"{record.from_address} replied: “{record.subject}”. {said}"[:2000],
        email_id=record.pk,
        direction="in",
    )
    reminders_pause_for_deal(deal=deal, reason="the buyer replied")
    RepTask.objects.get_or_create(
        email=record,
        defaults={
            "owner": deal.owner,
            "deal": deal,
            "kind": RepTask.Kind.EMAIL,
            "title": f"Answer the buyer: {record.subject or record.from_address}"[:200],
            "note": said[:2000],
            "due_at": timezone.now(),
        },
    )
    buyer_replied.send(sender=DealEmail, deal=deal, email=record)


@transaction.atomic
def email_bounce_record(*, address: str, reason: str, key: str, deal_id: int | None = None) -> int:
    """A bounce or complaint reported by an ESP's tracking webhook (django-anymail).

    `key` is the ESP's event id (or message id): a webhook delivered twice acts once.
    Returns how many deals were paused.
    """
    address = (address or "").strip().lower()
    if "@" not in address:
        return 0
    marker = f"<bounce-{hashlib.sha256(key.encode()).hexdigest()[:40]}@inbound.invalid>"
    try:
        with transaction.atomic():
            record = DealEmail.objects.create(
                deal_id=deal_id if Deal.objects.filter(pk=deal_id).exists() else None,
                direction=DealEmail.Direction.IN,
                kind=DealEmail.Kind.BOUNCE,
                status=DealEmail.Status.MATCHED,
                message_id=marker,
                from_address="",
                to_addresses=address,
                subject=f"Delivery to {address} failed",
                text=reason[:2000],
                source="anymail",
            )
    except IntegrityError:
        return 0
    deals = (
        list(Deal.objects.filter(pk=record.deal_id).select_related("owner"))
        if record.deal_id
        else _deals_mailing(address)
    )
    if not deals:
        DealEmail.objects.filter(pk=record.pk).update(status=DealEmail.Status.UNMATCHED)
    _bounce_effects(deals=deals, address=address, reason=reason, key=marker, record=record)
    return len(deals)
