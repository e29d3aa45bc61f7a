"""Close plans (mutual action plans) and the buyer's closing room.

A deal's plan is an ordered list of `PlanStep`s, owned by one side (seller or buyer), built
from a team's `PlanTemplate`. The room is a buyer-facing page reached through a `RoomLink`
issued per buying-group contact: a signed token naming the link's row and a random nonce,
so revoking (or expiring) the row ends the link at once.
"""

from __future__ import annotations

import hashlib
import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from deals.models import single_line


class Side(models.TextChoices):
    SELLER = "seller", _("Seller")
    BUYER = "buyer", _("Buyer")


class Phase(models.TextChoices):
    CLOSE = "close", _("Close")
    ONBOARDING = "onboarding", _("Onboarding (after the win)")


class PlanTemplate(models.Model):
    """A team's starting plan (no team: the default for every team)."""

    name = models.CharField(_("name"), max_length=120, validators=[single_line])
    team = models.ForeignKey(
        "deals.Team",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="plan_templates",
        help_text=_("Empty: offered to every team."),
    )
    is_default = models.BooleanField(
        _("default"), default=False, help_text=_("Used when a rep builds a plan.")
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        verbose_name = _("plan template")

    def __str__(self) -> str:
        return self.name


class PlanTemplateStep(models.Model):
    template = models.ForeignKey(PlanTemplate, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField(default=0)
    title = models.CharField(_("title"), max_length=200, validators=[single_line])
    side = models.CharField(max_length=10, choices=Side.choices, default=Side.SELLER)
    phase = models.CharField(max_length=12, choices=Phase.choices, default=Phase.CLOSE)
    days_after_start = models.PositiveSmallIntegerField(
        default=7, help_text=_("Due this many days after the plan is built (or after the win).")
    )

    class Meta:
        ordering = ["position", "pk"]
        verbose_name = _("plan template step")

    def __str__(self) -> str:
        return self.title


class PlanStep(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        DONE = "done", _("Done")
        SKIPPED = "skipped", _("Skipped")

    deal = models.ForeignKey("deals.Deal", on_delete=models.CASCADE, related_name="plan_steps")
    position = models.PositiveSmallIntegerField(default=0)
    title = models.CharField(max_length=200, validators=[single_line])
    side = models.CharField(max_length=10, choices=Side.choices, default=Side.SELLER)
    phase = models.CharField(max_length=12, choices=Phase.choices, default=Phase.CLOSE)
    owner_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="plan_steps",
    )
    owner_contact = models.ForeignKey(
        "deals.Contact",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="plan_steps",
    )
    due_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    note = models.CharField(max_length=300, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    done_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    done_by_contact = models.ForeignKey(
        "deals.Contact", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["phase", "position", "pk"]
        indexes = [models.Index(fields=["status", "due_date"], name="planstep_status_due")]

    def __str__(self) -> str:
        return self.title

    @property
    def owner_label(self) -> str:
        person = self.owner_user or self.owner_contact
        return str(person) if person else ""

    @property
    def version(self) -> str:
        """A fingerprint of what the rep sees of the step (not its place in the list): an edit
        made from an older fingerprint is stale and refused (someone changed it meanwhile)."""
        seen = "\x1f".join(
            str(v)
            for v in (
                self.title,
                self.side,
                self.owner_user_id,
                self.owner_contact_id,
                self.due_date,
                self.status,
                self.note,
            )
        )
        return hashlib.sha256(seen.encode()).hexdigest()[:16]

    def is_slipped(self, today=None) -> bool:
        today = today or timezone.localdate()
        return bool(self.status == self.Status.OPEN and self.due_date and self.due_date < today)


def new_nonce() -> str:
    return uuid.uuid4().hex


class RoomLink(models.Model):
    """One buying-group contact's way into one deal's room."""

    deal = models.ForeignKey("deals.Deal", on_delete=models.CASCADE, related_name="room_links")
    contact = models.ForeignKey("deals.Contact", on_delete=models.PROTECT, related_name="+")
    nonce = models.CharField(max_length=32, default=new_nonce, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    visits = models.PositiveIntegerField(default=0)
    first_visit_at = models.DateTimeField(null=True, blank=True)
    last_visit_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.contact} → {self.deal}"

    @property
    def is_live(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()


class RoomQuestion(models.Model):
    deal = models.ForeignKey("deals.Deal", on_delete=models.CASCADE, related_name="room_questions")
    link = models.ForeignKey(RoomLink, on_delete=models.PROTECT, related_name="questions")
    text = models.TextField()
    asked_at = models.DateTimeField(default=timezone.now)
    answer = models.TextField(blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    answered_at = models.DateTimeField(null=True, blank=True)
    objection = models.ForeignKey(
        "deals.Objection", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["asked_at", "pk"]

    def __str__(self) -> str:
        return self.text[:60]


def _upload_to(instance, filename: str) -> str:
    return f"rooms/{instance.deal_id}/{uuid.uuid4().hex}"


class RoomFile(models.Model):
    """A file in the room: shared by the rep, or uploaded by a buyer (untrusted)."""

    deal = models.ForeignKey("deals.Deal", on_delete=models.CASCADE, related_name="room_files")
    name = models.CharField(max_length=200)
    file = models.FileField(upload_to=_upload_to)
    size = models.PositiveIntegerField(default=0)
    content_type = models.CharField(max_length=100, blank=True)
    shared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    uploaded_by_link = models.ForeignKey(
        RoomLink, on_delete=models.PROTECT, null=True, blank=True, related_name="uploads"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.name

    @property
    def from_buyer(self) -> bool:
        return self.uploaded_by_link_id is not None


class PlanOutcome(models.Model):
    """An outcome agreed in the plan; after the win the buyer confirms it."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Not confirmed yet")
        MET = "met", _("Met")
        PARTLY = "partly", _("Partly met")
        NOT_YET = "not_yet", _("Not yet")

    deal = models.ForeignKey("deals.Deal", on_delete=models.CASCADE, related_name="plan_outcomes")
    text = models.CharField(max_length=200, validators=[single_line])
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    note = models.CharField(max_length=500, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    confirmed_by = models.ForeignKey(
        "deals.Contact", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return self.text


class DealNeed(models.Model):
    """A need the rep noted during the sale: after the win, a follow-on deal to offer."""

    deal = models.ForeignKey("deals.Deal", on_delete=models.CASCADE, related_name="noted_needs")
    text = models.CharField(max_length=200, validators=[single_line])
    noted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    follow_on = models.ForeignKey(
        "deals.Deal", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return self.text
