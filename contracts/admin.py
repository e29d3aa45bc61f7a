"""Admin for contract templates and versions (versions are read-only records)."""

from django.contrib import admin

from .models import ContractTemplate, ContractVersion


@admin.register(ContractTemplate)
class ContractTemplateAdmin(admin.ModelAdmin):
    list_display = ["name", "version", "is_default", "created_at"]


@admin.register(ContractVersion)
class ContractVersionAdmin(admin.ModelAdmin):
    list_display = ["deal", "number", "status", "provider", "sent_at", "completed_at"]
    list_filter = ["status", "provider"]
    list_select_related = ["deal"]
    readonly_fields = [f.name for f in ContractVersion._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
