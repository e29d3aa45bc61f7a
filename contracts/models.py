"""Contract templates, generated contract versions and their e-signature status."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class ContractTemplate(models.Model):
    name = models.CharField(max_length=120)
    body = models.TextField(help_text="Django template syntax over the deal's terms.")
    version = models.PositiveIntegerField(default=1)
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "-version"]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class ContractVersion(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        VIEWED = "viewed", "Viewed"
        COMPLETED = "completed", "Signed"
        DECLINED = "declined", "Declined"
        VOIDED = "voided", "Voided"
        EXPIRED = "expired", "Expired"

    deal = models.ForeignKey(
        "deals.Deal", on_delete=models.PROTECT, related_name="contract_versions"
    )
    number = models.PositiveIntegerField()
    template = models.ForeignKey(ContractTemplate, on_delete=models.PROTECT, null=True, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    html = models.TextField(blank=True)
    pdf = models.FileField(upload_to="contracts/%Y/%m/", blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    provider = models.CharField(max_length=20, blank=True)
    envelope_id = models.CharField(max_length=100, blank=True, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    signed_pdf = models.FileField(upload_to="signed/%Y/%m/", blank=True)
    signed_sha256 = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["deal", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["deal", "number"], name="contract_unique_version")
        ]

    def __str__(self) -> str:
        return f"{self.deal} contract v{self.number}"
