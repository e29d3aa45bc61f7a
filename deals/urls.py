"""URLs of the deals app: each views module contributes its own patterns."""

from .views import audit, dashboards, deal, imports, workspace

app_name = "deals"

urlpatterns = [
    *workspace.urlpatterns,
    *deal.urlpatterns,
    *dashboards.urlpatterns,
    *imports.urlpatterns,
    *audit.urlpatterns,
]
