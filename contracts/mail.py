"""After a built-in signature the signer and the rep get the signed PDF (with its audit page).

DocuSign sends its own completion email with the document; the built-in provider does it
here, from a Celery task after the signing transaction committed. The Message-ID is fixed
per version, so a retried task sends the same message again, never a second one.
"""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext
from django.utils.translation import gettext as _

from deals import addressing
from deals.models import DealEvent, language_of
from deals.services import deal_activity_record, deal_lock

from .models import ContractVersion


def signed_copy_enqueue(sender, *, version, **kwargs) -> None:
    """contract_signed receiver: a built-in signature sends the copies after commit."""
    if version.provider != "builtin":
        return
    from .tasks import send_signed_copy

    version_id = version.pk
    transaction.on_commit(lambda: send_signed_copy.delay(version_id))


def _signed_copy_body(version, signers, rep) -> str:
    from django.urls import reverse

    deal = version.deal
    names = ", ".join(s.name for s in signers) or version.signer_name
    hello = (
        _("Hello,")
        if len(signers) > 1
        else f"Hello {version.signer_name or ''},".replace(" ,", ",")
    )
    lines = [
        hello,
        "",
        _(
            "“%(title)s” is signed by everyone: %(names)s. The signed contract is attached, "
            "with its certificate of completion (who signed, when, from where, and the "
            "document's fingerprint)."
        )
        % {"title": deal.title, "names": names},
        "",
    ]
    if version.sealed_at:
        lines += [
            _(
                "The PDF is sealed by Closing CRM: any change to it breaks the seal, which your "
                "PDF reader shows in its signature panel. You can also check a copy here:"
            ),
            settings.SITE_URL + reverse("verify_public"),
            "",
        ]
    lines += [
        _("SHA-256 of the signed PDF: %(sha)s") % {"sha": version.signed_sha256},
        "",
        _("%(rep)s will be in touch about the next steps.") % {"rep": rep},
    ]
    return "\n".join(str(line) for line in lines) + "\n"


def signed_copy_send(*, version_id: int) -> bool:
    version = ContractVersion.objects.select_related("deal", "deal__owner").get(pk=version_id)
    if version.status != ContractVersion.Status.COMPLETED or not version.signed_pdf:
        return False
    if version.signature.get("copy_emailed_at"):
        return False
    deal, rep = version.deal, version.deal.owner
    signers = list(version.signers.all())
    emails = [s.email for s in signers] or [version.signer_email]
    recipients: list[str] = []
    for address in [*emails, rep.email]:
        if address and address.lower() not in {r.lower() for r in recipients}:
            recipients.append(address)
    if not recipients:
        return False
    with version.signed_pdf.open("rb") as handle:
        pdf = handle.read()
    # The buyer's language is not known: the email speaks the rep's (who speaks to the buyer).
    with translation.override(language_of(rep)):
        values = {"deal": deal.title, "number": version.number, "rep": rep}
        subject = gettext("Signed: %(deal)s (contract version %(number)s)") % values
        body = _signed_copy_body(version, signers, rep)
    message = EmailMessage(
        subject=subject,
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=recipients,
        reply_to=addressing.reply_to(deal.pk, rep.email),
        headers={"Message-ID": addressing.message_id(deal.pk, f"signed-v{version.pk}")},
    )
    message.attach(f"contract-{deal.pk}-v{version.number}-signed.pdf", pdf, "application/pdf")
    message.send()
    with transaction.atomic():
        # The deal's row first, then the version's: the order every contract action takes.
        deal_lock(deal.pk)
        locked = ContractVersion.objects.select_for_update().get(pk=version.pk)
        if locked.signature.get("copy_emailed_at"):
            return False
        locked.signature = {
            **locked.signature,
            "copy_emailed_to": ", ".join(recipients),
            "copy_emailed_at": timezone.now().strftime("%Y-%m-%d %H:%M:%S UTC"),
        }
        locked.save(update_fields=["signature"])
        deal_activity_record(
            deal=deal,
            by=None,
            kind=DealEvent.Kind.CONTRACT,
            reason=f"Signed copy of version {version.number} emailed to {', '.join(recipients)}.",
            version=version.number,
            version_id=version.pk,
            action="signed_copy",
        )
    return True
