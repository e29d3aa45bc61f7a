"""REST API v1: thin views over deals.selectors (reads) and deals.services (writes).

A deal the user may not see is a 404, exactly as on the pages; a deal they may see but not
change gets the services' 403; a move the state machine refuses is a 409 with the reason.
"""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from contracts import services as contract_services
from contracts.models import ContractVersion
from deals import services
from deals.models import Concession, Deal, Objection, OnboardingStep, Stakeholder
from deals.selectors import (
    accounts_visible,
    contacts_visible,
    deal_get_visible,
    deals_filtered,
)

from . import serializers as s
from .pagination import NewestFirstPagination, OldestFirstPagination, TimelinePagination
from .validation import validate_body, validate_query

# Error responses (the one Error body, for every status an operation can answer) are
# added to each operation by api.schema.ApiAutoSchema; these only name them in views.
DEAL_NOT_FOUND = {404: s.ErrorSerializer}
WRITE_ERRORS = {
    400: s.ErrorSerializer,
    403: s.ErrorSerializer,
    404: s.ErrorSerializer,
    409: s.ErrorSerializer,
}

#: The request body through an input serializer, typed exactly as the schema says.
_valid = validate_body


# --- accounts and contacts -----------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="Accounts you can see"),
    retrieve=extend_schema(
        summary="One account", responses={200: s.AccountSerializer, **DEAL_NOT_FOUND}
    ),
    create=extend_schema(
        summary="Create an account in your team",
        request=s.AccountCreateSerializer,
        responses={201: s.AccountSerializer, **WRITE_ERRORS},
    ),
)
class AccountViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = s.AccountSerializer
    pagination_class = NewestFirstPagination
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        return accounts_visible(self.request.user).select_related("owner")

    def create(self, request, *args, **kwargs):
        data = _valid(s.AccountCreateSerializer, request)
        user = request.user
        if user.team_id is None:
            raise services.NotPermitted("You are not in a team yet; an admin must add you to one.")
        account = services.account_create(by=user, team=user.team, **data)
        return Response(s.AccountSerializer(account).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Archive the account (nothing is deleted)",
        request=None,
        responses={200: s.AccountSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def archive(self, request, pk=None):
        account = services.account_archive(account=self.get_object(), by=request.user)
        return Response(s.AccountSerializer(account).data)


@extend_schema_view(
    list=extend_schema(summary="Contacts of the accounts you can see"),
    retrieve=extend_schema(
        summary="One contact", responses={200: s.ContactSerializer, **DEAL_NOT_FOUND}
    ),
    create=extend_schema(
        summary="Add a contact to an account",
        request=s.ContactCreateSerializer,
        responses={201: s.ContactSerializer, **WRITE_ERRORS},
    ),
)
class ContactViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = s.ContactSerializer
    pagination_class = NewestFirstPagination
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        return contacts_visible(self.request.user)

    def create(self, request, *args, **kwargs):
        data = _valid(s.ContactCreateSerializer, request)
        contact = services.contact_create(by=request.user, **data)
        return Response(s.ContactSerializer(contact).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Archive the contact (nothing is deleted)",
        request=None,
        responses={200: s.ContactSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def archive(self, request, pk=None):
        contact = services.contact_archive(contact=self.get_object(), by=request.user)
        return Response(s.ContactSerializer(contact).data)


# --- deals ---------------------------------------------------------------------------

#: The deal list's query parameters, documented from the serializer that checks them.
DEAL_FILTERS = [s.DealFilterSerializer]


@extend_schema_view(
    list=extend_schema(
        summary="Deals you can see, filtered, newest first", parameters=DEAL_FILTERS
    ),
    retrieve=extend_schema(
        summary="One deal, with its next best action",
        responses={200: s.DealDetailSerializer, **DEAL_NOT_FOUND},
    ),
    create=extend_schema(
        summary="Open a deal (it starts at intent spotted)",
        request=s.DealCreateSerializer,
        responses={201: s.DealSerializer, **WRITE_ERRORS},
    ),
    partial_update=extend_schema(
        summary="Edit the deal's details (never its state: use a transition)",
        request=s.DealEditSerializer,
        responses={200: s.DealSerializer, **WRITE_ERRORS},
    ),
)
class DealViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = s.DealSerializer
    pagination_class = NewestFirstPagination
    lookup_value_regex = "[0-9]+"
    # No PUT (every field at once) and no DELETE: deals are archived, never deleted.
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_serializer_class(self):
        return s.DealDetailSerializer if self.action == "retrieve" else s.DealSerializer

    def get_queryset(self):
        if self.action == "list":
            params = validate_query(s.DealFilterSerializer, self.request)
            deals = deals_filtered(self.request.user, params)
            if "account" in params:
                deals = deals.filter(account_id=params["account"])
            return deals.select_related("account", "owner")
        return deals_filtered(self.request.user, {}).select_related("account", "owner")

    def create(self, request, *args, **kwargs):
        data = _valid(s.DealCreateSerializer, request)
        user = request.user
        owner = data.pop("owner", None) or user
        if owner != user and not (
            user.is_superuser or (user.is_manager and user.team_id == owner.team_id)
        ):
            raise services.NotPermitted("Only a manager can open deals for someone else.")
        deal = services.deal_create(by=user, owner=owner, **data)
        return Response(s.DealSerializer(deal).data, status=status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        if not kwargs.get("partial"):
            raise Http404
        deal = self.get_object()
        data = _valid(s.DealEditSerializer, request, partial=True)
        deal = services.deal_update(deal=deal, by=request.user, **data)
        return Response(s.DealSerializer(deal).data)

    @extend_schema(
        summary="Archive the deal (nothing is deleted; the history stays)",
        request=s.ArchiveRequestSerializer,
        responses={200: s.DealSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def archive(self, request, pk=None):
        data = _valid(s.ArchiveRequestSerializer, request)
        deal = services.deal_archive(deal=self.get_object(), by=request.user, **data)
        return Response(s.DealSerializer(deal).data)

    @extend_schema(
        summary="Hand the deal to another member of its team (team manager or admin)",
        description="Open follow-ups and the previous owner's open tasks move with the deal; "
        "the new owner is notified; the reason goes into the deal's timeline.",
        request=s.ReassignSerializer,
        responses={200: s.DealSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def reassign(self, request, pk=None):
        data = _valid(s.ReassignSerializer, request)
        deal = self.get_object()
        expected = data.pop("expected_owner", None)
        if expected is not None:
            deal.owner_id = expected  # the deal as the caller saw it: a stale view is a 409
        deal = services.deal_reassign(deal=deal, by=request.user, **data)
        return Response(s.DealSerializer(deal).data)


# --- what happens on a deal --------------------------------------------------------------


class DealScopedMixin:
    """Views under /deals/{deal_id}/: the deal must be visible to the user (404 otherwise)."""

    pagination_class = NewestFirstPagination

    def get_deal(self) -> Deal:
        if not hasattr(self, "_deal"):
            self._deal = deal_get_visible(self.request.user, self.kwargs["deal_id"])
        return self._deal


@extend_schema(summary="The deal's timeline (audit log), newest first")
class DealTimelineView(DealScopedMixin, generics.ListAPIView):
    serializer_class = s.DealEventSerializer
    pagination_class = TimelinePagination

    def get_queryset(self):
        return self.get_deal().events.select_related("actor")


def _list_create_view(name, read, write, service, related, summary):
    """A list + create endpoint under a deal: GET reads `related`, POST calls `service`."""

    @extend_schema_view(
        get=extend_schema(
            summary=f"The deal's {summary}", responses={200: read(many=True), **DEAL_NOT_FOUND}
        ),
        post=extend_schema(
            summary=f"Record {summary[:-1] if summary.endswith('s') else summary} on the deal",
            request=write,
            responses={201: read, **WRITE_ERRORS},
        ),
    )
    class View(DealScopedMixin, generics.ListCreateAPIView):
        serializer_class = read

        def get_queryset(self):
            return getattr(self.get_deal(), related).all()

        def create(self, request, *args, **kwargs):
            data = _valid(write, request)
            obj = service(deal=self.get_deal(), by=request.user, **data)
            return Response(read(obj).data, status=status.HTTP_201_CREATED)

    View.__name__ = View.__qualname__ = name
    return View


def _ask_record(*, deal, by, objection=None, **data):
    return services.deal_ask_record(deal=deal, by=by, objection=dict(objection or {}), **data)


SignalsView = _list_create_view(
    "SignalsView",
    s.BuyingSignalSerializer,
    s.BuyingSignalCreateSerializer,
    services.buying_signal_record,
    "signals",
    "buying signals",
)
AsksView = _list_create_view(
    "AsksView", s.AskSerializer, s.AskCreateSerializer, _ask_record, "asks", "asks"
)
ObjectionsView = _list_create_view(
    "ObjectionsView",
    s.ObjectionSerializer,
    s.ObjectionCreateSerializer,
    services.objection_raise,
    "objections",
    "objections",
)
ConcessionsView = _list_create_view(
    "ConcessionsView",
    s.ConcessionSerializer,
    s.ConcessionCreateSerializer,
    services.concession_propose,
    "concessions",
    "concessions",
)
StakeholdersView = _list_create_view(
    "StakeholdersView",
    s.StakeholderSerializer,
    s.StakeholderCreateSerializer,
    services.stakeholder_add,
    "stakeholders",
    "stakeholders",
)


@extend_schema(
    summary="Resolve an open objection",
    request=s.ObjectionResolveSerializer,
    responses={200: s.ObjectionSerializer, **WRITE_ERRORS},
)
class ObjectionResolveView(DealScopedMixin, generics.GenericAPIView):
    serializer_class = s.ObjectionResolveSerializer

    def post(self, request, deal_id: int, objection_id: int):
        objection = get_object_or_404(Objection, deal=self.get_deal(), pk=objection_id)
        data = _valid(s.ObjectionResolveSerializer, request)
        objection = services.objection_resolve(objection=objection, by=request.user, **data)
        return Response(s.ObjectionSerializer(objection).data)


@extend_schema(
    summary="Accept or reject a proposed concession",
    request=s.ConcessionDecideSerializer,
    responses={200: s.ConcessionSerializer, **WRITE_ERRORS},
)
class ConcessionDecideView(DealScopedMixin, generics.GenericAPIView):
    serializer_class = s.ConcessionDecideSerializer

    def post(self, request, deal_id: int, concession_id: int):
        concession = get_object_or_404(Concession, deal=self.get_deal(), pk=concession_id)
        data = _valid(s.ConcessionDecideSerializer, request)
        concession = services.concession_decide(concession=concession, by=request.user, **data)
        return Response(s.ConcessionSerializer(concession).data)


@extend_schema(
    summary="Take a contact out of the buying group (the timeline keeps it)",
    request=None,
    responses={204: None, **WRITE_ERRORS},
)
class StakeholderRemoveView(DealScopedMixin, generics.GenericAPIView):
    serializer_class = s.StakeholderSerializer

    def delete(self, request, deal_id: int, stakeholder_id: int):
        stakeholder = get_object_or_404(Stakeholder, deal=self.get_deal(), pk=stakeholder_id)
        services.stakeholder_remove(stakeholder=stakeholder, by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    get=extend_schema(summary="The deal's contract versions and their signature status"),
    post=extend_schema(
        summary="Generate a new contract version (a draft) from the deal's terms",
        request=s.ContractGenerateSerializer,
        responses={201: s.ContractVersionSerializer, **WRITE_ERRORS},
    ),
)
class ContractsView(DealScopedMixin, generics.ListCreateAPIView):
    serializer_class = s.ContractVersionSerializer

    def get_queryset(self):
        return ContractVersion.objects.filter(deal=self.get_deal())

    def create(self, request, *args, **kwargs):
        data = _valid(s.ContractGenerateSerializer, request)
        version = contract_services.contract_generate(deal=self.get_deal(), by=request.user, **data)
        return Response(s.ContractVersionSerializer(version).data, status=status.HTTP_201_CREATED)


class ContractActionView(DealScopedMixin, generics.GenericAPIView):
    serializer_class = s.ContractVersionSerializer

    def get_version(self, version_id: int) -> ContractVersion:
        return get_object_or_404(ContractVersion, deal=self.get_deal(), pk=version_id)


@extend_schema(
    summary="One contract version",
    responses={200: s.ContractVersionSerializer, **DEAL_NOT_FOUND},
)
class ContractDetailView(ContractActionView):
    def get(self, request, deal_id: int, version_id: int):
        return Response(s.ContractVersionSerializer(self.get_version(version_id)).data)


@extend_schema(
    summary="Send a draft for signature (the deal moves to agreement sent)",
    request=s.ContractSendSerializer,
    responses={200: s.ContractVersionSerializer, **WRITE_ERRORS},
)
class ContractSendView(ContractActionView):
    def post(self, request, deal_id: int, version_id: int):
        version = self.get_version(version_id)
        data = _valid(s.ContractSendSerializer, request)
        version = contract_services.contract_send(version=version, by=request.user, **data)
        return Response(s.ContractVersionSerializer(version).data)


@extend_schema(
    summary="Void a contract that is out for signature",
    request=s.ContractVoidSerializer,
    responses={200: s.ContractVersionSerializer, **WRITE_ERRORS},
)
class ContractVoidView(ContractActionView):
    def post(self, request, deal_id: int, version_id: int):
        version = self.get_version(version_id)
        data = _valid(s.ContractVoidSerializer, request)
        version = contract_services.contract_void(version=version, by=request.user, **data)
        return Response(s.ContractVersionSerializer(version).data)


@extend_schema(
    summary="Turn a signature that came after the close into the win (managers, audited)",
    request=s.LateSignatureAcceptSerializer,
    responses={200: s.DealSerializer, **WRITE_ERRORS},
)
class ContractLateSignatureAcceptView(ContractActionView):
    def post(self, request, deal_id: int, version_id: int):
        version = self.get_version(version_id)
        data = _valid(s.LateSignatureAcceptSerializer, request)
        deal = contract_services.contract_late_signature_accept(
            version=version, by=request.user, **data
        )
        return Response(s.DealSerializer(deal).data)


# --- the rest of the deal page: readiness, technique, notes, follow-ons, onboarding ------------


@extend_schema(
    summary="Tick or untick readiness checklist items",
    request=s.ReadinessSerializer,
    responses={200: s.DealSerializer, **WRITE_ERRORS},
)
class ReadinessView(DealScopedMixin, generics.GenericAPIView):
    serializer_class = s.ReadinessSerializer

    def post(self, request, deal_id: int):
        items = _valid(s.ReadinessSerializer, request)
        deal = services.deal_readiness_set(deal=self.get_deal(), by=request.user, items=items)
        return Response(s.DealSerializer(deal).data)


@extend_schema(
    summary="Choose the closing technique",
    request=s.TechniqueSerializer,
    responses={200: s.DealSerializer, **WRITE_ERRORS},
)
class TechniqueView(DealScopedMixin, generics.GenericAPIView):
    serializer_class = s.TechniqueSerializer

    def post(self, request, deal_id: int):
        data = _valid(s.TechniqueSerializer, request)
        deal = services.deal_technique_choose(deal=self.get_deal(), by=request.user, **data)
        return Response(s.DealSerializer(deal).data)


@extend_schema(
    summary="Add a note to the deal's timeline",
    request=s.NoteSerializer,
    responses={201: s.DealEventSerializer, **WRITE_ERRORS},
)
class NoteView(DealScopedMixin, generics.GenericAPIView):
    serializer_class = s.NoteSerializer

    def post(self, request, deal_id: int):
        data = _valid(s.NoteSerializer, request)
        event = services.deal_note_add(deal=self.get_deal(), by=request.user, **data)
        return Response(s.DealEventSerializer(event).data, status=status.HTTP_201_CREATED)


@extend_schema(
    summary="Open a follow-on deal from a need found during this won sale",
    request=s.FollowOnSerializer,
    responses={201: s.DealSerializer, **WRITE_ERRORS},
)
class FollowOnView(DealScopedMixin, generics.GenericAPIView):
    serializer_class = s.FollowOnSerializer

    def post(self, request, deal_id: int):
        data = _valid(s.FollowOnSerializer, request)
        deal = services.deal_follow_on_create(parent=self.get_deal(), by=request.user, **data)
        return Response(s.DealSerializer(deal).data, status=status.HTTP_201_CREATED)


@extend_schema(summary="The won deal's onboarding checklist (customer handoff)")
class OnboardingView(DealScopedMixin, generics.ListAPIView):
    serializer_class = s.OnboardingStepSerializer
    pagination_class = OldestFirstPagination

    def get_queryset(self):
        return self.get_deal().onboarding_steps.all()


@extend_schema(
    summary="Mark an onboarding step done",
    request=None,
    responses={200: s.OnboardingStepSerializer, **WRITE_ERRORS},
)
class OnboardingDoneView(DealScopedMixin, generics.GenericAPIView):
    serializer_class = s.OnboardingStepSerializer

    def post(self, request, deal_id: int, step_id: int):
        step = get_object_or_404(OnboardingStep, deal=self.get_deal(), pk=step_id)
        step = services.onboarding_step_complete(step=step, by=request.user)
        return Response(s.OnboardingStepSerializer(step).data)


# --- transitions -------------------------------------------------------------------------

TRANSITION_PARAM = OpenApiParameter(
    "name", OpenApiTypes.STR, OpenApiParameter.PATH, enum=services.TRANSITION_NAMES
)


@extend_schema(
    summary="Moves you may make from the deal's state, with what blocks each",
    responses={200: s.TransitionInfoSerializer(many=True), **DEAL_NOT_FOUND},
)
class TransitionsView(DealScopedMixin, generics.GenericAPIView):
    serializer_class = s.TransitionInfoSerializer
    pagination_class = None

    def get(self, request, deal_id: int):
        infos = services.deal_transitions_for(self.get_deal(), request.user)
        rows = [
            {
                "name": i.name,
                "label": i.label,
                "target": i.target,
                "needs_reason": i.needs_reason,
                "allowed": i.allowed,
                "blockers": list(i.blockers),
            }
            for i in infos
        ]
        return Response(s.TransitionInfoSerializer(rows, many=True).data)


@extend_schema(
    summary="Fire a transition (the same guards, permissions and audit as the pages)",
    parameters=[TRANSITION_PARAM],
    request=s.TransitionRequestSerializer,
    responses={200: s.DealSerializer, **WRITE_ERRORS},
)
class TransitionView(DealScopedMixin, generics.GenericAPIView):
    serializer_class = s.TransitionRequestSerializer

    def post(self, request, deal_id: int, name: str):
        if name not in services.TRANSITION_NAMES:
            raise Http404
        deal = self.get_deal()
        data = _valid(s.TransitionRequestSerializer, request)
        deal = services.deal_transition(deal=deal, transition=name, by=request.user, **data)
        return Response(s.DealSerializer(deal).data)


# --- bulk actions ----------------------------------------------------------------------------


def _bulk_body(job) -> dict:
    from deals.selectors import bulk_job_counts

    counts = bulk_job_counts(job)
    job.done, job.refused, job.pending = counts["done"], counts["refused"], counts["pending"]
    job.results = list(job.items.order_by("position"))
    return s.BulkJobSerializer(job).data


@extend_schema(
    summary="Act on many deals at once: reassign, archive or move each one",
    description="Each deal goes through the same service as on its own (permissions, guards, "
    "audit event) in its own transaction, and gets its result: done, or refused and why. "
    "Inputs a move needs (a loss reason, a written reason) are checked once, before any deal "
    "is touched (409). Up to 50 deals are done at once (201); more are queued for a worker "
    "(202): poll `GET /api/v1/bulk-actions/{id}/`.",
    request=s.BulkActionRequestSerializer,
    responses={201: s.BulkJobSerializer, 202: s.BulkJobSerializer, **WRITE_ERRORS},
)
class BulkActionsView(generics.GenericAPIView):
    serializer_class = s.BulkActionRequestSerializer

    def post(self, request):
        data = _valid(s.BulkActionRequestSerializer, request)
        job = services.bulk_job_create(
            by=request.user,
            action=data["action"],
            params={
                "transition": data.get("transition", ""),
                "loss_reason": data.get("loss_reason", ""),
                "reason": data["reason"],
                "new_owner": data.get("new_owner"),
                "move_account": data["move_account"],
            },
            deal_ids=data["deal_ids"],
        )
        job = services.bulk_job_start(job=job, by=request.user)
        done = job.status == job.Status.DONE
        code = status.HTTP_201_CREATED if done else status.HTTP_202_ACCEPTED
        return Response(_bulk_body(job), status=code)


@extend_schema(
    summary="A bulk action's progress and each deal's result (its starter only)",
    responses={200: s.BulkJobSerializer, 404: s.ErrorSerializer},
)
class BulkActionDetailView(generics.GenericAPIView):
    serializer_class = s.BulkJobSerializer

    def get(self, request, id: int):
        from deals.selectors import bulk_job_get_visible

        return Response(_bulk_body(bulk_job_get_visible(request.user, id)))
