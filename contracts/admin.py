"""Admin: contract templates (validated in the sandbox, versioned on edit); read-only records."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy

from deals.admin_actions import ServiceOnlyAdmin, service_action

from . import documents, services
from .models import (
    ContractSigner,
    ContractTemplate,
    ContractVersion,
    EnvelopeEvent,
    WebhookDelivery,
)


class ContractTemplateForm(forms.ModelForm):
    class Meta:
        model = ContractTemplate
        fields = ["name", "body", "is_default", "is_active"]
        widgets = {"body": forms.Textarea(attrs={"rows": 30, "cols": 110})}

    def clean_body(self):
        body = self.cleaned_data["body"]
        try:
            services.template_check(body)
        except documents.TemplateProblem as exc:
            raise forms.ValidationError(str(exc)) from None
        return body


@admin.register(ContractTemplate)
class ContractTemplateAdmin(admin.ModelAdmin):
    form = ContractTemplateForm
    list_display = ["name", "version", "is_default", "is_active", "created_at"]
    list_filter = ["is_active", "is_default"]
    readonly_fields = ["version", "created_at"]

    def save_model(self, request, obj, form, change):
        """Editing the text of a template saves a new version; the old one stays for its
        contracts. Only one active default at a time."""
        if change and "body" in form.changed_data:
            old = ContractTemplate.objects.get(pk=obj.pk)
            new = services.template_save_new_version(template=old, body=obj.body)
            obj.pk, obj.version = new.pk, new.version
            obj.is_default, obj.is_active = form.cleaned_data["is_default"], True
            ContractTemplate.objects.filter(pk=new.pk).update(
                is_default=obj.is_default, is_active=True
            )
        else:
            super().save_model(request, obj, form, change)
        if obj.is_default:
            ContractTemplate.objects.exclude(pk=obj.pk).update(is_default=False)

    def has_delete_permission(self, request, obj=None):
        return obj is None or not ContractVersion.objects.filter(template=obj).exists()


class VoidForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=gettext_lazy("Why the contract is withdrawn. The signer sees it."),
    )


class ContractSignerInline(admin.TabularInline):
    """Who signs, in which order, and what they did (written only by the services)."""

    model = ContractSigner
    extra = 0
    can_delete = False
    fields = [
        "routing_order",
        "role",
        "name",
        "email",
        "status",
        "due_at",
        "viewed_at",
        "signed_at",
        "declined_at",
        "ip",
    ]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ContractVersion)
class ContractVersionAdmin(ServiceOnlyAdmin):
    """Versions are generated, sent, signed and voided only through contracts.services."""

    inlines = [ContractSignerInline]
    list_display = ["deal", "number", "status", "provider_label", "sent_at", "completed_at"]
    list_filter = ["status", "provider"]
    list_select_related = ["deal"]
    search_fields = ["deal__title", "envelope_id", "signer_email"]
    readonly_fields = [f.name for f in ContractVersion._meta.fields]
    actions = [
        service_action(
            name="void_versions",
            description=gettext_lazy(
                "Void the selected contract versions (withdraw them from signature)"
            ),
            call=lambda v, user, reason: services.contract_void(version=v, by=user, reason=reason),
            done="voided.",
            form_class=VoidForm,
        ),
        service_action(
            name="resend_versions",
            description=gettext_lazy(
                "Retry sending the selected versions (or email the signing link again)"
            ),
            call=lambda v, user: services.contract_resend(version=v, by=user),
            done="sending again.",
        ),
    ]

    def get_urls(self):
        check = self.admin_site.admin_view(self.docusign_check_view)
        return [
            path("docusign-check/", check, name="contracts_docusign_check"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        """Admins see a DocuSign configuration problem (consent, key, account) at once."""
        from .esign.docusign import configuration_problem

        problem = configuration_problem()
        if problem and settings.ESIGN_PROVIDER == "docusign":
            messages.error(
                request,
                format_html(
                    'DocuSign cannot be used: {} <a href="{}">Check the configuration</a>',
                    problem,
                    reverse("admin:contracts_docusign_check"),
                ),
            )
        return super().changelist_view(request, extra_context)

    def docusign_check_view(self, request):
        """The same end-to-end check as `manage.py docusign_check`, on demand."""
        from .esign.docusign import configuration_check, configuration_problem

        if not self.has_view_permission(request):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        checks = configuration_check() if request.method == "POST" else []
        context = {
            **self.admin_site.each_context(request),
            "title": "DocuSign configuration",
            "checks": checks,
            "ran": request.method == "POST",
            "problem": configuration_problem(),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/contracts/docusign_check.html", context)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["received_at", "provider", "event", "envelope_id", "outcome", "processed_at"]
    list_filter = ["provider", "outcome", "event"]
    search_fields = ["envelope_id"]
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # the inbox is the record of what the provider told us


@admin.register(EnvelopeEvent)
class EnvelopeEventAdmin(admin.ModelAdmin):
    list_display = ["applied_at", "envelope_id", "event", "source"]
    readonly_fields = [f.name for f in EnvelopeEvent._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # applied events keep envelopes idempotent
