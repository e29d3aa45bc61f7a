"""Admin building blocks for records that change only through their use cases.

A record with a use case in a `services.py` is read-only in the Django admin: no add,
no edit, no delete. What an admin may do to it is an admin action that calls the
service for each selected row, so permissions, guards, locks and the audit log hold
there exactly as on the deal page; each row's success or refusal is reported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.template.response import TemplateResponse

from .services import DealError


class ServiceOnlyAdmin(admin.ModelAdmin):
    """Read-only pages; changes are the admin actions, which call the services."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # audited records are never deleted

    def has_act_permission(self, request) -> bool:
        """Who sees the actions: Django's change permission on the model. The service
        then decides whether this user may make the change on this deal."""
        opts = self.opts
        codename = get_permission_codename("change", opts)
        return request.user.has_perm(f"{opts.app_label}.{codename}")


class ServiceOnlyInline(admin.TabularInline):
    """An inline list of records on their parent's page that cannot be changed there."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def row_label(obj: Any) -> str:
    """A selected row as a person recognises it: with its deal when it belongs to one."""
    label = str(obj)
    deal = getattr(obj, "deal", None)
    if deal is not None and str(deal) not in label:
        label = f"{deal} · {label}"
    return label


def run_each(
    modeladmin: admin.ModelAdmin, request, queryset, call: Callable[[Any], Any], *, done: str
) -> int:
    """Call the service for each selected row; report each row's success or refusal."""
    count = 0
    for obj in queryset:
        label = row_label(obj)
        try:
            call(obj)
        except DealError as exc:
            modeladmin.message_user(request, f"{label} — {exc.message}", messages.ERROR)
        else:
            count += 1
            modeladmin.message_user(request, f"{label} — {done}", messages.SUCCESS)
    return count


def service_action(
    *,
    name: str,
    description: str,
    call: Callable[..., Any],
    done: str,
    form_class: type[forms.Form] | None = None,
):
    """An admin action that runs `call(obj, user, **form data)` for each selected row.

    With `form_class`, the admin first fills in that form (e.g. the reason a contract is
    voided) on an intermediate page; nothing runs until it is valid.
    """

    def action(modeladmin, request, queryset):
        data: dict[str, Any] = {}
        if form_class is not None:
            form = form_class(request.POST if "apply" in request.POST else None)
            if not form.is_valid():
                return TemplateResponse(
                    request,
                    "admin/service_action_form.html",
                    {
                        **modeladmin.admin_site.each_context(request),
                        "title": description,
                        "form": form,
                        "rows": [(obj.pk, row_label(obj)) for obj in queryset],
                        "action": name,
                        "opts": modeladmin.model._meta,
                    },
                )
            data = form.cleaned_data
        run_each(
            modeladmin, request, queryset, lambda obj: call(obj, request.user, **data), done=done
        )
        return None

    action.__name__ = name
    return admin.action(description=description, permissions=["act"])(action)
