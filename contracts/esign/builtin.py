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


def signing_token(version) -> str:
    return signing.TimestampSigner(salt=SIGNING_SALT).sign_object(
        {"v": version.pk, "e": version.envelope_id}, compress=True
    )


def signing_url(version) -> str:
    return settings.SITE_URL + reverse("contracts_public:sign", args=[signing_token(version)])


def version_for_token(token: str):
    """The contract version a link points at, or LinkRefused with the reason in plain words.

    A link works as long as its version is out for signature, however old it is (reminders
    run for weeks); it dies at once when the version is withdrawn (voided, expired,
    superseded). After the buyer signed or declined, the link still shows that outcome for
    CONTRACT_LINK_MAX_AGE_DAYS after it was issued.
    """
    from contracts.models import ContractVersion

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
        raise LinkRefused(
            gettext("This signing link is no longer valid: a newer contract replaced it.")
        )
    if version.is_out:
        return version
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
    return version


class BuiltinProvider(ESignProvider):
    name = "builtin"

    def send(self, version) -> SendResult:
        if not version.envelope_id:
            raise ProviderError(gettext("The contract has no envelope yet."), transient=False)
        url = signing_url(version)
        deal = version.deal
        owner = deal.owner
        # The buyer's language is not known: the email speaks the rep's.
        with translation.override(language_of(owner)):
            values = {
                "name": version.signer_name,
                "owner": owner,
                "team": deal.team,
                "deal": deal.title,
                "number": version.number,
                "url": url,
            }
            body = (
                gettext("Hello %(name)s,") % values
                + "\n\n"
                + gettext(
                    "%(owner)s at %(team)s sent you the contract “%(deal)s” (version %(number)s) "
                    "to review and sign."
                )
                % values
                + "\n\n"
                + gettext("Open it here (no account needed):")
                + f"\n{url}\n\n"
                + gettext(
                    "The link is personal and works as long as this version is out for "
                    "signature. You can sign it or decline with a reason; simply reply to this "
                    "email with any question."
                )
                + f"\n\n{owner}\n"
            )
            subject = gettext("Please review and sign: %(deal)s") % values
        message = EmailMessage(
            subject=subject,
            body=body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[version.signer_email],
            # Replies name the deal (see deals.addressing); a resend is a new message.
            reply_to=addressing.reply_to(deal.pk, owner.email),
            headers={"Message-ID": addressing.message_id(deal.pk)},
        )
        message.metadata = {"deal_id": str(deal.pk)}  # ESP tracking events (anymail)
        try:
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
        return SendResult(envelope_id=version.envelope_id, status="sent", signing_url=url)

    def status(self, version) -> str:
        return version.status

    def fetch_signed_document(self, version) -> bytes:
        if not version.signed_pdf:
            raise ProviderError(gettext("The contract is not signed yet."), transient=False)
        with version.signed_pdf.open("rb") as handle:
            return handle.read()

    def void(self, version, reason: str, *, envelope_id: str = "") -> None:
        """Nothing to call: the link checks the version's status and envelope on every use."""
