"""What a user must know now: one row per notification, and how each kind reaches them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy


class Kind(models.TextChoices):
    CONTRACT_VIEWED = "contract_viewed", gettext_lazy("Contract viewed")
    CONTRACT_SIGNED = "contract_signed", gettext_lazy("Contract signed")
    CONTRACT_DECLINED = "contract_declined", gettext_lazy("Contract declined")
    SENDING_FAILED = "sending_failed", gettext_lazy("Contract sending failed")
    SIGNED_AFTER_CLOSE = "signed_after_close", gettext_lazy("Signature after the deal closed")
    BUYER_REPLIED = "buyer_replied", gettext_lazy("Buyer replied")
    REMINDER_BOUNCED = "reminder_bounced", gettext_lazy("Email to the buyer bounced")
    DEAL_REASSIGNED = "deal_reassigned", gettext_lazy("Deal reassigned to you")
    CUSTOMER_HANDOFF = "customer_handoff", gettext_lazy("Customer handed to you")
    MANAGER_OVERRIDE = "manager_override", gettext_lazy("Manager override on your deal")
    DEAL_STALLED = "deal_stalled", gettext_lazy("Deal stalled")
    ROOM_VISITED = "room_visited", gettext_lazy("Buyer opened the closing room")
    ROOM_QUESTION = "room_question", gettext_lazy("Buyer asked in the closing room")


class Delivery(models.TextChoices):
    IN_APP = "in_app", gettext_lazy("In the app only")
    EMAIL = "email", gettext_lazy("Email at once")
    DIGEST = "digest", gettext_lazy("Daily digest")
    OFF = "off", gettext_lazy("Off")


#: How each kind reaches a user who never chose: what needs acting on today is emailed.
DEFAULT_DELIVERY = {
    Kind.CONTRACT_VIEWED: Delivery.IN_APP,
    Kind.CONTRACT_SIGNED: Delivery.EMAIL,
    Kind.CONTRACT_DECLINED: Delivery.EMAIL,
    Kind.SENDING_FAILED: Delivery.EMAIL,
    Kind.SIGNED_AFTER_CLOSE: Delivery.EMAIL,
    Kind.BUYER_REPLIED: Delivery.EMAIL,
    Kind.REMINDER_BOUNCED: Delivery.EMAIL,
    Kind.DEAL_REASSIGNED: Delivery.EMAIL,
    Kind.CUSTOMER_HANDOFF: Delivery.EMAIL,
    Kind.MANAGER_OVERRIDE: Delivery.IN_APP,
    Kind.DEAL_STALLED: Delivery.DIGEST,
    Kind.ROOM_VISITED: Delivery.IN_APP,
    Kind.ROOM_QUESTION: Delivery.EMAIL,
}


class NotificationQuerySet(models.QuerySet):
    def unread(self):
        return self.filter(read_at__isnull=True)


class Notification(models.Model):
    """One thing one user should know. `key` names the event that caused it, so the same
    event (a retried task, a webhook delivered twice) never notifies twice."""

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    deal = models.ForeignKey(
        "deals.Deal",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="notifications",
    )
    kind = models.CharField(max_length=30, choices=Kind.choices)
    text = models.CharField(max_length=300)
    link = models.CharField(max_length=300, blank=True)
    key = models.CharField(
        max_length=200, help_text=gettext_lazy("The causing event: one notification each.")
    )
    delivery = models.CharField(
        max_length=10,
        choices=Delivery.choices,
        help_text=gettext_lazy("How the recipient wanted it then."),
    )
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    digested_at = models.DateTimeField(null=True, blank=True)
    digest = models.ForeignKey(
        "DigestSent", on_delete=models.SET_NULL, null=True, blank=True, related_name="items"
    )

    objects = NotificationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["recipient", "key"], name="notification_once_per_event")
        ]
        indexes = [
            models.Index(fields=["recipient", "read_at"], name="notification_unread"),
            models.Index(fields=["delivery", "digested_at"], name="notification_digest_due"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.recipient}: {self.text[:40]}"

    @property
    def is_read(self) -> bool:
        return self.read_at is not None


class NotificationPreference(models.Model):
    """A user's choice for one kind; without a row, DEFAULT_DELIVERY applies."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preferences"
    )
    kind = models.CharField(max_length=30, choices=Kind.choices)
    delivery = models.CharField(max_length=10, choices=Delivery.choices)

    class Meta:
        ordering = ["user", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["user", "kind"], name="notification_preference_once")
        ]

    def __str__(self) -> str:
        return f"{self.user}: {self.get_kind_display()} → {self.get_delivery_display()}"


class DigestSent(models.Model):
    """One daily digest per user and local day: beat may look as often as it likes."""

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    day = models.DateField(help_text=gettext_lazy("The recipient's local date the digest is for."))
    count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-day"]
        constraints = [
            models.UniqueConstraint(fields=["recipient", "day"], name="digest_once_per_day")
        ]

    def __str__(self) -> str:
        return f"Digest for {self.recipient} on {self.day}"
