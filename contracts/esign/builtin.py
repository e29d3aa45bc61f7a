"""The built-in provider: an emailed, signed, expiring link to a signing page in this app.

The link carries a `TimestampSigner` token bound to one purpose (salt), one contract version
and its envelope id, so it expires, cannot be forged, and dies when the version is replaced.
"""

from __future__ import annotations

import datetime as dt
import uuid

from django.conf import settings
from django.core import signing
from django.core.mail import send_mail
from django.urls import reverse
from django.utils import timezone

from .base import ESignProvider, ProviderError, SendResult

SIGNING_SALT = "contracts.builtin.signing-link"


class LinkRefused(Exception):
    """The link is expired, tampered with or no longer valid; `message` is for the buyer."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


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
    """The contract version a link points at, or LinkRefused with the reason in plain words."""
    from contracts.models import ContractVersion

    try:
        data = signing.TimestampSigner(salt=SIGNING_SALT).unsign_object(
            token, max_age=link_max_age()
        )
    except signing.SignatureExpired:
        raise LinkRefused(
            "This signing link has expired. Ask your contact for a new one."
        ) from None
    except signing.BadSignature:
        raise LinkRefused(
            "This signing link is not valid. Check that it was copied whole."
        ) from None
    version = (
        ContractVersion.objects.select_related("deal", "deal__account", "deal__owner")
        .filter(pk=data.get("v"), provider="builtin")
        .first()
    )
    if version is None or not version.envelope_id or version.envelope_id != data.get("e"):
        raise LinkRefused("This signing link is no longer valid: a newer contract replaced it.")
    return version


class BuiltinProvider(ESignProvider):
    name = "builtin"

    def send(self, version) -> SendResult:
        if not version.envelope_id:
            raise ProviderError("The contract has no envelope yet.", transient=False)
        url = signing_url(version)
        expires = timezone.localdate() + link_max_age()
        deal = version.deal
        owner = deal.owner
        body = (
            f"Hello {version.signer_name},\n\n"
            f"{owner} at {deal.team} sent you the contract “{deal.title}” "
            f"(version {version.number}) to review and sign.\n\n"
            f"Open it here (no account needed):\n{url}\n\n"
            f"The link is personal and works until {expires:%-d %B %Y}. "
            "You can sign it or decline with a reason.\n\n"
            f"{owner}\n"
        )
        try:
            send_mail(
                subject=f"Please review and sign: {deal.title}",
                message=body,
                from_email=settings.DEFAULT_FROM_EMAIL,
                recipient_list=[version.signer_email],
                fail_silently=False,
            )
        except OSError as exc:
            raise ProviderError(f"The email to the signer could not be sent ({exc}).") from exc
        return SendResult(envelope_id=version.envelope_id, status="sent", signing_url=url)

    def status(self, version) -> str:
        return version.status

    def fetch_signed_document(self, version) -> bytes:
        if not version.signed_pdf:
            raise ProviderError("The contract is not signed yet.", transient=False)
        with version.signed_pdf.open("rb") as handle:
            return handle.read()

    def void(self, version, reason: str, *, envelope_id: str = "") -> None:
        """Nothing to call: the link checks the version's status and envelope on every use."""
