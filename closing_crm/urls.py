"""Top-level URLs. Each app owns its own urls module."""

from django.contrib import admin
from django.urls import include, path

from deals.views.workspace import home

admin.site.site_header = "Closing CRM admin"
admin.site.site_title = "Closing CRM"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", home, name="home"),
    path("", include("deals.urls")),
    path("followups/", include("followups.urls")),
    path("notifications/", include("notifications.urls")),
    path("inbound/", include("followups.urls_inbound")),
    path("contracts/", include("contracts.urls")),
    path("sign/", include("contracts.urls_public")),
]
