"""URLs of the pipeline app (paths unchanged since the move out of deals: /dashboard/…)."""

from django.urls import path

from . import views

app_name = "pipeline"

urlpatterns = [
    path("dashboard/", views.dashboard, name="dashboard"),
    path("dashboard/coaching/", views.coaching, name="coaching"),
    path("dashboard/deals/", views.drilldown, name="dashboard_deals"),
    path("dashboard/csv/<slug:figure>.csv", views.figure_csv, name="dashboard_csv"),
]
