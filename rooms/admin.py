"""Admin: plan templates are edited freely (no deal's history depends on them); plan steps,
room links, questions, files, outcomes and needs are read-only, changed by admin actions
that call the services (audited on the deal's timeline)."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from deals.admin_actions import ServiceOnlyAdmin, service_action

from . import services
from .models import (
    DealNeed,
    PlanOutcome,
    PlanStep,
    PlanTemplate,
    PlanTemplateStep,
    RoomFile,
    RoomLink,
    RoomQuestion,
)


class PlanTemplateStepInline(admin.TabularInline):
    model = PlanTemplateStep
    extra = 1
    fields = ["position", "title", "side", "phase", "days_after_start"]


@admin.register(PlanTemplate)
class PlanTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "team", "is_default", "created_at"]
    list_filter = ["is_default", "team"]
    inlines = [PlanTemplateStepInline]


class AnswerForm(forms.Form):
    answer = forms.CharField(label=_("Answer"), widget=forms.Textarea)


@admin.register(PlanStep)
class PlanStepAdmin(ServiceOnlyAdmin):
    list_display = [
        "title",
        "deal",
        "side",
        "phase",
        "owner_user",
        "owner_contact",
        "due_date",
        "status",
    ]
    list_filter = ["status", "side", "phase"]
    search_fields = ["title", "deal__title"]
    list_select_related = ["deal", "owner_user", "owner_contact"]
    actions = [
        service_action(
            name="mark_done",
            description=_("Mark done"),
            call=lambda step, user: services.plan_step_update(step=step, by=user, status="done"),
            done=_("marked done"),
        ),
        service_action(
            name="mark_skipped",
            description=_("Mark skipped"),
            call=lambda step, user: services.plan_step_update(step=step, by=user, status="skipped"),
            done=_("marked skipped"),
        ),
        service_action(
            name="reopen",
            description=_("Reopen"),
            call=lambda step, user: services.plan_step_update(step=step, by=user, status="open"),
            done=_("reopened"),
        ),
    ]


@admin.register(RoomLink)
class RoomLinkAdmin(ServiceOnlyAdmin):
    list_display = [
        "contact",
        "deal",
        "created_at",
        "expires_at",
        "revoked_at",
        "visits",
        "last_visit_at",
    ]
    list_filter = ["revoked_at"]
    search_fields = ["deal__title", "contact__last_name", "contact__email"]
    list_select_related = ["deal", "contact"]
    exclude = ["nonce"]
    actions = [
        service_action(
            name="revoke",
            description=_("Turn off the selected links"),
            call=lambda link, user: services.room_link_revoke(link=link, by=user),
            done=_("turned off"),
        )
    ]


@admin.register(RoomQuestion)
class RoomQuestionAdmin(ServiceOnlyAdmin):
    list_display = ["text", "deal", "link", "asked_at", "answered_at", "objection"]
    search_fields = ["text", "deal__title"]
    list_select_related = ["deal", "link__contact", "objection"]
    actions = [
        service_action(
            name="answer",
            description=_("Answer"),
            call=lambda q, user, answer: services.room_question_answer(
                question=q, by=user, answer=answer
            ),
            done=_("answered"),
            form_class=AnswerForm,
        ),
        service_action(
            name="to_objection",
            description=_("Make it an objection"),
            call=lambda q, user: services.room_question_to_objection(question=q, by=user),
            done=_("noted as an objection"),
        ),
    ]


@admin.register(RoomFile)
class RoomFileAdmin(ServiceOnlyAdmin):
    list_display = [
        "name",
        "deal",
        "size",
        "content_type",
        "shared_by",
        "uploaded_by_link",
        "created_at",
    ]
    list_select_related = ["deal", "shared_by", "uploaded_by_link__contact"]
    exclude = ["file"]


@admin.register(PlanOutcome)
class PlanOutcomeAdmin(ServiceOnlyAdmin):
    list_display = ["text", "deal", "status", "confirmed_by", "confirmed_at"]
    list_select_related = ["deal", "confirmed_by"]


@admin.register(DealNeed)
class DealNeedAdmin(ServiceOnlyAdmin):
    list_display = ["text", "deal", "noted_by", "created_at", "follow_on"]
    list_select_related = ["deal", "noted_by", "follow_on"]
    actions = [
        service_action(
            name="follow_on",
            description=_("Open a follow-on deal"),
            call=lambda need, user: services.deal_need_to_follow_on(need=need, by=user),
            done=_("follow-on deal opened"),
        )
    ]
