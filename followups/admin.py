"""Admin: cadences with their steps; reminders, tasks and meetings read-only, with actions
that call the follow-up services (failed reminders filterable, with their error)."""

from django.contrib import admin
from django.utils.translation import gettext, gettext_lazy

from deals.admin_actions import ServiceOnlyAdmin, service_action

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

    @admin.display(description=gettext("Steps"))
    def step_count(self, obj: Cadence) -> int:
        return obj.steps.count()


def _reminder_action(name: str, description: str, service, done: str):
    return service_action(
        name=name,
        description=description,
        call=lambda reminder, user: service(reminder=reminder, by=user),
        done=done,
    )


@admin.register(Reminder)
class ReminderAdmin(ServiceOnlyAdmin):
    """Reminders come from cadences when a contract is sent and change only through the
    follow-up services (the deal page's pause, resume and skip; retry here)."""

    list_display = ["__str__", "status", "due_at", "sent_at", "attempts", "short_error"]
    list_filter = ["status", "channel"]
    list_select_related = ["deal"]
    search_fields = ["deal__title", "recipient", "last_error"]
    date_hierarchy = "due_at"
    actions = [
        _reminder_action(
            "retry_failed",
            "Retry the selected failed follow-ups",
            services.reminder_retry,
            "scheduled to go out again.",
        ),
        _reminder_action(
            "pause_reminders", "Pause the selected follow-ups", services.reminder_pause, "paused."
        ),
        _reminder_action(
            "resume_reminders",
            "Resume the selected follow-ups",
            services.reminder_resume,
            "resumed.",
        ),
        _reminder_action(
            "skip_reminders", "Skip the selected follow-ups", services.reminder_skip, "skipped."
        ),
    ]

    @admin.display(description=gettext("Error"))
    def short_error(self, obj: Reminder) -> str:
        return (obj.last_error[:80] + "…") if len(obj.last_error) > 80 else obj.last_error


@admin.register(RepTask)
class RepTaskAdmin(ServiceOnlyAdmin):
    """Tasks come from follow-ups and meetings; done only through `rep_task_complete`."""

    list_display = ["title", "kind", "owner", "deal", "due_at", "completed_at", "cancelled_at"]
    list_filter = ["kind", ("completed_at", admin.EmptyFieldListFilter), "owner"]
    list_select_related = ["owner", "deal"]
    search_fields = ["title", "deal__title"]
    actions = [
        service_action(
            name="complete_tasks",
            description=gettext_lazy("Mark the selected tasks done"),
            call=lambda task, user: services.rep_task_complete(task=task, by=user),
            done="done.",
        )
    ]


@admin.register(ReviewMeeting)
class ReviewMeetingAdmin(ServiceOnlyAdmin):
    """Scheduled and moved on the deal page, which invites the buyers."""

    list_display = ["deal", "starts_at", "duration_minutes", "organizer", "sequence"]
    list_select_related = ["deal", "organizer"]


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
