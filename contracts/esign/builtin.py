"""The built-in provider: an emailed, signed, expiring link to a signing page in this app.

The link carries a `TimestampSigner` token bound to one purpose (salt), one contract version
and its envelope id, so it cannot be forged, works while that version is out for signature,
and dies when the version is withdrawn or replaced.
"""

from __future__ import annotations

import datetime as dt
import uuid

from django.conf import settings
from django.core import signing
from django.core.mail import BadHeaderError, EmailMessage
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext
from django.utils.translation import gettext as _

from deals import addressing
from deals.models import language_of

from .base import ESignProvider, ProviderError, SendResult

SIGNING_SALT = "contracts.builtin.signing-link"


class LinkRefused(Exception):
    """The link is expired, tampered with or no longer valid; `message` is for the buyer."""

    def __init__(self, message: str, *, title: str = "This link cannot be used"):
        super().__init__(message)
        self.message = message
        self.title = title


def link_max_age() -> dt.timedelta:
    return dt.timedelta(days=settings.CONTRACT_LINK_MAX_AGE_DAYS)


def new_envelope_id() -> str:
    return f"builtin-{uuid.uuid4().hex}"


def signing_token(version, signer=None) -> str:
    """The link's payload: the version, its envelope and the signer it is for."""
    signer = signer if signer is not None else first_due_signer(version)
    data = {"v": version.pk, "e": version.envelope_id}
    if signer is not None:
        data["s"] = signer.pk
    return signing.TimestampSigner(salt=SIGNING_SALT).sign_object(data, compress=True)


def signing_url(version, signer=None) -> str:
    """The personal link of `signer` (default: the first signer whose turn it is)."""
    return settings.SITE_URL + reverse(
        "contracts_public:sign", args=[signing_token(version, signer)]
    )


def first_due_signer(version):
    """The first signer whose turn it is (by routing order), else the first signer."""
    signers = sorted(version.signers.all(), key=lambda s: (s.routing_order, s.pk))
    due = [s for s in signers if s.is_due]
    return (due or signers or [None])[0]


def _names(signers) -> str:
    return ", ".join(str(s.name) for s in signers)


def version_for_token(token: str):
    """The contract version and signer a link points at, or LinkRefused with the reason.

    A link works as long as its version is out for signature, however old it is (reminders
    run for weeks), and only in its signer's turn: a signer whose turn has not come yet is
    told who signs first. It dies at once when the version is withdrawn (voided, expired,
    superseded). After the version was signed or declined, the link still shows that
    outcome for CONTRACT_LINK_MAX_AGE_DAYS after it was issued.
    """
    from contracts.models import ContractSigner, ContractVersion

    signer = signing.TimestampSigner(salt=SIGNING_SALT)
    try:
        data = signer.unsign_object(token)
    except signing.BadSignature:
        raise LinkRefused(
            gettext("This signing link is not valid. Check that it was copied whole.")
        ) from None
    version = (
        ContractVersion.objects.select_related("deal", "deal__account", "deal__owner")
        .filter(pk=data.get("v"), provider="builtin")
        .first()
    )
    if version is None or not version.envelope_id or version.envelope_id != data.get("e"):
        raise LinkRefused(_("This signing link is no longer valid: a newer contract replaced it."))
    signers = list(ContractSigner.objects.filter(version=version))
    if "s" in data:
        person = next((s for s in signers if s.pk == data["s"]), None)
        if person is None:
            raise LinkRefused(_("This signing link is no longer valid."))
    else:  # a link issued before contracts had several signers: the first buyer's
        person = signers[0] if signers else None
    if version.is_out:
        if person is not None and person.status == ContractSigner.Status.PENDING:
            before = [
                s
                for s in signers
                if s.routing_order < person.routing_order
                and s.status != ContractSigner.Status.SIGNED
            ]
            raise LinkRefused(
                _(
                    "It is not your turn to sign yet: %(names)s must sign first. You will get an "
                    "email with your link as soon as it is your turn."
                )
                % {"names": _names(before) or _("another signer")},
                title=_("Not your turn yet"),
            )
        return version, person
    if version.status not in (ContractVersion.Status.COMPLETED, ContractVersion.Status.DECLINED):
        owner = version.deal.owner
        if version.withdrawal == ContractVersion.Withdrawal.REVISED:
            raise LinkRefused(
                gettext(
                    "The terms changed after your conversation with %(owner)s, so this "
                    "version can no longer be signed. %(owner)s is sending you the revised "
                    "contract; you will get a new link by email."
                )
                % {"owner": owner},
                title=gettext("A revised contract is coming"),
            )
        raise LinkRefused(
            gettext(
                "%(owner)s withdrew this contract: it can no longer be signed, and "
                "nothing on this page commits you to anything. Ask %(owner)s for the "
                "current one if you have questions."
            )
            % {"owner": owner},
            title=gettext("This contract was withdrawn"),
        )
    try:
        signer.unsign_object(token, max_age=link_max_age())
    except signing.SignatureExpired:
        raise LinkRefused(
            gettext("This signing link has expired. Ask your contact for a new one.")
        ) from None
    return version, person


def signing_email(version, person) -> EmailMessage:
    """The email that gives one signer their personal link."""
    from contracts.models import ContractSigner

    url = signing_url(version, person)
    deal = version.deal
    owner = deal.owner
    others = [s for s in version.signers.all() if s.pk != person.pk and s.status == "signed"]
    already = _("%(names)s already signed it.\n\n") % {"names": _names(others)} if others else ""
    if person.role == ContractSigner.Role.COUNTERSIGNER:
        intro = _(
            "The contract “%(title)s” (version %(number)s) with %(account)s is ready for your "
            "countersignature."
        ) % {"title": deal.title, "number": version.number, "account": deal.account}
    else:
        intro = _(
            "%(owner)s at %(team)s sent you the contract “%(title)s” (version %(number)s) to "
            "review and sign."
        ) % {"owner": owner, "team": deal.team, "title": deal.title, "number": version.number}
    body = (
        _("Hello %(name)s,") % {"name": person.name}
        + "\n\n"
        + intro
        + "\n\n"
        + already
        + _("Open it here (no account needed):")
        + f"\n{url}\n\n"
        + _(
            "The link is personal and works as long as this version is out for signature. "
            "You can sign it or decline with a reason; simply reply to this email with any "
            "question."
        )
        + f"\n\n{owner}\n"
    )
    message = EmailMessage(
        subject=_("Please review and sign: %(title)s") % {"title": deal.title},
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[person.email],
        # Replies name the deal (see deals.addressing); a resend is a new message.
        reply_to=addressing.reply_to(deal.pk, owner.email),
        headers={"Message-ID": addressing.message_id(deal.pk)},
    )
    message.metadata = {"deal_id": str(deal.pk)}  # ESP tracking events (anymail)
    return message


def send_signing_email(version, person) -> str:
    """Email one signer their link; ProviderError when it cannot leave. Returns the URL."""
    try:
        # The buyer's language is not known: the email speaks the rep's.
        with translation.override(language_of(version.deal.owner)):
            message = signing_email(version, person)
        message.send()
    except OSError as exc:  # the mail server: worth retrying
        raise ProviderError(
            gettext("The email to the signer could not be sent (%(exc)s).") % {"exc": exc}
        ) from exc
    except (BadHeaderError, ValueError) as exc:  # e.g. a line break in a header
        raise ProviderError(
            gettext(
                "The email to the signer could not be built (%(exc)s). Fix the deal's "
                "title or the signer's name and email, then retry."
            )
            % {"exc": exc},
            transient=False,
        ) from exc
    return message.body


class BuiltinProvider(ESignProvider):
    name = "builtin"

    def send(self, version) -> SendResult:
        """Email every signer whose turn it is their own link (the next ones get theirs
        when the signers before them have signed)."""
        if not version.envelope_id:
            raise ProviderError(gettext("The contract has no envelope yet."), transient=False)
        due = [s for s in version.signers.all() if s.is_due]
        if not due:
            raise ProviderError(
                gettext("The contract names no signer whose turn it is."), transient=False
            )
        for person in due:
            send_signing_email(version, person)
        return SendResult(
            envelope_id=version.envelope_id, status="sent", signing_url=signing_url(version, due[0])
        )

    def status(self, version) -> str:
        return version.status

    def fetch_signed_document(self, version) -> bytes:
        if not version.signed_pdf:
            raise ProviderError(gettext("The contract is not signed yet."), transient=False)
        with version.signed_pdf.open("rb") as handle:
            return handle.read()

    def void(self, version, reason: str, *, envelope_id: str = "") -> None:
        """Nothing to call: the link checks the version's status and envelope on every use."""
