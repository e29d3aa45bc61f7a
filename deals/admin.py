"""Django admin for the deals app. Transitions are admin actions that call the same services."""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.http import JsonResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext, gettext_lazy

from . import services
from .admin_actions import ServiceOnlyAdmin, ServiceOnlyInline, run_each, service_action
from .models import (
    Account,
    Ask,
    BulkJob,
    BulkJobItem,
    BuyingSignal,
    Concession,
    Contact,
    Deal,
    DealEvent,
    DealState,
    DealStay,
    DealTotal,
    LineItem,
    LossReason,
    Objection,
    OnboardingStep,
    PrivacyEvent,
    Quota,
    QuotaChange,
    SavedView,
    StageSetting,
    Stakeholder,
    Team,
    User,
)
from .templatetags.crm_format import day_text, money_text


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "currency",
        "reps_see_team_deals",
        "account_manager",
        "countersign_contracts",
        "countersigner",
    ]


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ["username", "get_full_name", "email", "role", "team", "is_staff", "is_active"]
    list_filter = ["role", "team", "is_staff", "is_active"]
    fieldsets = (
        *BaseUserAdmin.fieldsets,
        (
            "Sales",
            {
                "fields": [
                    "role",
                    "team",
                    "time_zone",
                    "working_days",
                    "workday_start",
                    "workday_end",
                    "language",
                ]
            },
        ),
    )
    add_fieldsets = (
        *BaseUserAdmin.add_fieldsets,
        ("Sales", {"fields": ["role", "team"]}),
    )


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ["name", "status", "team", "owner", "account_manager", "archived_at"]
    list_filter = ["status", "team"]
    search_fields = ["name", "website"]
    list_select_related = ["team", "owner", "account_manager"]
    actions = ["archive_accounts"]
    fields = ["name", "website", "industry", "team", "owner", "account_manager"]
    readonly_fields = ["status", "became_customer_at", "archived_at", "created_at", "updated_at"]

    def get_fields(self, request, obj=None):
        return [*self.fields, *(self.readonly_fields if obj else [])]

    def get_readonly_fields(self, request, obj=None):
        # Team and owner are set once; customer status comes from a won deal.
        return [*self.readonly_fields, "team", "owner"] if obj else []

    def save_model(self, request, obj, form, change):
        # Writes go through the services (their checks hold here too).
        data = form.cleaned_data
        if change:
            fresh = Account.objects.get(pk=obj.pk)
            changes = {
                f: data[f] for f in form.changed_data if f in services.ACCOUNT_EDITABLE_FIELDS
            }
            form.instance = services.account_update(account=fresh, by=request.user, **changes)
        else:
            form.instance = services.account_create(
                by=data["owner"],
                team=data["team"],
                name=data["name"],
                website=data["website"],
                industry=data["industry"],
                account_manager=data["account_manager"],
            )
        obj.pk = form.instance.pk

    def has_delete_permission(self, request, obj=None):
        # Accounts are archived, never deleted (see deals.services.account_archive).
        return False

    @admin.action(description=gettext("Archive selected accounts (nothing is deleted)"))
    def archive_accounts(self, request, queryset):
        _archive_each(
            self, request, queryset, lambda a: services.account_archive(account=a, by=request.user)
        )


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["full_name", "email", "job_title", "account", "archived_at"]
    search_fields = ["first_name", "last_name", "email", "account__name"]
    list_select_related = ["account"]
    list_filter = [("erased_at", admin.EmptyFieldListFilter)]
    actions = ["archive_contacts", "export_personal_data", "erase_personal_data"]
    fields = ["account", "first_name", "last_name", "email", "phone", "job_title"]
    readonly_fields = ["archived_at", "erased_at", "created_at"]

    def get_fields(self, request, obj=None):
        return [*self.fields, *(self.readonly_fields if obj else [])]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "account"] if obj else []

    def save_model(self, request, obj, form, change):
        # Writes go through the services (their checks hold here too).
        data = form.cleaned_data
        if change:
            fresh = Contact.objects.select_related("account").get(pk=obj.pk)
            changes = {
                f: data[f] for f in form.changed_data if f in services.CONTACT_EDITABLE_FIELDS
            }
            form.instance = services.contact_update(contact=fresh, by=request.user, **changes)
        else:
            form.instance = services.contact_create(
                by=request.user,
                **{f: data[f] for f in self.fields},
            )
        obj.pk = form.instance.pk

    def has_delete_permission(self, request, obj=None):
        # Contacts are archived, never deleted (see deals.services.contact_archive).
        return False

    @admin.action(description=gettext("Archive selected contacts (nothing is deleted)"))
    def archive_contacts(self, request, queryset):
        _archive_each(
            self, request, queryset, lambda c: services.contact_archive(contact=c, by=request.user)
        )

    def _one(self, request, queryset) -> Contact | None:
        if queryset.count() != 1:
            self.message_user(
                request, "Choose exactly one contact for a personal data request.", messages.ERROR
            )
            return None
        return queryset.get()

    @admin.action(description=gettext("GDPR: export the contact's personal data (JSON)"))
    def export_personal_data(self, request, queryset):
        contact = self._one(request, queryset)
        if contact is None:
            return None
        try:
            data = services.contact_personal_data_export(
                contact=contact, by=request.user, reason="Exported from the admin."
            )
        except services.DealError as error:
            self.message_user(request, error.message, messages.ERROR)
            return None
        response = JsonResponse(data, json_dumps_params={"indent": 2})
        response["Content-Disposition"] = (
            f'attachment; filename="contact-{contact.pk}-personal-data.json"'
        )
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description=gettext("GDPR: erase the contact's personal data…"))
    def erase_personal_data(self, request, queryset):
        contact = self._one(request, queryset)
        if contact is None:
            return None
        form = ErasureForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return TemplateResponse(
                request,
                "admin/deals/contact/erase_confirm.html",
                {
                    **self.admin_site.each_context(request),
                    "title": "Erase personal data",
                    "form": form,
                    "contact": contact,
                    "opts": self.model._meta,
                },
            )
        try:
            summary = services.contact_erase(
                contact=contact, by=request.user, reason=form.cleaned_data["reason"]
            )
        except services.DealError as error:
            self.message_user(request, f"{contact}: {error.message}", messages.ERROR)
            return None
        kept = summary.get("contract_versions_kept_as_legal_record", 0)
        self.message_user(
            request,
            f"Contact #{contact.pk} erased: {summary['timeline_events_redacted']} timeline "
            f"event(s) redacted; {kept} sent contract version(s) kept as the legal record.",
            messages.SUCCESS,
        )
        return None


class ErasureForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Whose request is this? (kept in the audit log)"),
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    confirm = forms.BooleanField(
        label=gettext_lazy(
            "I understand that the name, email, phone and job title cannot be restored."
        )
    )


@admin.register(PrivacyEvent)
class PrivacyEventAdmin(ServiceOnlyAdmin):
    """Who exported or erased whose personal data: read-only, never deleted."""

    list_display = ["created_at", "kind", "contact", "actor", "reason"]
    list_filter = ["kind"]
    list_select_related = ["contact", "actor"]
    readonly_fields = [f.name for f in PrivacyEvent._meta.fields]


def _archive_each(modeladmin, request, queryset, archive) -> None:
    """Archive each selected row through its service; refusals are reported per row."""
    run_each(modeladmin, request, queryset, archive, done="archived.")


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=True)
    loss_reason = forms.ChoiceField(choices=[("", "—"), *LossReason.choices], required=False)


class ReassignAdminForm(forms.Form):
    new_owner = forms.ModelChoiceField(
        queryset=User.objects.filter(is_active=True, team__isnull=False).select_related("team"),
        help_text=gettext_lazy("An active member of each deal's team (other deals are refused)."),
    )
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)
    move_account = forms.BooleanField(
        required=False, label=gettext_lazy("Hand over the accounts too")
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["new_owner"].label_from_instance = lambda u: f"{u} ({u.team})"


def _transition_action(name: str, label: str, needs_reason: bool):
    """An admin action that fires `name` through deals.services for each selected deal."""

    def action(modeladmin, request, queryset):
        reason, loss_reason = "", ""
        if needs_reason:
            form = ReasonForm(request.POST if "apply" in request.POST else None)
            if name == "mark_lost":
                form.fields["loss_reason"].required = True
            if not form.is_valid():
                return TemplateResponse(
                    request,
                    "admin/deals/deal/transition_reason.html",
                    {
                        **modeladmin.admin_site.each_context(request),
                        "title": label,
                        "form": form,
                        "deals": queryset,
                        "action": action.__name__,
                        "opts": modeladmin.model._meta,
                        "ask_loss_reason": name == "mark_lost",
                    },
                )
            reason = form.cleaned_data["reason"]
            loss_reason = form.cleaned_data["loss_reason"]
        done = 0
        for deal in queryset:
            try:
                services.deal_transition(
                    deal=deal,
                    transition=name,
                    by=request.user,
                    reason=reason,
                    loss_reason=loss_reason,
                )
                done += 1
            except services.DealError as exc:
                modeladmin.message_user(request, f"{deal}: {exc.message}", messages.ERROR)
        if done:
            modeladmin.message_user(request, f"{label}: {done} deal(s) moved.", messages.SUCCESS)
        return None

    action.__name__ = f"transition_{name}"
    action.short_description = f"Transition: {label}"
    return action


class LineItemInline(admin.TabularInline):
    model = LineItem
    extra = 0

    def _frozen(self, obj) -> bool:
        return obj is not None and obj.state == DealState.CLOSED_WON

    def has_add_permission(self, request, obj=None):
        return not self._frozen(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return not self._frozen(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return not self._frozen(obj) and super().has_delete_permission(request, obj)


class StakeholderInline(ServiceOnlyInline):
    """The buying group, read-only: it changes on the deal page (or the Stakeholder
    admin's actions), where the timeline records it."""

    model = Stakeholder
    fields = ["contact", "role", "note"]
    readonly_fields = fields


class DealEventInline(admin.TabularInline):
    model = DealEvent
    extra = 0
    can_delete = False
    fields = ["created_at", "actor", "kind", "from_state", "to_state", "reason"]
    readonly_fields = fields
    ordering = ["-created_at"]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Deal)
class DealAdmin(admin.ModelAdmin):
    # Fits a laptop screen without a side scroll: the title already names the account ("Acme:
    # rollout") and the team is a filter; both stay searchable/filterable.
    list_display = [
        "title",
        "state",
        "amount_display",
        "owner",
        "expected_close_display",
        "last_activity_display",
    ]
    list_filter = ["state", "team", "currency", "closing_technique"]
    search_fields = ["title", "account__name"]
    list_select_related = ["account", "owner", "team"]
    date_hierarchy = "expected_close_date"
    readonly_fields = [
        "state",
        "state_changed_at",
        "closed_at",
        "loss_reason",
        "loss_note",
        "won_override_reason",
        "last_activity_at",
        "created_at",
        "updated_at",
    ]
    autocomplete_fields = ["account", "parent_deal"]
    inlines = [LineItemInline, StakeholderInline, DealEventInline]
    # One action per transition, read from the model's metadata; moves that only their use
    # case makes (send_agreement with a sent contract, ask with a numbered ask) are not
    # offered here, and the service refuses them on any path.
    actions = [
        _transition_action(name, meta["label"], meta["needs_reason"])
        for name, meta in services.transition_admin_actions()
    ] + [
        "archive_deals",
        service_action(
            name="reassign_deals",
            description=gettext_lazy("Change the owner of the selected deals"),
            call=lambda deal, user, **data: services.deal_reassign(deal=deal, by=user, **data),
            done="handed over; the new owner is notified.",
            form_class=ReassignAdminForm,
        ),
    ]

    # Who sees the service actions: the change permission; the service decides per deal.
    has_act_permission = ServiceOnlyAdmin.has_act_permission

    def get_fields(self, request, obj=None):
        editable = sorted(services.DEAL_EDITABLE_FIELDS - {"title", "amount", "currency"})
        head = ["title", "account", "owner", "amount", "currency"]
        return [*head, *editable, *(self.readonly_fields if obj else [])]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        frozen = sorted(services.FROZEN_WHEN_WON) if obj.state == DealState.CLOSED_WON else []
        # A won deal's signed terms are frozen here too: managers amend them with a reason.
        return [*self.readonly_fields, "account", "owner", *frozen]

    def save_model(self, request, obj, form, change):
        # Writes go through the services so the timeline records them.
        data = form.cleaned_data
        if change:
            fresh = Deal.objects.get(pk=obj.pk)
            changes = {f: data[f] for f in form.changed_data if f in services.DEAL_EDITABLE_FIELDS}
            form.instance = services.deal_update(deal=fresh, by=request.user, **changes)
        else:
            extra = {
                f: data[f]
                for f in services.DEAL_EDITABLE_FIELDS - {"title", "amount", "currency"}
                if f in data
            }
            form.instance = services.deal_create(
                by=request.user,
                owner=data["owner"],
                account=data["account"],
                title=data["title"],
                amount=data["amount"],
                currency=data["currency"],
                **extra,
            )
        obj.pk = form.instance.pk

    def save_related(self, request, form, formsets, change):
        form.save_m2m = lambda: None
        for formset in formsets:
            formset.instance = form.instance
        super().save_related(request, form, formsets, change)

    def has_delete_permission(self, request, obj=None):
        # Deals are archived, never deleted: their history is the audit trail.
        return False

    # CSV import: the same upload → preview → import pages as managers use, in admin chrome.
    change_list_template = "admin/deals/deal/change_list_import.html"

    def get_urls(self):
        from functools import partial

        from django.urls import path

        from .views.imports import import_upload

        view = self.admin_site.admin_view(partial(import_upload, admin=True))
        return [path("import-csv/", view, name="deals_deal_import"), *super().get_urls()]

    # Short columns, so the list fits a laptop screen without a side scroll.
    @admin.display(description=gettext("Amount"), ordering="amount")
    def amount_display(self, deal) -> str:
        return money_text(deal.amount, deal.currency)

    @admin.display(description=gettext("Expected close"), ordering="expected_close_date")
    def expected_close_display(self, deal) -> str:
        return day_text(deal.expected_close_date) or "—"

    @admin.display(description=gettext("Last activity"), ordering="last_activity_at")
    def last_activity_display(self, deal) -> str:
        return day_text(deal.last_activity_at)

    @admin.action(description=gettext("Archive selected deals (nothing is deleted)"))
    def archive_deals(self, request, queryset):
        _archive_each(
            self, request, queryset, lambda d: services.deal_archive(deal=d, by=request.user)
        )


@admin.register(DealEvent)
class DealEventAdmin(ServiceOnlyAdmin):
    """The audit log: read-only, append-only."""

    # One "what happened" column ("Agreement sent → Follow-up", "Buying signal") and a short
    # reason: the list fits a laptop screen.
    list_display = ["created_at", "deal", "what", "actor_label", "reason_short"]
    list_filter = ["kind", "to_state"]
    search_fields = ["deal__title", "reason"]
    list_select_related = ["deal", "actor"]
    date_hierarchy = "created_at"

    @admin.display(description=gettext("What"))
    def what(self, event) -> str:
        return str(event)

    @admin.display(description=gettext("By"))
    def actor_label(self, event) -> str:
        return event.actor_label

    @admin.display(description=gettext("Reason"))
    def reason_short(self, event) -> str:
        return event.reason if len(event.reason) <= 80 else event.reason[:79] + "…"


@admin.register(DealStay)
class DealStayAdmin(ServiceOnlyAdmin):
    """Each deal's stays in a state: written with each transition, read-only here."""

    list_display = ["deal", "state", "entered_at", "left_at", "entered_by", "left_by"]
    list_filter = ["state"]
    search_fields = ["deal__title"]
    list_select_related = ["deal", "entered_by", "left_by"]
    date_hierarchy = "entered_at"


@admin.register(DealTotal)
class DealTotalAdmin(ServiceOnlyAdmin):
    """Running deal totals the dashboards read: kept by the services, read-only here
    (`manage.py deal_totals` checks them against the deals, `--rebuild` repairs them)."""

    list_display = ["team", "owner", "state", "currency", "deals", "amount"]
    list_filter = ["state", "currency", "team"]
    list_select_related = ["team", "owner"]
    ordering = ["team", "owner", "state", "currency"]


@admin.register(StageSetting)
class StageSettingAdmin(admin.ModelAdmin):
    list_display = ["state", "probability", "stall_after_days"]
    list_editable = ["probability", "stall_after_days"]


@admin.register(BuyingSignal)
class BuyingSignalAdmin(ServiceOnlyAdmin):
    """Recorded on the deal page (or noticed by the product); read-only here."""

    list_display = ["deal", "kind", "channel", "observed_at", "recorded_by"]
    list_filter = ["kind", "channel"]
    list_select_related = ["deal", "recorded_by"]
    search_fields = ["deal__title", "note"]


@admin.register(Ask)
class AskAdmin(ServiceOnlyAdmin):
    """Numbered asks move the deal: recorded only through `deal_ask_record`."""

    list_display = ["deal", "number", "channel", "answer", "asked_at", "asked_by"]
    list_filter = ["answer", "channel"]
    list_select_related = ["deal", "asked_by"]
    search_fields = ["deal__title", "statement"]


class ResolveObjectionForm(forms.Form):
    resolution = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("How it was resolved, in a sentence (kept on the deal's timeline)."),
    )


def _resolve(objection, user, *, resolution, accepted_loss=False):
    return services.objection_resolve(
        objection=objection, by=user, resolution=resolution, accepted_loss=accepted_loss
    )


@admin.register(Objection)
class ObjectionAdmin(ServiceOnlyAdmin):
    list_display = ["deal", "category", "is_stall", "status", "raised_at", "resolved_at"]
    list_filter = ["category", "status", "is_stall"]
    list_select_related = ["deal"]
    search_fields = ["deal__title", "detail"]
    actions = [
        service_action(
            name="resolve_objections",
            description=gettext_lazy("Resolve the selected objections"),
            call=_resolve,
            done="resolved.",
            form_class=ResolveObjectionForm,
        ),
        service_action(
            name="accept_objections_as_loss",
            description=gettext_lazy("Close the selected objections as an accepted loss"),
            call=lambda o, user, **data: _resolve(o, user, accepted_loss=True, **data),
            done="closed as an accepted loss.",
            form_class=ResolveObjectionForm,
        ),
    ]


@admin.register(Concession)
class ConcessionAdmin(ServiceOnlyAdmin):
    """Deciding a concession changes the contract: only through `concession_decide`."""

    list_display = ["deal", "give", "get", "status", "decided_at"]
    list_filter = ["status"]
    list_select_related = ["deal"]
    search_fields = ["deal__title", "give", "get"]
    actions = [
        service_action(
            name="accept_concessions",
            description=gettext_lazy("Accept the selected concessions"),
            call=lambda c, user: services.concession_decide(concession=c, by=user, accepted=True),
            done="accepted.",
        ),
        service_action(
            name="reject_concessions",
            description=gettext_lazy("Reject the selected concessions"),
            call=lambda c, user: services.concession_decide(concession=c, by=user, accepted=False),
            done="rejected.",
        ),
    ]


@admin.register(Stakeholder)
class StakeholderAdmin(ServiceOnlyAdmin):
    """The buying group changes on the deal page, where the timeline records it."""

    list_display = ["deal", "contact", "role"]
    list_filter = ["role"]
    list_select_related = ["deal", "contact"]
    search_fields = ["deal__title", "contact__first_name", "contact__last_name"]
    actions = [
        service_action(
            name="remove_stakeholders",
            description=gettext_lazy("Remove the selected people from their buying group"),
            call=lambda s, user: services.stakeholder_remove(stakeholder=s, by=user),
            done="removed from the buying group.",
        )
    ]


@admin.register(OnboardingStep)
class OnboardingStepAdmin(ServiceOnlyAdmin):
    list_display = ["deal", "kind", "assignee", "due_date", "done_at", "done_by"]
    list_filter = ["kind", ("done_at", admin.EmptyFieldListFilter)]
    list_select_related = ["deal", "assignee", "done_by"]
    search_fields = ["deal__title"]
    actions = [
        service_action(
            name="complete_onboarding_steps",
            description=gettext_lazy("Mark the selected onboarding steps done"),
            call=lambda step, user: services.onboarding_step_complete(step=step, by=user),
            done="done.",
        )
    ]


@admin.register(LineItem)
class LineItemAdmin(admin.ModelAdmin):
    list_display = ["deal", "description", "quantity", "unit_price"]
    list_select_related = ["deal"]


class QuotaAdminForm(forms.ModelForm):
    reason = forms.CharField(
        required=False,
        max_length=500,
        help_text=gettext_lazy("Kept in the quota history with your name and the time."),
    )

    class Meta:
        model = Quota
        fields = ["rep", "period_kind", "period_start", "currency", "amount"]

    request = None  # set by QuotaAdmin.get_form

    def clean(self):
        data = super().clean()
        rep = self.instance.rep if self.instance.pk else data.get("rep")
        if rep is not None and self.request is not None:
            try:
                services.quota_setter_check(by=self.request.user, rep=rep)
            except services.DealError as error:
                raise forms.ValidationError(error.message) from None
        return data


@admin.register(Quota)
class QuotaAdmin(admin.ModelAdmin):
    """Quotas are set through `services.quota_set` (its checks and its history line)."""

    form = QuotaAdminForm
    list_display = ["rep", "team", "period_label", "amount_text", "set_by", "set_at"]
    list_filter = ["team", "period_kind", "currency"]
    search_fields = ["rep__username", "rep__first_name", "rep__last_name"]
    list_select_related = ["rep", "team", "set_by"]
    date_hierarchy = "period_start"

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"request": request})

    def get_readonly_fields(self, request, obj=None):
        # Rep, period and currency name the quota; only its amount changes.
        return ["rep", "period_kind", "period_start", "currency", "team"] if obj else []

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        try:
            quota, _changed = services.quota_set(
                by=request.user,
                rep=obj.rep,
                period_kind=obj.period_kind,
                period_start=obj.period_start,
                currency=obj.currency,
                amount=data["amount"],
                source=QuotaChange.Source.ADMIN,
                reason=data.get("reason", ""),
            )
        except services.DealError as error:  # checked in the form; a race lands here
            messages.error(request, error.message)
            raise
        form.instance = quota
        obj.pk = quota.pk

    def has_delete_permission(self, request, obj=None):
        # Nothing is deleted: a quota no longer wanted is set to zero (and the history says so).
        return False

    @admin.display(description=gettext_lazy("Period"), ordering="period_start")
    def period_label(self, quota) -> str:
        return quota.period_label

    @admin.display(description=gettext_lazy("Quota"), ordering="amount")
    def amount_text(self, quota) -> str:
        return money_text(quota.amount, quota.currency)


@admin.register(QuotaChange)
class QuotaChangeAdmin(ServiceOnlyAdmin):
    """Who set which quota, when: read-only, append-only."""

    list_display = ["created_at", "quota", "actor", "old_amount", "new_amount", "source", "reason"]
    list_filter = ["source", "team"]
    list_select_related = ["quota__rep", "actor"]
    date_hierarchy = "created_at"


# --- bulk jobs and saved views: read-only (they are made from the deal list) -----------------


class BulkJobItemInline(ServiceOnlyInline):
    model = BulkJobItem
    fields = ["position", "ref", "deal", "title", "seen_state", "outcome", "message", "finished_at"]
    readonly_fields = fields
    ordering = ["position"]
    show_change_link = False


@admin.register(BulkJob)
class BulkJobAdmin(ServiceOnlyAdmin):
    """Who ran which bulk action on how many deals, and each deal's result."""

    list_display = ["pk", "created_at", "by", "action", "status", "total", "finished_at"]
    list_filter = ["action", "status"]
    list_select_related = ["by"]
    search_fields = ["by__username"]
    fields = [
        "by",
        "action",
        "params",
        "selection",
        "status",
        "total",
        "created_at",
        "started_at",
        "finished_at",
    ]
    readonly_fields = fields
    inlines = [BulkJobItemInline]


@admin.register(SavedView)
class SavedViewAdmin(ServiceOnlyAdmin):
    list_display = ["name", "page", "owner", "team", "shared", "team_default", "updated_at"]
    list_filter = ["page", "shared", "team_default", "team"]
    list_select_related = ["owner", "team"]
    search_fields = ["name", "owner__username"]
    fields = ["name", "page", "owner", "team", "params", "shared", "team_default", "created_at"]
    readonly_fields = fields
