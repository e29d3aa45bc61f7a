"""API URLs: /api/v1/… endpoints, the OpenAPI schema and its docs page (served locally)."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from . import rooms, views

app_name = "api"

router = SimpleRouter()
router.register("accounts", views.AccountViewSet, basename="account")
router.register("contacts", views.ContactViewSet, basename="contact")
router.register("deals", views.DealViewSet, basename="deal")

deal_urls = [
    path("timeline/", views.DealTimelineView.as_view(), name="deal-timeline"),
    path("signals/", views.SignalsView.as_view(), name="deal-signals"),
    path("asks/", views.AsksView.as_view(), name="deal-asks"),
    path("objections/", views.ObjectionsView.as_view(), name="deal-objections"),
    path(
        "objections/<int:objection_id>/resolve/",
        views.ObjectionResolveView.as_view(),
        name="deal-objection-resolve",
    ),
    path("concessions/", views.ConcessionsView.as_view(), name="deal-concessions"),
    path(
        "concessions/<int:concession_id>/decide/",
        views.ConcessionDecideView.as_view(),
        name="deal-concession-decide",
    ),
    path("stakeholders/", views.StakeholdersView.as_view(), name="deal-stakeholders"),
    path(
        "stakeholders/<int:stakeholder_id>/",
        views.StakeholderRemoveView.as_view(),
        name="deal-stakeholder-remove",
    ),
    path("contracts/", views.ContractsView.as_view(), name="deal-contracts"),
    path(
        "contracts/<int:version_id>/",
        views.ContractDetailView.as_view(),
        name="deal-contract",
    ),
    path(
        "contracts/<int:version_id>/send/",
        views.ContractSendView.as_view(),
        name="deal-contract-send",
    ),
    path(
        "contracts/<int:version_id>/void/",
        views.ContractVoidView.as_view(),
        name="deal-contract-void",
    ),
    path(
        "contracts/<int:version_id>/accept-late-signature/",
        views.ContractLateSignatureAcceptView.as_view(),
        name="deal-contract-accept-late-signature",
    ),
    path("readiness/", views.ReadinessView.as_view(), name="deal-readiness"),
    path("technique/", views.TechniqueView.as_view(), name="deal-technique"),
    path("notes/", views.NoteView.as_view(), name="deal-notes"),
    path("follow-ons/", views.FollowOnView.as_view(), name="deal-follow-ons"),
    path("onboarding/", views.OnboardingView.as_view(), name="deal-onboarding"),
    path(
        "onboarding/<int:step_id>/done/",
        views.OnboardingDoneView.as_view(),
        name="deal-onboarding-done",
    ),
    path("plan/", rooms.PlanView.as_view(), name="deal-plan"),
    path("plan/from-template/", rooms.PlanFromTemplateView.as_view(), name="deal-plan-template"),
    path("plan/<int:step_id>/", rooms.PlanStepView.as_view(), name="deal-plan-step"),
    path("room-links/", rooms.RoomLinksView.as_view(), name="deal-room-links"),
    path(
        "room-links/<int:link_id>/revoke/",
        rooms.RoomLinkRevokeView.as_view(),
        name="deal-room-link-revoke",
    ),
    path("transitions/", views.TransitionsView.as_view(), name="deal-transitions"),
    path(
        "transitions/<slug:name>/",
        views.TransitionView.as_view(),
        name="deal-transition",
    ),
]

urlpatterns = [
    path("v1/bulk-actions/", views.BulkActionsView.as_view(), name="bulk-actions"),
    path("v1/bulk-actions/<int:id>/", views.BulkActionDetailView.as_view(), name="bulk-action"),
    path("v1/", include(router.urls)),
    path("v1/deals/<int:deal_id>/", include(deal_urls)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
]
