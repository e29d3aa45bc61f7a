"""API v1 for close plans and buyer room links (rooms app), through its services.

GET/POST   /api/v1/deals/{id}/plan/                   the steps; add a step
POST       /api/v1/deals/{id}/plan/from-template/     build the plan from the team's template
PATCH      /api/v1/deals/{id}/plan/{step_id}/         change a step (status, date, title, note);
                                                      expected_version: 409 when it changed since
GET/POST   /api/v1/deals/{id}/room-links/             links per buying-group contact; issue one
POST       /api/v1/deals/{id}/room-links/{link_id}/revoke/
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from deals.models import User, can_work_deal, single_line
from rooms import services as room_services
from rooms.models import Phase, PlanStep, RoomLink, Side

from . import serializers as s
from .pagination import OldestFirstPagination
from .validation import validate_body
from .views import DEAL_NOT_FOUND, WRITE_ERRORS, DealScopedMixin


class PlanStepSerializer(serializers.ModelSerializer):
    slipped = serializers.SerializerMethodField()
    version = serializers.CharField(
        read_only=True,
        help_text="Changes whenever the step does; send it back as expected_version.",
    )

    class Meta:
        model = PlanStep
        fields = [
            "id",
            "position",
            "title",
            "side",
            "phase",
            "owner_user",
            "owner_contact",
            "due_date",
            "status",
            "note",
            "done_at",
            "done_by_user",
            "done_by_contact",
            "slipped",
            "version",
        ]
        read_only_fields = fields

    @extend_schema_field(bool)
    def get_slipped(self, obj) -> bool:
        return obj.is_slipped(timezone.localdate())


class PlanStepCreateSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200, validators=[single_line])
    side = serializers.ChoiceField(choices=Side.choices, required=False, default=Side.SELLER)
    phase = serializers.ChoiceField(choices=Phase.choices, required=False, default=Phase.CLOSE)
    owner_user = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.all(),
        required=False,
        allow_null=True,
        help_text="A member of the deal's team (seller steps).",
    )
    owner_contact = s.VisibleContactField(
        required=False, allow_null=True, help_text="A buying-group contact (buyer steps)."
    )
    due_date = serializers.DateField(required=False, allow_null=True)
    note = serializers.CharField(max_length=300, required=False, allow_blank=True)


class PlanStepUpdateSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200, required=False, validators=[single_line])
    status = serializers.ChoiceField(choices=PlanStep.Status.choices, required=False)
    due_date = serializers.DateField(required=False, allow_null=True)
    note = serializers.CharField(max_length=300, required=False, allow_blank=True)
    expected_status = serializers.ChoiceField(
        choices=PlanStep.Status.choices,
        required=False,
        help_text="The status you saw; a different current status is a 409 conflict.",
    )
    expected_version = serializers.CharField(
        max_length=64,
        required=False,
        help_text="The step's version you saw; a step changed since is a 409 conflict.",
    )


class RoomLinkSerializer(serializers.ModelSerializer):
    contact_name = serializers.CharField(source="contact.full_name", read_only=True)
    url = serializers.SerializerMethodField()

    class Meta:
        model = RoomLink
        fields = [
            "id",
            "contact",
            "contact_name",
            "created_at",
            "expires_at",
            "revoked_at",
            "visits",
            "first_visit_at",
            "last_visit_at",
            "url",
        ]
        read_only_fields = fields

    @extend_schema_field(str)
    def get_url(self, obj) -> str:
        """The room's address while the link works, for who may work the deal; else ""."""
        request = self.context.get("request")
        if request is None or not obj.is_live or not can_work_deal(obj.deal, request.user):
            return ""
        return room_services.room_url(obj)


class RoomLinkCreateSerializer(serializers.Serializer):
    contact = s.VisibleContactField(help_text="A contact in the deal's buying group.")
    days = serializers.IntegerField(
        min_value=1, max_value=365, required=False, help_text="How long the link works."
    )


@extend_schema_view(
    get=extend_schema(
        summary="The deal's close plan (its steps, in order)",
        responses={200: PlanStepSerializer(many=True), **DEAL_NOT_FOUND},
    ),
    post=extend_schema(
        summary="Add a step to the close plan",
        request=PlanStepCreateSerializer,
        responses={201: PlanStepSerializer, **WRITE_ERRORS},
    ),
)
class PlanView(DealScopedMixin, generics.ListCreateAPIView):
    serializer_class = PlanStepSerializer
    pagination_class = OldestFirstPagination

    def get_queryset(self):
        return PlanStep.objects.filter(deal=self.get_deal())

    def create(self, request, *args, **kwargs):
        data = validate_body(PlanStepCreateSerializer, request)
        step = room_services.plan_step_add(deal=self.get_deal(), by=request.user, **data)
        return Response(PlanStepSerializer(step).data, status=status.HTTP_201_CREATED)


@extend_schema(
    summary="Build the close plan from the team's template (once per deal)",
    request=None,
    responses={201: PlanStepSerializer(many=True), **WRITE_ERRORS},
)
class PlanFromTemplateView(DealScopedMixin, generics.GenericAPIView):
    serializer_class = PlanStepSerializer
    pagination_class = None  # answers the whole new plan, not a page of it

    def post(self, request, deal_id: int):
        steps = room_services.plan_create_from_template(deal=self.get_deal(), by=request.user)
        return Response(PlanStepSerializer(steps, many=True).data, status=status.HTTP_201_CREATED)


@extend_schema(
    summary="Change a plan step",
    request=PlanStepUpdateSerializer,
    responses={200: PlanStepSerializer, **WRITE_ERRORS},
)
class PlanStepView(DealScopedMixin, generics.GenericAPIView):
    serializer_class = PlanStepSerializer

    def patch(self, request, deal_id: int, step_id: int):
        step = get_object_or_404(PlanStep, deal=self.get_deal(), pk=step_id)
        data = dict(validate_body(PlanStepUpdateSerializer, request))
        expected = data.pop("expected_status", None)
        version = data.pop("expected_version", None)
        step = room_services.plan_step_update(
            step=step, by=request.user, expected_status=expected, expected_version=version, **data
        )
        return Response(PlanStepSerializer(step).data)


@extend_schema_view(
    get=extend_schema(
        summary="The deal's buyer room links",
        responses={200: RoomLinkSerializer(many=True), **DEAL_NOT_FOUND},
    ),
    post=extend_schema(
        summary="Share the room with a buying-group contact (a new link)",
        request=RoomLinkCreateSerializer,
        responses={201: RoomLinkSerializer, **WRITE_ERRORS},
    ),
)
class RoomLinksView(DealScopedMixin, generics.ListCreateAPIView):
    serializer_class = RoomLinkSerializer

    def get_queryset(self):
        return RoomLink.objects.filter(deal=self.get_deal()).select_related("contact", "deal")

    def create(self, request, *args, **kwargs):
        data = validate_body(RoomLinkCreateSerializer, request)
        link = room_services.room_link_issue(deal=self.get_deal(), by=request.user, **data)
        return Response(
            RoomLinkSerializer(link, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )


@extend_schema(
    summary="Turn a room link off (at once)",
    request=None,
    responses={200: RoomLinkSerializer, **WRITE_ERRORS},
)
class RoomLinkRevokeView(DealScopedMixin, generics.GenericAPIView):
    serializer_class = RoomLinkSerializer

    def post(self, request, deal_id: int, link_id: int):
        link = get_object_or_404(RoomLink, deal=self.get_deal(), pk=link_id)
        link = room_services.room_link_revoke(link=link, by=request.user)
        return Response(RoomLinkSerializer(link, context={"request": request}).data)
