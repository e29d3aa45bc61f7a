"""Contract templates, generated contract versions, their e-signature status and webhook inbox."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy
from django.utils.translation import gettext_lazy as _


class ContractTemplate(models.Model):
    """Django template syntax over the deal's terms, rendered in a sandbox.

    Templates are versioned: editing one in the admin saves a new version and keeps the
    old one, so every contract version points at the exact text it was rendered from.
    """

    name = models.CharField(max_length=120)
    body = models.TextField(help_text=gettext_lazy("Django template syntax over the deal's terms."))
    version = models.PositiveIntegerField(default=1)
    is_default = models.BooleanField(
        default=False, help_text=gettext_lazy("Used when a rep generates a contract.")
    )
    is_active = models.BooleanField(
        default=True,
        help_text=gettext_lazy("Older versions are kept for the contracts rendered from them."),
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="contract_template_version")
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class ImmutableContract(Exception):
    """A sent version's document never changes (its hash is what the signer agreed to)."""


class ContractVersion(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", gettext_lazy("Draft")
        SENDING = "sending", gettext_lazy("Sending")
        SENT = "sent", gettext_lazy("Sent")
        DELIVERED = "delivered", gettext_lazy("Delivered")
        VIEWED = "viewed", gettext_lazy("Viewed")
        COMPLETED = "completed", gettext_lazy("Signed")
        DECLINED = "declined", gettext_lazy("Declined")
        VOIDED = "voided", gettext_lazy("Voided")
        EXPIRED = "expired", gettext_lazy("Expired")
        FAILED = "failed", gettext_lazy("Sending failed")

    deal = models.ForeignKey(
        "deals.Deal", on_delete=models.PROTECT, related_name="contract_versions"
    )
    number = models.PositiveIntegerField()
    template = models.ForeignKey(ContractTemplate, on_delete=models.PROTECT, null=True, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    terms = models.JSONField(
        default=dict, blank=True, help_text=gettext_lazy("The terms it was rendered from.")
    )
    html = models.TextField(blank=True)
    pdf = models.FileField(upload_to="contracts/%Y/%m/", blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    signer_name = models.CharField(max_length=200, blank=True)
    signer_email = models.EmailField(blank=True)
    provider = models.CharField(max_length=20, blank=True)
    envelope_id = models.CharField(max_length=100, blank=True, db_index=True)
    embedded_signing = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    viewed_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    declined_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    status_reason = models.TextField(
        blank=True, help_text=gettext_lazy("Why it was declined, voided or failed, in plain words.")
    )

    class Withdrawal(models.TextChoices):
        """Why a version stopped being signable, for the buyer's page."""

        NONE = "", gettext_lazy("Not withdrawn")
        REPLACED = "replaced", gettext_lazy("Replaced by a newer version")
        REVISED = "revised", gettext_lazy("Terms revised: a new version is coming")
        DEAL_CLOSED = "deal_closed", gettext_lazy("The deal was closed")
        BY_REP = "by_rep", gettext_lazy("Withdrawn by the seller")

    withdrawal = models.CharField(
        max_length=12, choices=Withdrawal.choices, blank=True, default=Withdrawal.NONE
    )
    signed_late = models.BooleanField(
        default=False,
        help_text=(
            gettext_lazy(
                "Signed after the deal closed or after this version was withdrawn: "
                "it did not win the deal by itself."
            )
        ),
    )
    late_signature_accepted_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=gettext_lazy("When a manager turned the late signature into a win."),
    )
    send_attempts = models.PositiveSmallIntegerField(default=0)
    signed_pdf = models.FileField(upload_to="signed/%Y/%m/", blank=True)
    signed_sha256 = models.CharField(max_length=64, blank=True)
    signature = models.JSONField(
        default=dict,
        blank=True,
        help_text=gettext_lazy("Audit trail of the signature (built-in provider)."),
    )
    sealed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the completed PDF was sealed (PAdES signature)."
    )
    seal_fingerprint = models.CharField(
        max_length=64, blank=True, help_text="SHA-256 fingerprint of the sealing certificate."
    )

    class Meta:
        ordering = ["deal", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["deal", "number"], name="contract_unique_version")
        ]

    def __str__(self) -> str:
        return f"{self.deal} contract v{self.number}"

    #: What the signer is shown: fixed once the version left draft.
    DOCUMENT_FIELDS = ("html", "pdf", "sha256", "terms", "signer_name", "signer_email")

    def save(self, *args, **kwargs):
        update_fields = kwargs.get("update_fields")
        touches_document = update_fields is None or set(update_fields) & set(self.DOCUMENT_FIELDS)
        if self.pk is not None and touches_document:
            stored = (
                ContractVersion.objects.filter(pk=self.pk)
                .values("status", *self.DOCUMENT_FIELDS)
                .first()
            )
            if stored and stored["status"] != self.Status.DRAFT:
                current = {f: getattr(self, f) for f in self.DOCUMENT_FIELDS}
                current["pdf"] = self.pdf.name
                if any(stored[f] != current[f] for f in self.DOCUMENT_FIELDS):
                    raise ImmutableContract(
                        "A sent contract version cannot be changed; generate a new version."
                    )
        super().save(*args, **kwargs)

    @property
    def provider_label(self) -> str:
        """The provider as users read it ("DocuSign", not "docusign")."""
        return PROVIDER_LABELS.get(self.provider, self.provider)

    provider_label.fget.short_description = "provider"  # type: ignore[attr-defined]

    @property
    def is_out(self) -> bool:
        """With the buyer (or on its way there) and still signable."""
        return self.status in OUT_STATUSES

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def counts_as_signature(self) -> bool:
        """Signed, and either in time or turned into the win by a manager."""
        return self.status == self.Status.COMPLETED and (
            not self.signed_late or self.late_signature_accepted_at is not None
        )


#: How providers are named in the product (the brand is spelled "DocuSign").
PROVIDER_LABELS = {"docusign": "DocuSign", "builtin": "Built-in e-signature"}

OUT_STATUSES = [
    ContractVersion.Status.SENDING,
    ContractVersion.Status.SENT,
    ContractVersion.Status.DELIVERED,
    ContractVersion.Status.VIEWED,
]
#: Out with the buyer and not signed yet (a version still `sending` has not reached them).
WITH_BUYER_STATUSES = [
    ContractVersion.Status.SENT,
    ContractVersion.Status.DELIVERED,
    ContractVersion.Status.VIEWED,
]
#: Still to be settled: out with the buyer, or failed to send and waiting for a retry.
OUTSTANDING_STATUSES = [*OUT_STATUSES, ContractVersion.Status.FAILED]
FINAL_STATUSES = [
    ContractVersion.Status.COMPLETED,
    ContractVersion.Status.DECLINED,
    ContractVersion.Status.VOIDED,
    ContractVersion.Status.EXPIRED,
]


class WebhookDelivery(models.Model):
    """The inbox: every verified webhook delivery is stored before anything else happens."""

    class Outcome(models.TextChoices):
        PENDING = "pending", gettext_lazy("Pending")
        APPLIED = "applied", gettext_lazy("Applied")
        DUPLICATE = "duplicate", gettext_lazy("Duplicate (already applied)")
        UNKNOWN_ENVELOPE = "unknown", gettext_lazy("Unknown envelope (ignored)")
        IGNORED = "ignored", gettext_lazy("Ignored event")
        ERROR = "error", gettext_lazy("Error (will retry)")

    provider = models.CharField(max_length=20)
    event = models.CharField(max_length=60)
    envelope_id = models.CharField(max_length=100, db_index=True)
    body = models.TextField()
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=12, choices=Outcome.choices, default=Outcome.PENDING)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.provider} {self.event} {self.envelope_id}"


class EnvelopeEvent(models.Model):
    """One applied (envelope, event) pair: the idempotency key of webhook processing."""

    envelope_id = models.CharField(max_length=100)
    event = models.CharField(max_length=60)
    version = models.ForeignKey(ContractVersion, on_delete=models.CASCADE, related_name="+")
    applied_at = models.DateTimeField(default=timezone.now)
    source = models.CharField(max_length=20, default="webhook")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["envelope_id", "event"], name="envelope_event_once")
        ]

    def __str__(self) -> str:
        return f"{self.envelope_id} {self.event}"


class ContractSigner(models.Model):
    """One person who signs a contract version, in their turn.

    Signers with the same `routing_order` sign in parallel; a higher order waits until
    every signer of the lower orders has signed. Buyers come from the deal's buying group,
    the optional countersigner from the seller's team (the team's setting).
    """

    class Role(models.TextChoices):
        BUYER = "buyer", _("Buyer")
        COUNTERSIGNER = "countersigner", _("Countersigner")

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for their turn")
        DUE = "due", _("Due to sign")
        VIEWED = "viewed", _("Opened")
        SIGNED = "signed", _("Signed")
        DECLINED = "declined", _("Declined")

    version = models.ForeignKey(ContractVersion, on_delete=models.CASCADE, related_name="signers")
    routing_order = models.PositiveSmallIntegerField(default=1)
    role = models.CharField(max_length=14, choices=Role.choices, default=Role.BUYER)
    contact = models.ForeignKey(
        "deals.Contact", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    name = models.CharField(max_length=200)
    email = models.EmailField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    due_at = models.DateTimeField(null=True, blank=True, help_text="When their turn came.")
    viewed_at = models.DateTimeField(null=True, blank=True)
    signed_at = models.DateTimeField(null=True, blank=True)
    declined_at = models.DateTimeField(null=True, blank=True)
    ip = models.CharField(max_length=64, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    viewed_ip = models.CharField(max_length=64, blank=True)
    viewed_user_agent = models.CharField(max_length=300, blank=True)
    typed_name = models.CharField(max_length=200, blank=True)
    consent_text = models.CharField(max_length=300, blank=True)
    decline_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["version", "routing_order", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["version", "email"], name="contract_signer_once")
        ]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"

    @property
    def is_due(self) -> bool:
        """Their turn: they can sign or decline now (if the version is out)."""
        return self.status in (self.Status.DUE, self.Status.VIEWED)


#: Signer statuses in which the signer still has to act.
SIGNER_WAITING = [
    ContractSigner.Status.PENDING,
    ContractSigner.Status.DUE,
    ContractSigner.Status.VIEWED,
]
