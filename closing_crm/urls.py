"""Top-level URLs. Each app owns its own urls module."""

from django.contrib import admin
from django.http import HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog

from contracts.views_public import verify_public
from deals.views.workspace import home

admin.site.site_header = "Closing CRM admin"
admin.site.site_title = "Closing CRM"

# Django's error pages; under /api/ they answer with the API's JSON error body instead
# (a malformed id such as /api/v1/deals/abc/ matches no URL: still JSON).
handler400 = "api.exceptions.bad_request"
handler403 = "api.exceptions.permission_denied"
handler404 = "api.exceptions.page_not_found"
handler500 = "api.exceptions.server_error"

urlpatterns = [
    # The JavaScript half of the catalogue (static/js/app.js's few messages).
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    # Browsers ask for /favicon.ico on pages without an icon link (admin, API docs).
    path("favicon.ico", lambda request: HttpResponsePermanentRedirect(static("favicon.svg"))),
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", home, name="home"),
    path("", include("deals.urls")),
    path("", include("pipeline.urls")),
    path("followups/", include("followups.urls")),
    path("notifications/", include("notifications.urls")),
    path("inbound/", include("followups.urls_inbound")),
    path("contracts/", include("contracts.urls")),
    path("sign/", include("contracts.urls_public")),
    path("rooms/", include("rooms.urls")),
    path("room/", include("rooms.urls_public")),
    path("verify/", verify_public, name="verify_public"),
]
