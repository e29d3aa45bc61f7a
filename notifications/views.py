"""The bell, the list and the preferences page: thin views over the services."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from deals import services as deal_services

from . import selectors, services
from .models import DEFAULT_DELIVERY, Delivery, Kind, Notification

app_name = "notifications"


#: htmx stops polling on this status (https://htmx.org/attributes/hx-trigger/).
HTMX_STOP_POLLING = 286


@require_GET
def bell(request):
    """The top bar's bell (htmx polls it every 30 seconds). Signed out, the polling stops
    instead of swapping the login page into the top bar."""
    if not request.user.is_authenticated:
        return HttpResponse(status=HTMX_STOP_POLLING)
    return render(
        request, "notifications/_bell.html", {"unread": selectors.unread_count(request.user)}
    )


@require_GET
@login_required
def notification_list(request):
    unread_only = request.GET.get("show") == "unread"
    page = Paginator(
        selectors.notifications_for(request.user, unread_only=unread_only), 50
    ).get_page(request.GET.get("page"))
    return render(
        request,
        "notifications/list.html",
        {
            "page_obj": page,
            "notifications": page.object_list,
            "unread_only": unread_only,
            "unread": selectors.unread_count(request.user),
        },
    )


def _own(request, pk: int) -> Notification:
    return get_object_or_404(Notification, pk=pk, recipient=request.user)


@require_POST
@login_required
def notification_open(request, pk: int):
    """Mark it read and go where it points (the deal)."""
    notification = _own(request, pk)
    services.notification_mark_read(notification=notification, by=request.user)
    link = notification.link
    if link and url_has_allowed_host_and_scheme(link, allowed_hosts={request.get_host()}):
        return redirect(link)
    return redirect("notifications:list")


@require_POST
@login_required
def notification_read(request, pk: int):
    notification = _own(request, pk)
    services.notification_mark_read(notification=notification, by=request.user)
    if request.htmx:
        return render(request, "notifications/_item.html", {"n": notification})
    return redirect("notifications:list")


@require_POST
@login_required
def notifications_read_all(request):
    count = services.notifications_mark_all_read(user=request.user)
    messages.success(
        request,
        ngettext(
            "%(count)s notification marked as read.",
            "%(count)s notifications marked as read.",
            count,
        )
        % {"count": count},
    )
    return redirect("notifications:list")


@require_http_methods(["GET", "POST"])
@login_required
def preferences(request):
    current = services.preferences_for(request.user)
    error = ""
    if request.method == "POST":
        choices = {kind: request.POST.get(kind, current[kind]) for kind in Kind.values}
        try:
            services.preferences_set(user=request.user, choices=choices)
        except services.NotificationError as exc:
            error = exc.message
        else:
            messages.success(request, gettext("Your notification settings are saved."))
            return redirect("notifications:preferences")
    rows = [
        {
            "kind": kind,
            "label": label,
            "current": current[kind],
            "default": DEFAULT_DELIVERY[kind],
        }
        for kind, label in Kind.choices
    ]
    return render(
        request,
        "notifications/preferences.html",
        {"rows": rows, "deliveries": Delivery.choices, "error": error},
        status=400 if error else 200,
    )


@require_POST
def language_set(request):
    """The language switcher: save the signed-in user's language (User.language) and set the
    language cookie (anonymous pages follow it, then Accept-Language); back to `next`."""
    language = request.POST.get("language", "")
    target = request.POST.get("next") or request.META.get("HTTP_REFERER") or "/"
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = "/"
    if language and not translation.check_for_language(language):
        return HttpResponse(_("Unknown language."), status=400)
    if request.user.is_authenticated:
        try:
            deal_services.user_language_set(user=request.user, language=language)
        except deal_services.DealError as exc:
            return HttpResponse(str(exc), status=400)
    response = redirect(target)
    if language:
        translation.activate(language)
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME,
            language,
            max_age=settings.LANGUAGE_COOKIE_AGE,
            samesite="Lax",
            secure=settings.SESSION_COOKIE_SECURE,
        )
    else:
        response.delete_cookie(settings.LANGUAGE_COOKIE_NAME)
    messages.success(request, _("Your language is saved."))
    return response


urlpatterns = [
    path("", notification_list, name="list"),
    path("bell/", bell, name="bell"),
    path("read-all/", notifications_read_all, name="read_all"),
    path("preferences/", preferences, name="preferences"),
    path("language/", language_set, name="language"),
    path("<int:pk>/open/", notification_open, name="open"),
    path("<int:pk>/read/", notification_read, name="read"),
]
