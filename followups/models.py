"""Cadences, reminders, rep tasks and contract review meetings (see followups/services.py)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy


class Channel(models.TextChoices):
    EMAIL = "email", gettext_lazy("Email to the buyer")
    CALL = "call", gettext_lazy("Call task for the rep")
    MEETING = "meeting", gettext_lazy("Meeting task for the rep")


class Cadence(models.Model):
    """An ordered list of follow-up steps that starts when a contract is sent.

    The default cadence (no team) applies to every team without its own. After the
    last step, the last step repeats every `repeat_every_days` days, `repeat_times`
    more times ("then weekly up to a limit").
    """

    name = models.CharField(max_length=120)
    team = models.OneToOneField(
        "deals.Team",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="cadence",
        help_text=gettext_lazy(
            "Leave empty for the default cadence used by teams without their own."
        ),
    )
    repeat_every_days = models.PositiveSmallIntegerField(
        default=7, help_text=gettext_lazy("After the last step, repeat it every N days (0: never).")
    )
    repeat_times = models.PositiveSmallIntegerField(
        default=2, help_text=gettext_lazy("How many times the last step repeats.")
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["team__name", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"],
                condition=models.Q(team__isnull=True, is_active=True),
                name="cadence_one_active_default",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.team or 'default'})"


class CadenceStep(models.Model):
    cadence = models.ForeignKey(Cadence, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField(default=0)
    offset_days = models.PositiveSmallIntegerField(
        help_text=gettext_lazy(
            "Days after the contract was sent (shifted into the rep's working hours)."
        )
    )
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.EMAIL)
    subject = models.CharField(
        max_length=200,
        help_text=gettext_lazy(
            "Email subject or task title; Django template syntax over the deal."
        ),
    )
    body = models.TextField(
        blank=True,
        help_text=(
            gettext_lazy(
                "Email text or task note. Variables: {{ contact.first_name }}, {{ deal.title }}, "
                "{{ account.name }}, {{ rep.first_name }}, {{ contract.number }}, {{ site_url }}."
            )
        ),
    )

    class Meta:
        ordering = ["cadence", "offset_days", "position", "pk"]

    def __str__(self) -> str:
        return f"Day {self.offset_days}: {self.get_channel_display()}"

    def clean(self) -> None:
        # Validate with the same sandbox that renders the texts: allow-listed tags and
        # filters only, each refusal named with its reason.
        from contracts.documents import TemplateProblem, compile_template

        for field in ("subject", "body"):
            try:
                compile_template(getattr(self, field))
            except TemplateProblem as exc:
                raise ValidationError({field: f"Template error: {exc}"}) from None


class ReminderQuerySet(models.QuerySet):
    def open(self):
        return self.filter(status__in=Reminder.OPEN_STATUSES)


class Reminder(models.Model):
    """One follow-up to send (email) or to hand to the rep (task): the source of truth."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", gettext_lazy("Scheduled")
        PAUSED = "paused", gettext_lazy("Paused")
        SENDING = "sending", gettext_lazy("Sending")
        SENT = "sent", gettext_lazy("Sent")
        SKIPPED = "skipped", gettext_lazy("Skipped")
        CANCELLED = "cancelled", gettext_lazy("Cancelled")
        FAILED = "failed", gettext_lazy("Failed")

    OPEN_STATUSES = (Status.SCHEDULED, Status.PAUSED, Status.SENDING)

    deal = models.ForeignKey("deals.Deal", on_delete=models.CASCADE, related_name="reminders")
    contract_version = models.ForeignKey(
        "contracts.ContractVersion", on_delete=models.CASCADE, related_name="reminders"
    )
    step = models.ForeignKey(
        CadenceStep, on_delete=models.SET_NULL, null=True, blank=True, related_name="reminders"
    )
    sequence = models.PositiveSmallIntegerField(
        help_text=gettext_lazy("1 for the first follow-up, and so on.")
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    # The step's texts are copied: editing a cadence later does not rewrite what was planned.
    subject_template = models.CharField(max_length=200)
    body_template = models.TextField(blank=True)
    planned_at = models.DateTimeField(
        help_text=gettext_lazy("When the cadence put it, before any snooze.")
    )
    due_at = models.DateTimeField(db_index=True)
    # No index of its own: (status, due_at) and (status, lease_until) lead with it, and every
    # sent reminder's UPDATE changes it (each index on it costs the dispatcher per send).
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.SCHEDULED)
    # Claiming: the dispatcher sets a fresh token and a lease, committed before sending.
    claim_token = models.UUIDField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    message_id = models.CharField(max_length=200, unique=True, editable=False)
    recipient = models.EmailField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    closed_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ReminderQuerySet.as_manager()

    class Meta:
        ordering = ["due_at", "pk"]
        indexes = [
            models.Index(fields=["status", "due_at"], name="reminder_status_due"),
            models.Index(fields=["status", "lease_until"], name="reminder_status_lease"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["contract_version", "sequence"], name="reminder_unique_sequence"
            )
        ]

    def __str__(self) -> str:
        return f"Follow-up #{self.sequence} ({self.get_channel_display()}) for {self.deal}"

    def save(self, *args, **kwargs):
        if not self.message_id:
            self.message_id = f"<followup-{uuid.uuid4().hex}@closing-crm>"
        super().save(*args, **kwargs)

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


class ReviewMeeting(models.Model):
    """The contract review meeting; its start is the deal's deadline."""

    deal = models.ForeignKey("deals.Deal", on_delete=models.CASCADE, related_name="review_meetings")
    organizer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    starts_at = models.DateTimeField()
    duration_minutes = models.PositiveSmallIntegerField(default=45)
    location = models.CharField(max_length=200, blank=True)
    agenda = models.TextField(blank=True)
    attendees = models.ManyToManyField("deals.Contact", related_name="review_meetings")
    uid = models.CharField(max_length=100, unique=True, editable=False)
    sequence = models.PositiveSmallIntegerField(
        default=0, help_text=gettext_lazy("iCalendar SEQUENCE: raised on each reschedule.")
    )
    invitation_sent_sequence = models.IntegerField(
        default=-1,
        help_text=gettext_lazy("The last SEQUENCE whose invitation went out (-1: none yet)."),
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-starts_at"]

    def __str__(self) -> str:
        return f"Contract review for {self.deal} at {self.starts_at:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs):
        if not self.uid:
            self.uid = f"review-{uuid.uuid4().hex}@closing-crm"
        super().save(*args, **kwargs)

    @property
    def ends_at(self):
        return self.starts_at + timezone.timedelta(minutes=self.duration_minutes)


class RepTask(models.Model):
    """A call or meeting the rep should make; completing it logs the touch on the deal."""

    class Kind(models.TextChoices):
        CALL = "call", gettext_lazy("Call")
        MEETING = "meeting", gettext_lazy("Meeting")
        EMAIL = "email", gettext_lazy("Email")
        SEND_CONTRACT = "send_contract", gettext_lazy("Send the contract")
        LATE_SIGNATURE = "late_signature", gettext_lazy("Late signature")

    #: Kinds shown at the top of My day (they block the close), not among calls.
    URGENT_KINDS = (Kind.SEND_CONTRACT, Kind.LATE_SIGNATURE)

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="rep_tasks"
    )
    deal = models.ForeignKey("deals.Deal", on_delete=models.CASCADE, related_name="rep_tasks")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    title = models.CharField(max_length=200)
    note = models.TextField(blank=True)
    due_at = models.DateTimeField(db_index=True)
    reminder = models.OneToOneField(
        Reminder, on_delete=models.CASCADE, null=True, blank=True, related_name="task"
    )
    meeting = models.OneToOneField(
        ReviewMeeting, on_delete=models.CASCADE, null=True, blank=True, related_name="task"
    )
    email = models.OneToOneField(
        "DealEmail",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="task",
        help_text=gettext_lazy("The buyer's email this task answers."),
    )
    completed_at = models.DateTimeField(null=True, blank=True)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    outcome = models.TextField(blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["due_at", "pk"]
        indexes = [models.Index(fields=["owner", "due_at"], name="reptask_owner_due")]

    def __str__(self) -> str:
        return self.title

    @property
    def is_open(self) -> bool:
        return self.completed_at is None and self.cancelled_at is None


class DealEmail(models.Model):
    """One email about a deal, either way: the buyer's replies (and auto-replies and bounce
    reports) coming in, the rep's own emails going out. Incoming mail no deal claims is kept
    too (deal empty): the admin inbox. `message_id` is unique, so mail delivered twice is
    recorded (and acted on) once."""

    class Direction(models.TextChoices):
        IN = "in", gettext_lazy("Received")
        OUT = "out", gettext_lazy("Sent")

    class Kind(models.TextChoices):
        REPLY = "reply", gettext_lazy("Reply from the buyer")
        AUTO_REPLY = "auto_reply", gettext_lazy("Auto-reply")
        BOUNCE = "bounce", gettext_lazy("Delivery failure report")
        REP_EMAIL = "rep_email", gettext_lazy("Email from the rep")

    class Status(models.TextChoices):
        MATCHED = "matched", gettext_lazy("Matched to a deal")
        UNMATCHED = "unmatched", gettext_lazy("Unmatched (inbox)")
        QUEUED = "queued", gettext_lazy("Queued")
        SENT = "sent", gettext_lazy("Sent")
        FAILED = "failed", gettext_lazy("Failed")

    deal = models.ForeignKey(
        "deals.Deal", on_delete=models.CASCADE, null=True, blank=True, related_name="emails"
    )
    direction = models.CharField(max_length=3, choices=Direction.choices)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices)
    message_id = models.CharField(max_length=300, unique=True)
    in_reply_to = models.CharField(max_length=300, blank=True)
    references = models.TextField(blank=True)
    from_address = models.CharField(max_length=300, blank=True)
    to_addresses = models.TextField(blank=True)
    subject = models.CharField(max_length=300, blank=True)
    text = models.TextField(blank=True, help_text=gettext_lazy("The text part (bounded)."))
    headers = models.TextField(
        blank=True, help_text=gettext_lazy("The message's headers, for the inbox.")
    )
    source = models.CharField(
        max_length=40, blank=True, help_text=gettext_lazy("smtp, http, anymail:…, app")
    )
    matched_by = models.CharField(max_length=20, blank=True)
    contact = models.ForeignKey(
        "deals.Contact", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["deal", "-created_at"], name="dealemail_deal_time"),
            models.Index(fields=["status", "-created_at"], name="dealemail_status_time"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.subject[:60]}"


class BouncingAddress(models.Model):
    """An address mail to which bounced: follow-ups to it are paused until a rep fixes it."""

    email = models.EmailField(unique=True)
    reason = models.TextField(blank=True)
    bounces = models.PositiveIntegerField(default=1)
    first_bounced_at = models.DateTimeField(default=timezone.now)
    last_bounced_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-last_bounced_at"]
        verbose_name_plural = "bouncing addresses"

    def __str__(self) -> str:
        return self.email
