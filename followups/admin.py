"""Admin: cadences with their steps; reminders (failed ones filterable, with their error)."""

from django.contrib import admin, messages

from deals.services import DealError

from . import services
from .models import (
    BouncingAddress,
    Cadence,
    CadenceStep,
    DealEmail,
    Reminder,
    RepTask,
    ReviewMeeting,
)


class CadenceStepInline(admin.TabularInline):
    model = CadenceStep
    extra = 1
    fields = ["offset_days", "channel", "subject", "body", "position"]


@admin.register(Cadence)
class CadenceAdmin(admin.ModelAdmin):
    list_display = ["name", "team", "step_count", "repeat_every_days", "repeat_times", "is_active"]
    list_filter = ["is_active", "team"]
    inlines = [CadenceStepInline]

    @admin.display(description="Steps")
    def step_count(self, obj: Cadence) -> int:
        return obj.steps.count()


@admin.register(Reminder)
class ReminderAdmin(admin.ModelAdmin):
    list_display = ["__str__", "status", "due_at", "sent_at", "attempts", "short_error"]
    list_filter = ["status", "channel"]
    list_select_related = ["deal"]
    search_fields = ["deal__title", "recipient", "last_error"]
    date_hierarchy = "due_at"
    actions = ["retry_failed"]
    readonly_fields = [
        "deal", "contract_version", "step", "sequence", "channel", "planned_at", "status",
        "claim_token", "lease_until", "attempts", "last_error", "message_id", "recipient",
        "sent_at", "closed_reason", "created_at", "updated_at",
    ]  # fmt: skip
    fields = [*readonly_fields[:6], "subject_template", "body_template", "due_at",
              *readonly_fields[6:]]  # fmt: skip

    @admin.display(description="Error")
    def short_error(self, obj: Reminder) -> str:
        return (obj.last_error[:80] + "…") if len(obj.last_error) > 80 else obj.last_error

    def has_add_permission(self, request) -> bool:
        return False  # reminders come from cadences when a contract is sent

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status not in (
            Reminder.Status.SCHEDULED,
            Reminder.Status.PAUSED,
        ):
            return [*self.readonly_fields, "subject_template", "body_template", "due_at"]
        return self.readonly_fields

    @admin.action(description="Retry the selected failed follow-ups")
    def retry_failed(self, request, queryset):
        done = 0
        for reminder in queryset.filter(status=Reminder.Status.FAILED):
            try:
                services.reminder_retry(reminder=reminder, by=request.user)
                done += 1
            except DealError as exc:
                self.message_user(request, f"{reminder}: {exc.message}", messages.ERROR)
        self.message_user(request, f"{done} follow-up(s) scheduled to go out again.")


@admin.register(RepTask)
class RepTaskAdmin(admin.ModelAdmin):
    list_display = ["title", "kind", "owner", "deal", "due_at", "completed_at", "cancelled_at"]
    list_filter = ["kind", ("completed_at", admin.EmptyFieldListFilter), "owner"]
    list_select_related = ["owner", "deal"]
    search_fields = ["title", "deal__title"]
    raw_id_fields = ["deal", "reminder", "meeting", "email", "owner", "completed_by"]


@admin.register(ReviewMeeting)
class ReviewMeetingAdmin(admin.ModelAdmin):
    list_display = ["deal", "starts_at", "duration_minutes", "organizer", "sequence"]
    list_select_related = ["deal", "organizer"]
    raw_id_fields = ["deal", "organizer"]
    filter_horizontal = ["attendees"]
    readonly_fields = ["uid", "sequence", "invitation_sent_sequence"]


@admin.register(DealEmail)
class DealEmailAdmin(admin.ModelAdmin):
    """The email log, and the inbox of mail no deal claimed (filter: Unmatched)."""

    list_display = ["created_at", "direction", "kind", "status", "from_address", "subject", "deal"]
    list_filter = ["status", "direction", "kind", "source"]
    list_select_related = ["deal"]
    search_fields = ["subject", "from_address", "to_addresses", "message_id"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "deal", "direction", "kind", "status", "message_id", "in_reply_to", "references",
        "from_address", "to_addresses", "subject", "text", "headers", "source", "matched_by",
        "contact", "sent_by", "error", "created_at", "sent_at",
    ]  # fmt: skip

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # mail is kept, never dropped


@admin.register(BouncingAddress)
class BouncingAddressAdmin(admin.ModelAdmin):
    list_display = ["email", "bounces", "last_bounced_at", "reason"]
    search_fields = ["email"]
    readonly_fields = ["bounces", "first_bounced_at", "last_bounced_at"]
