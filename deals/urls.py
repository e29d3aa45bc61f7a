"""URLs of the deals app: each views module contributes its own patterns."""

from .views import audit, bulk, deal, imports, quotas, workspace

app_name = "deals"

urlpatterns = [
    *workspace.urlpatterns,
    *deal.urlpatterns,
    *imports.urlpatterns,
    *audit.urlpatterns,
    *quotas.urlpatterns,
    *bulk.urlpatterns,
]
