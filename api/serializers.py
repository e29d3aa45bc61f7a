"""API representations: read serializers mirror the models, input serializers feed services.

Input serializers only validate shapes and look up related objects among those the user may
see; every write is then done by a `deals.services` function, so the rules of the pages hold.
"""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from contracts.models import ContractTemplate, ContractVersion
from deals.models import (
    READINESS_DERIVED,
    READINESS_ITEMS,
    Account,
    Ask,
    BillingFrequency,
    BuyingSignal,
    Channel,
    ClosingTechnique,
    Concession,
    Contact,
    Deal,
    DealEvent,
    DealState,
    LossReason,
    Objection,
    OnboardingStep,
    Stakeholder,
    User,
    single_line,
)
from deals.selectors import accounts_visible, contacts_visible
from deals.selectors.deal_page import deal_next_best_action
from deals.services import DEAL_EDITABLE_FIELDS

MAX_TERM_MONTHS = 600
MAX_AMOUNT = Decimal("999999999999.99")


class UserBriefSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="__str__", read_only=True)

    class Meta:
        model = User
        fields = ["id", "username", "name"]


# --- accounts and contacts -----------------------------------------------------


class AccountSerializer(serializers.ModelSerializer):
    owner = UserBriefSerializer(read_only=True)
    team = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = Account
        fields = [
            "id",
            "name",
            "website",
            "industry",
            "status",
            "team",
            "owner",
            "account_manager",
            "became_customer_at",
            "created_at",
            "updated_at",
            "archived_at",
        ]
        read_only_fields = fields


class AccountCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    website = serializers.CharField(max_length=200, required=False, allow_blank=True)
    industry = serializers.CharField(max_length=100, required=False, allow_blank=True)


class ContactSerializer(serializers.ModelSerializer):
    class Meta:
        model = Contact
        fields = [
            "id",
            "account",
            "first_name",
            "last_name",
            "email",
            "phone",
            "job_title",
            "created_at",
            "archived_at",
        ]
        read_only_fields = fields


@extend_schema_field(OpenApiTypes.INT)
class VisibleAccountField(serializers.PrimaryKeyRelatedField):
    """An account id among the accounts the requesting user may see."""

    def get_queryset(self):
        return accounts_visible(self.context["request"].user)


@extend_schema_field(OpenApiTypes.INT)
class VisibleContactField(serializers.PrimaryKeyRelatedField):
    def get_queryset(self):
        return contacts_visible(self.context["request"].user)


class ContactCreateSerializer(serializers.Serializer):
    account = VisibleAccountField()
    first_name = serializers.CharField(max_length=100, allow_blank=True, validators=[single_line])
    last_name = serializers.CharField(max_length=100, allow_blank=True, validators=[single_line])
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True)
    phone = serializers.CharField(
        max_length=50, required=False, allow_blank=True, validators=[single_line]
    )
    job_title = serializers.CharField(
        max_length=120, required=False, allow_blank=True, validators=[single_line]
    )


# --- deals ---------------------------------------------------------------------


class DealSerializer(serializers.ModelSerializer):
    account = serializers.PrimaryKeyRelatedField(read_only=True)
    account_name = serializers.CharField(source="account.name", read_only=True)
    owner = UserBriefSerializer(read_only=True)
    team = serializers.PrimaryKeyRelatedField(read_only=True)
    state_label = serializers.CharField(source="get_state_display", read_only=True)
    readiness_score = serializers.IntegerField(read_only=True)

    class Meta:
        model = Deal
        fields = [
            "id",
            "title",
            "account",
            "account_name",
            "team",
            "owner",
            "state",
            "state_label",
            "state_changed_at",
            "amount",
            "currency",
            "expected_close_date",
            "next_step",
            "next_step_due",
            "closing_technique",
            "readiness_score",
            "ready_needs_understood",
            "ready_solution_fits",
            "ready_value_established",
            "ready_objections_resolved",
            "ready_signer_known",
            "ready_budget_timing",
            "metrics",
            "identified_pain",
            "decision_criteria",
            "decision_process",
            "competition",
            "term_months",
            "start_date",
            "billing",
            "loss_reason",
            "loss_note",
            "won_override_reason",
            "review_meeting_at",
            "parent_deal",
            "last_activity_at",
            "closed_at",
            "created_at",
            "updated_at",
            "archived_at",
        ]
        read_only_fields = fields


class NextBestActionSerializer(serializers.Serializer):
    headline = serializers.CharField()
    detail = serializers.CharField()
    technique = serializers.CharField()
    technique_label = serializers.CharField()


class DealDetailSerializer(DealSerializer):
    """One deal, with the next best action the deal page shows (the same function decides)."""

    next_best_action = serializers.SerializerMethodField()

    class Meta(DealSerializer.Meta):
        fields = [*DealSerializer.Meta.fields, "next_best_action"]
        read_only_fields = fields

    @extend_schema_field(NextBestActionSerializer)
    def get_next_best_action(self, deal) -> dict:
        action = deal_next_best_action(deal)
        return {
            "headline": action.headline,
            "detail": action.detail,
            "technique": action.technique,
            "technique_label": action.technique_label,
        }


class DealEditSerializer(serializers.ModelSerializer):
    """The non-state fields a rep may edit (deals.services.DEAL_EDITABLE_FIELDS)."""

    #: Documented as `additionalProperties: false` (api.schema): see to_internal_value.
    refuses_unknown_fields = True

    amount = serializers.DecimalField(
        max_digits=14,
        decimal_places=2,
        min_value=Decimal("0"),
        max_value=MAX_AMOUNT,
        required=False,
    )
    term_months = serializers.IntegerField(min_value=1, max_value=MAX_TERM_MONTHS, required=False)
    # Declared (not inferred) so that the schema states the 0–100 bounds the model enforces.
    discount_percent = serializers.DecimalField(
        max_digits=5,
        decimal_places=2,
        min_value=Decimal("0"),
        max_value=Decimal("100"),
        required=False,
    )

    class Meta:
        model = Deal
        # The same fields the service lets anyone edit, in the model's order.
        fields = [f.name for f in Deal._meta.fields if f.name in DEAL_EDITABLE_FIELDS]
        extra_kwargs = {"title": {"allow_blank": False}}

    def to_internal_value(self, data):
        # Refuse rather than silently ignore fields that cannot be edited (the state above all).
        if hasattr(data, "keys"):
            unknown = sorted(set(data.keys()) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {
                        name: [
                            "The state changes only through /transitions/{name}/."
                            if name == "state"
                            else "This field cannot be edited here."
                        ]
                        for name in unknown
                    }
                )
        return super().to_internal_value(data)


class DealCreateSerializer(DealEditSerializer):
    account = VisibleAccountField()
    owner = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.filter(is_active=True),
        required=False,
        help_text="Defaults to you. Managers may open deals for their team's reps.",
    )

    class Meta(DealEditSerializer.Meta):
        fields = ["account", "owner", *DealEditSerializer.Meta.fields]
        extra_kwargs = {"title": {"allow_blank": False, "required": True}}


class DealFilterSerializer(serializers.Serializer):
    """Query parameters of the deal list (the same filters as the deal list page)."""

    state = serializers.ChoiceField(
        choices=[*DealState.values, "open", "closed"],
        required=False,
        help_text="A state, or `open` / `closed`.",
    )
    owner = serializers.RegexField(
        r"^(me|[0-9]{1,12})$", required=False, help_text="A user id, or `me`."
    )
    team = serializers.IntegerField(min_value=1, max_value=2**31 - 1, required=False)
    account = serializers.IntegerField(min_value=1, max_value=2**31 - 1, required=False)
    close = serializers.RegexField(
        r"^[0-9]{4}-(0[1-9]|1[0-2])$",
        required=False,
        help_text="Expected close month, YYYY-MM.",
    )
    q = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        help_text="Text in the deal title or account name (blank: no text filter).",
    )


# --- what happens on a deal ---------------------------------------------------------


class DealEventSerializer(serializers.ModelSerializer):
    actor = UserBriefSerializer(read_only=True)
    kind_label = serializers.CharField(source="get_kind_display", read_only=True)

    class Meta:
        model = DealEvent
        fields = [
            "id",
            "kind",
            "kind_label",
            "actor",
            "from_state",
            "to_state",
            "transition",
            "reason",
            "data",
            "created_at",
        ]
        read_only_fields = fields


class BuyingSignalSerializer(serializers.ModelSerializer):
    class Meta:
        model = BuyingSignal
        fields = ["id", "kind", "note", "channel", "observed_at", "recorded_by"]
        read_only_fields = fields


class BuyingSignalCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=BuyingSignal.Kind.choices)
    note = serializers.CharField(max_length=5000)
    channel = serializers.ChoiceField(choices=Channel.choices, default=Channel.CALL)
    observed_at = serializers.DateTimeField(required=False)


class ObjectionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Objection
        fields = [
            "id",
            "ask",
            "category",
            "is_stall",
            "detail",
            "status",
            "resolution",
            "raised_at",
            "resolved_at",
        ]
        read_only_fields = fields


class ObjectionCreateSerializer(serializers.Serializer):
    category = serializers.ChoiceField(choices=Objection.Category.choices)
    detail = serializers.CharField(max_length=5000)
    is_stall = serializers.BooleanField(default=False)


class ObjectionResolveSerializer(serializers.Serializer):
    resolution = serializers.CharField(max_length=5000)
    accepted_loss = serializers.BooleanField(default=False)


class AskSerializer(serializers.ModelSerializer):
    class Meta:
        model = Ask
        fields = [
            "id",
            "number",
            "channel",
            "technique",
            "statement",
            "answer",
            "asked_at",
            "asked_by",
        ]
        read_only_fields = fields


class AskCreateSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=Channel.choices)
    statement = serializers.CharField(max_length=5000)
    answer = serializers.ChoiceField(choices=Ask.Answer.choices)
    technique = serializers.ChoiceField(
        choices=ClosingTechnique.choices, required=False, allow_blank=True
    )
    objection = ObjectionCreateSerializer(
        required=False, help_text="Required with a “not yet” answer: what holds them back."
    )
    expected_state = serializers.ChoiceField(
        choices=DealState.choices,
        required=False,
        help_text="The state you saw; a different current state is a 409 conflict.",
    )


class ConcessionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Concession
        fields = [
            "id",
            "give",
            "get",
            "new_amount",
            "new_discount_percent",
            "new_term_months",
            "new_billing",
            "new_start_date",
            "status",
            "created_at",
            "decided_at",
        ]
        read_only_fields = fields


class ConcessionCreateSerializer(serializers.Serializer):
    give = serializers.CharField(max_length=200, validators=[single_line])
    get = serializers.CharField(max_length=200, validators=[single_line])
    new_amount = serializers.DecimalField(
        max_digits=14, decimal_places=2, min_value=0, required=False, allow_null=True
    )
    new_discount_percent = serializers.DecimalField(
        max_digits=5, decimal_places=2, min_value=0, max_value=100, required=False, allow_null=True
    )
    new_term_months = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    new_billing = serializers.ChoiceField(
        choices=BillingFrequency.choices, required=False, allow_blank=True
    )
    new_start_date = serializers.DateField(required=False, allow_null=True)


class ConcessionDecideSerializer(serializers.Serializer):
    accepted = serializers.BooleanField()


class StakeholderSerializer(serializers.ModelSerializer):
    contact_name = serializers.CharField(source="contact.full_name", read_only=True)

    class Meta:
        model = Stakeholder
        fields = ["id", "contact", "contact_name", "role", "note"]
        read_only_fields = fields


class StakeholderCreateSerializer(serializers.Serializer):
    contact = VisibleContactField()
    role = serializers.ChoiceField(choices=Stakeholder.Role.choices)
    note = serializers.CharField(max_length=200, required=False, allow_blank=True)


class ContractVersionSerializer(serializers.ModelSerializer):
    status_label = serializers.CharField(source="get_status_display", read_only=True)

    class Meta:
        model = ContractVersion
        fields = [
            "id",
            "number",
            "status",
            "status_label",
            "provider",
            "envelope_id",
            "sha256",
            "signer_name",
            "signer_email",
            "status_reason",
            "created_at",
            "sent_at",
            "viewed_at",
            "completed_at",
            "declined_at",
            "voided_at",
            "withdrawal",
            "signed_late",
            "late_signature_accepted_at",
        ]
        read_only_fields = fields


class ContractGenerateSerializer(serializers.Serializer):
    template = serializers.PrimaryKeyRelatedField(
        queryset=ContractTemplate.objects.all(),
        required=False,
        help_text="A contract template id; the default template when left out.",
    )


class ContractSendSerializer(serializers.Serializer):
    expected_state = serializers.ChoiceField(
        choices=DealState.choices,
        required=False,
        help_text="The deal state you saw; a different current state is a 409 conflict.",
    )


class ContractVoidSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, help_text="Why (the signer sees it).")


class LateSignatureAcceptSerializer(serializers.Serializer):
    reason = serializers.CharField(
        max_length=2000, help_text="Why this late signature wins the deal (audited)."
    )


# --- transitions ---------------------------------------------------------------------


class TransitionInfoSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    target = serializers.CharField()
    needs_reason = serializers.BooleanField()
    allowed = serializers.BooleanField()
    blockers = serializers.ListField(child=serializers.CharField())


class TransitionRequestSerializer(serializers.Serializer):
    reason = serializers.CharField(
        max_length=5000,
        required=False,
        allow_blank=True,
        help_text="Why: required to override to won, close as lost (a note) or reopen.",
    )
    loss_reason = serializers.ChoiceField(
        choices=LossReason.choices, required=False, help_text="Required to close as lost."
    )
    expected_state = serializers.ChoiceField(
        choices=DealState.choices,
        required=False,
        help_text="The state you saw; a different current state is a 409 conflict.",
    )


class ArchiveRequestSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True)


class ReassignSerializer(serializers.Serializer):
    new_owner = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.all(),
        help_text="The user who takes the deal over: an active member of the deal's team.",
    )
    reason = serializers.CharField(
        max_length=2000, help_text="Why the deal changes hands (kept in the audit log)."
    )
    move_account = serializers.BooleanField(
        required=False, default=False, help_text="Hand the deal's account to them too."
    )
    expected_owner = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="The owner you saw; a different current owner is a 409 conflict.",
    )


@extend_schema_serializer(component_name="Error")
class ErrorSerializer(serializers.Serializer):
    """Every error body under /api/ (see api.exceptions): 400, 401, 403, 404, 409, 415, 429."""

    detail = serializers.CharField(help_text="What went wrong, in plain words.")
    code = serializers.CharField(
        required=False,
        help_text="The kind of error: `invalid`, `not_found`, `permission_denied`, "
        "`not_authenticated`, `conflict`, `transition_blocked`, `refused`, `throttled`, …",
    )
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Validation errors only: messages per field (nested fields dotted, "
        "`non_field_errors` for the request as a whole).",
    )


#: The older name of the error body; views may still declare responses with it.
DetailSerializer = ErrorSerializer


# --- more of what a rep does on the deal page -----------------------------------------------


class ReadinessSerializer(serializers.Serializer):
    """Tick (true) or untick (false) checklist items; items left out stay as they are."""

    #: At least one item (documented as `minProperties` by api.schema).
    min_properties = 1

    def get_fields(self):
        return {
            name: serializers.BooleanField(
                required=False,
                help_text=label
                + (f" (derived, {READINESS_DERIVED[name]})" if name in READINESS_DERIVED else ""),
            )
            for name, label in READINESS_ITEMS
        }

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError("Give at least one checklist item.")
        return attrs


class TechniqueSerializer(serializers.Serializer):
    technique = serializers.ChoiceField(
        choices=ClosingTechnique.choices, allow_blank=True, help_text="Blank clears it."
    )


class NoteSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=10000)


class FollowOnSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200, validators=[single_line])
    need = serializers.CharField(max_length=5000, help_text="The need found during the sale.")
    amount = serializers.DecimalField(
        max_digits=14,
        decimal_places=2,
        min_value=Decimal("0"),
        max_value=MAX_AMOUNT,
        required=False,
    )


class OnboardingStepSerializer(serializers.ModelSerializer):
    kind_label = serializers.CharField(source="get_kind_display", read_only=True)

    class Meta:
        model = OnboardingStep
        fields = ["id", "kind", "kind_label", "assignee", "due_date", "done_at", "done_by"]
        read_only_fields = fields


# --- bulk actions ------------------------------------------------------------------------------

#: The moves a bulk action may make (those with no record of their own).
BULK_TRANSITIONS = ["negotiate", "follow_up", "mark_won", "override_won", "mark_lost", "reopen"]


class DealIdListField(serializers.ListField):
    """Deal ids as JSON integers (not "5", not true)."""

    def to_internal_value(self, data):
        if isinstance(data, list) and any(
            isinstance(value, bool) or not isinstance(value, int) for value in data
        ):
            raise serializers.ValidationError("Give the deal ids as integers.")
        return super().to_internal_value(data)


class BulkActionRequestSerializer(serializers.Serializer):
    action = serializers.ChoiceField(
        choices=["reassign", "archive", "transition"],
        help_text="What to do with each deal. `reassign` is for the team's manager or an admin.",
    )
    deal_ids = DealIdListField(
        child=serializers.IntegerField(min_value=1, max_value=2**31 - 1),
        min_length=1,
        max_length=1000,
        help_text="The deals, in order. Ids you cannot see are refused one by one, unnamed.",
    )
    transition = serializers.ChoiceField(
        choices=BULK_TRANSITIONS,
        required=False,
        help_text="For `transition`: the move. Asks and sent contracts have their own endpoints.",
    )
    loss_reason = serializers.ChoiceField(
        choices=LossReason.choices, required=False, help_text="For `mark_lost`: why."
    )
    reason = serializers.CharField(
        max_length=2000,
        required=False,
        allow_blank=True,
        default="",
        help_text="Kept in each deal's timeline; needed to reassign, override or reopen.",
    )
    new_owner = serializers.IntegerField(
        min_value=1, max_value=2**31 - 1, required=False, help_text="For `reassign`: who."
    )
    move_account = serializers.BooleanField(
        required=False, default=False, help_text="For `reassign`: hand the accounts over too."
    )


class BulkResultSerializer(serializers.Serializer):
    deal_id = serializers.IntegerField(source="ref")
    title = serializers.CharField()
    outcome = serializers.ChoiceField(choices=["pending", "done", "refused"])
    message = serializers.CharField(help_text="What was done, or why it was refused.")


class BulkJobSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    action = serializers.ChoiceField(choices=["reassign", "archive", "transition"])
    status = serializers.ChoiceField(
        choices=["queued", "running", "done"],
        help_text="Small jobs are done at once; larger ones run on a worker: poll this job.",
    )
    total = serializers.IntegerField()
    done = serializers.IntegerField()
    refused = serializers.IntegerField()
    pending = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    results = BulkResultSerializer(many=True)
