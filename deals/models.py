"""Accounts, contacts, deals and the closing state machine, with everything a rep records."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language, gettext, gettext_lazy, pgettext
from django.utils.translation import gettext_lazy as _
from django_fsm import ConcurrentTransitionMixin, FSMField, transition


def single_line(value: str) -> None:
    """Titles and names are one line: a newline breaks email headers and lists."""
    if value and ("\n" in value or "\r" in value):
        raise ValidationError(
            gettext("Use a single line here (no line breaks)."), code="single_line"
        )


class Currency(models.TextChoices):
    EUR = "EUR", gettext_lazy("EUR (€)")
    USD = "USD", gettext_lazy("USD ($)")
    GBP = "GBP", gettext_lazy("GBP (£)")
    CHF = "CHF", gettext_lazy("CHF")


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True, validators=[single_line])
    currency = models.CharField(
        max_length=3,
        choices=Currency.choices,
        default=Currency.EUR,
        help_text=gettext_lazy("Currency the team reports in."),
    )
    reps_see_team_deals = models.BooleanField(
        default=True,
        help_text=gettext_lazy("Reps may read (not change) the deals of their teammates."),
    )
    account_manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text=gettext_lazy(
            "Who takes over won customers for onboarding. Defaults to the team's manager."
        ),
    )
    countersign_contracts = models.BooleanField(
        default=False,
        help_text="Built-in contracts are countersigned by the seller after the buyer signed.",
    )
    countersigner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who countersigns the team's contracts. Defaults to the team's manager.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


def user_display_name(first_name: str, last_name: str, username: str) -> str:
    """How a person is named everywhere (`User.__str__`): full name, else the login. Also
    for pages that read people as plain values instead of User objects."""
    return f"{first_name} {last_name}".strip() or username


class User(AbstractUser):
    class Role(models.TextChoices):
        REP = "rep", gettext_lazy("Sales rep")
        MANAGER = "manager", gettext_lazy("Sales manager")

    role = models.CharField(max_length=10, choices=Role.choices, default=Role.REP)
    team = models.ForeignKey(
        Team, on_delete=models.SET_NULL, null=True, blank=True, related_name="members"
    )
    time_zone = models.CharField(
        max_length=64,
        default="Europe/Berlin",
        help_text=gettext_lazy("IANA time zone; follow-ups are sent in the rep's working hours."),
    )
    working_days = models.CharField(
        max_length=7,
        default="01234",
        help_text=gettext_lazy(
            "Weekdays the rep works, Monday=0 … Sunday=6 (e.g. 01234 for Mon–Fri)."
        ),
    )
    workday_start = models.TimeField(default="09:00")
    workday_end = models.TimeField(default="17:30")
    language = models.CharField(
        _("language"),
        max_length=10,
        blank=True,
        default="",
        choices=settings.LANGUAGES,
        help_text=_("The language of your pages and emails; empty follows your browser."),
    )

    class Meta:
        ordering = ["username"]

    def __str__(self) -> str:
        return user_display_name(self.first_name, self.last_name, self.username)

    @property
    def is_manager(self) -> bool:
        return self.role == self.Role.MANAGER

    @property
    def is_admin(self) -> bool:
        return self.is_superuser or self.is_staff


def language_of(user: User | None) -> str:
    """The language `user` reads in (emails, stored notifications): theirs, else the site's."""
    return (
        (getattr(user, "language", "") or settings.LANGUAGE_CODE)
        if user
        else settings.LANGUAGE_CODE
    )


def in_sentence(label: str) -> str:
    """A choice label inside a sentence: lower case in English ("is now negotiating"); German
    keeps its capitals (nouns are capitalised)."""
    label = str(label)
    return label.lower() if (get_language() or "en").startswith("en") else label


def ordinal_text(n: int) -> str:
    """`n` as an ordinal in the active language: 1st, 2nd… in English, 1., 2.… in German."""
    if (get_language() or "en").startswith("en"):
        suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
        return f"{n}{suffix}"
    # Translators: an ordinal number, as in "the 2nd ask" (German: "2.").
    return pgettext("ordinal number", "%(n)sth") % {"n": n}


class ArchivableQuerySet(models.QuerySet):
    def active(self):
        return self.filter(archived_at__isnull=True)


class Account(models.Model):
    class Status(models.TextChoices):
        PROSPECT = "prospect", gettext_lazy("Prospect")
        CUSTOMER = "customer", gettext_lazy("Customer")

    name = models.CharField(max_length=200, validators=[single_line])
    website = models.CharField(max_length=200, blank=True)
    industry = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PROSPECT)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="accounts")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_accounts"
    )
    account_manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="managed_accounts",
    )
    became_customer_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    archived_at = models.DateTimeField(null=True, blank=True)

    objects = ArchivableQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="account_unique_name_per_team")
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("deals:account_detail", args=[self.pk])


class Contact(models.Model):
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="contacts")
    first_name = models.CharField(max_length=100, validators=[single_line])
    last_name = models.CharField(max_length=100, validators=[single_line])
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=50, blank=True, validators=[single_line])
    job_title = models.CharField(max_length=120, blank=True, validators=[single_line])
    created_at = models.DateTimeField(auto_now_add=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    erased_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=gettext_lazy(
            "When the contact's personal data was erased on request (GDPR Art. 17)."
        ),
    )

    objects = ArchivableQuerySet.as_manager()

    class Meta:
        ordering = ["last_name", "first_name"]

    def __str__(self) -> str:
        return self.full_name

    def get_absolute_url(self) -> str:
        return reverse("deals:contact_detail", args=[self.pk])

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class DealState(models.TextChoices):
    INTENT_SPOTTED = "intent_spotted", gettext_lazy("Intent spotted")
    ASKED = "asked", gettext_lazy("Asked")
    AGREEMENT_SENT = "agreement_sent", gettext_lazy("Agreement sent")
    NEGOTIATING = "negotiating", gettext_lazy("Negotiating")
    FOLLOW_UP = "follow_up", gettext_lazy("Follow-up")
    CLOSED_WON = "closed_won", gettext_lazy("Closed / won")
    CLOSED_LOST = "closed_lost", gettext_lazy("Closed / lost")


OPEN_STATES = [
    DealState.INTENT_SPOTTED,
    DealState.ASKED,
    DealState.AGREEMENT_SENT,
    DealState.NEGOTIATING,
    DealState.FOLLOW_UP,
]
CLOSED_STATES = [DealState.CLOSED_WON, DealState.CLOSED_LOST]


class ClosingTechnique(models.TextChoices):
    ASSUMPTIVE = "assumptive", gettext_lazy("Assumptive close")
    SOFT = "soft", gettext_lazy("Soft close")
    SUMMARY = "summary", gettext_lazy("Summary close")
    QUESTION = "question", gettext_lazy("Question close")
    OPTION = "option", gettext_lazy("Option close")
    SHARP_ANGLE = "sharp_angle", gettext_lazy("Sharp-angle close")
    NOW_OR_NEVER = "now_or_never", gettext_lazy("Now-or-never close")
    TAKE_AWAY = "take_away", gettext_lazy("Take-away close")
    PUPPY_DOG = "puppy_dog", gettext_lazy("Puppy-dog close")
    OBJECTION = "objection", gettext_lazy("Objection close")
    INOFFENSIVE = "inoffensive", gettext_lazy("Inoffensive close")


TECHNIQUE_GUIDES = {
    ClosingTechnique.ASSUMPTIVE: gettext_lazy(
        "Talk as if the decision is made: “Shall we start on the 1st?”"
    ),
    ClosingTechnique.SOFT: gettext_lazy(
        "A low-pressure question: “Would this solve what you described?”"
    ),
    ClosingTechnique.SUMMARY: gettext_lazy(
        "Recap the value you have agreed on, then ask for the yes."
    ),
    ClosingTechnique.QUESTION: gettext_lazy("Ask what is left to decide, and settle it together."),
    ClosingTechnique.OPTION: gettext_lazy(
        "Offer two acceptable choices (annual or quarterly billing?)."
    ),
    ClosingTechnique.SHARP_ANGLE: gettext_lazy(
        "Agree to their request in exchange for a commitment now."
    ),
    ClosingTechnique.NOW_OR_NEVER: gettext_lazy(
        "A genuine, time-bound incentive. Never invent one."
    ),
    ClosingTechnique.TAKE_AWAY: gettext_lazy(
        "Remove an option to refocus the buyer on what matters."
    ),
    ClosingTechnique.PUPPY_DOG: gettext_lazy(
        "Let them try it: a trial or a pilot that proves the value."
    ),
    ClosingTechnique.OBJECTION: gettext_lazy("Resolve the last objection, then ask straight away."),
    ClosingTechnique.INOFFENSIVE: gettext_lazy(
        "No urgency, no assumed deal, no threats to walk away: "
        "best with aggressive or pressure-averse buyers."
    ),
}


class LossReason(models.TextChoices):
    PRICE = "price", gettext_lazy("Price")
    TIMING = "timing", gettext_lazy("Timing")
    COMPETITOR = "competitor", gettext_lazy("Lost to a competitor")
    NO_DECISION = "no_decision", gettext_lazy("No decision")
    NO_BUDGET = "no_budget", gettext_lazy("No budget")
    FIT = "fit", gettext_lazy("Poor fit")
    OTHER = "other", gettext_lazy("Other")


class BillingFrequency(models.TextChoices):
    MONTHLY = "monthly", gettext_lazy("Monthly")
    QUARTERLY = "quarterly", gettext_lazy("Quarterly")
    ANNUALLY = "annually", gettext_lazy("Annually")
    UPFRONT = "upfront", gettext_lazy("Up front")


# The readiness checklist: (field name, label). Order is the order shown to reps.
READINESS_ITEMS = [
    ("ready_needs_understood", gettext_lazy("Needs understood")),
    ("ready_solution_fits", gettext_lazy("Solution fits")),
    ("ready_value_established", gettext_lazy("Value established")),
    ("ready_objections_resolved", gettext_lazy("Objections resolved")),
    ("ready_signer_known", gettext_lazy("Decision maker and signer known")),
    ("ready_budget_timing", gettext_lazy("Budget and timing confirmed")),
]

#: Readiness items the product derives from what the rep records elsewhere, with where they
#: come from, in the words shown beside the checkbox. "Decision maker and signer known" always
#: follows the buying group; "Objections resolved" follows the objections once one was noted
#: (before that the rep ticks it).
READINESS_DERIVED = {
    "ready_objections_resolved": gettext_lazy("from the objections: ticked when none is open"),
    "ready_signer_known": gettext_lazy(
        "from the buying group: ticked when it has a decision maker and a signer"
    ),
}


def readiness_derivation(*, objection_statuses: list[str], roles: set[str]) -> dict[str, bool]:
    """The readiness items that can be derived now, and their values (see READINESS_DERIVED)."""
    derived = {
        "ready_signer_known": {Stakeholder.Role.DECISION_MAKER, Stakeholder.Role.SIGNER} <= roles
    }
    if objection_statuses:
        derived["ready_objections_resolved"] = Objection.Status.OPEN not in objection_statuses
    return derived


# --- state machine guards (pure functions of the deal) -------------------


def has_contract_to_send(deal: Deal) -> bool:
    """A contract version exists that can go out for signature."""
    from contracts.selectors import deal_has_sendable_contract

    return deal_has_sendable_contract(deal)


has_contract_to_send.blocked_message = gettext_lazy(
    "Generate a contract first: nothing can go out for signature."
)


def has_completed_signature(deal: Deal) -> bool:
    """The buyer completed a signature on one of the deal's contract versions."""
    from contracts.selectors import deal_has_completed_signature

    return deal_has_completed_signature(deal)


has_completed_signature.blocked_message = gettext_lazy(
    "No completed signature yet. A manager can override with a reason."
)


def has_late_signature(deal: Deal) -> bool:
    """A version was signed after the deal closed (or after it was withdrawn), not yet used."""
    from contracts.selectors import deal_late_signature

    return deal_late_signature(deal) is not None


has_late_signature.blocked_message = gettext_lazy("No signature arrived after the deal closed.")


def has_loss_reason(deal: Deal) -> bool:
    return bool(deal.loss_reason)


has_loss_reason.input_required = True
has_loss_reason.blocked_message = gettext_lazy(
    "Choose a loss reason before closing the deal as lost."
)


def has_override_reason(deal: Deal) -> bool:
    return bool(deal.won_override_reason.strip())


has_override_reason.input_required = True
has_override_reason.blocked_message = gettext_lazy("An override to won needs a written reason.")


def has_reopen_reason(deal: Deal) -> bool:
    return bool(getattr(deal, "_transition_reason", "").strip())


has_reopen_reason.input_required = True
has_reopen_reason.blocked_message = gettext_lazy("Say why the deal is reopened.")


def has_decision_reason(deal: Deal) -> bool:
    return bool(getattr(deal, "_transition_reason", "").strip())


has_decision_reason.input_required = True
has_decision_reason.blocked_message = gettext_lazy(
    "Write down why: the reason goes in the audit log."
)


# --- permissions -----------------------------------------------------------


def can_work_deal(deal: Deal, user) -> bool:
    """The owner, the owner's team manager, or an admin may move a deal."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    if user.pk == deal.owner_id:
        return True
    return user.is_manager and user.team_id is not None and user.team_id == deal.team_id


can_work_deal.denied_message = gettext_lazy(
    "Only the deal's owner or the team's manager can move this deal."
)


def can_manage_deal(deal: Deal, user) -> bool:
    """Overrides and reopening are for the team's manager (or an admin)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    return user.is_manager and user.team_id is not None and user.team_id == deal.team_id


can_manage_deal.denied_message = gettext_lazy("Only the team's manager can do this.")


class DealQuerySet(ArchivableQuerySet):
    def open(self):
        return self.filter(state__in=OPEN_STATES)

    def visible_to(self, user):
        """Deals `user` may read: own; the team's (managers, or reps if the team allows); all
        (admins)."""
        if not user.is_authenticated:
            return self.none()
        if user.is_superuser:
            return self
        if user.is_manager and user.team_id:
            return self.filter(team_id=user.team_id)
        if user.team_id and user.team and user.team.reps_see_team_deals:
            return self.filter(team_id=user.team_id)
        return self.filter(owner=user)

    def workable_by(self, user):
        """Deals this user may change."""
        if not user.is_authenticated:
            return self.none()
        if user.is_superuser:
            return self
        if user.is_manager and user.team_id:
            return self.filter(team_id=user.team_id)
        return self.filter(owner=user)


class Deal(ConcurrentTransitionMixin, models.Model):
    title = models.CharField(max_length=200, validators=[single_line])
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="deals")
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="deals")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="deals"
    )
    state = FSMField(
        default=DealState.INTENT_SPOTTED,
        choices=DealState.choices,
        protected=True,
        db_index=True,
    )
    state_changed_at = models.DateTimeField(default=timezone.now)
    amount = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    currency = models.CharField(max_length=3, choices=Currency.choices, default=Currency.EUR)
    expected_close_date = models.DateField(null=True, blank=True)
    next_step = models.CharField(max_length=200, blank=True)
    next_step_due = models.DateField(null=True, blank=True)
    closing_technique = models.CharField(
        max_length=20, choices=ClosingTechnique.choices, blank=True
    )

    # Readiness checklist (see READINESS_ITEMS).
    ready_needs_understood = models.BooleanField("Needs understood", default=False)
    ready_solution_fits = models.BooleanField("Solution fits", default=False)
    ready_value_established = models.BooleanField("Value established", default=False)
    ready_objections_resolved = models.BooleanField("Objections resolved", default=False)
    ready_signer_known = models.BooleanField("Decision maker and signer known", default=False)
    ready_budget_timing = models.BooleanField("Budget and timing confirmed", default=False)

    # MEDDIC-style qualification notes for complex, group sales.
    metrics = models.TextField(
        blank=True, help_text=gettext_lazy("The measurable value the buyer expects.")
    )
    identified_pain = models.TextField(blank=True)
    decision_criteria = models.TextField(blank=True)
    decision_process = models.TextField(blank=True)
    competition = models.CharField(max_length=200, blank=True)

    # Commercial terms used by the contract.
    term_months = models.PositiveIntegerField(default=12)
    start_date = models.DateField(null=True, blank=True)
    billing = models.CharField(
        max_length=10, choices=BillingFrequency.choices, default=BillingFrequency.ANNUALLY
    )
    discount_percent = models.DecimalField(
        "Discount (%)",
        max_digits=5,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
        help_text=gettext_lazy(
            "Discount agreed on the list price, in percent (shown on the contract)."
        ),
    )

    loss_reason = models.CharField(max_length=20, choices=LossReason.choices, blank=True)
    loss_note = models.TextField(blank=True)
    won_override_reason = models.TextField(blank=True)
    review_meeting_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=gettext_lazy("Contract review meeting; acts as the deal's deadline."),
    )
    parent_deal = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="follow_on_deals",
        help_text=gettext_lazy("The won deal during which this need was found."),
    )

    last_activity_at = models.DateTimeField(default=timezone.now, db_index=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    archived_at = models.DateTimeField(null=True, blank=True)

    objects = DealQuerySet.as_manager()

    class Meta:
        ordering = ["-last_activity_at"]
        indexes = [
            models.Index(fields=["team", "state"], name="deal_team_state"),
            models.Index(fields=["owner", "state"], name="deal_owner_state"),
            models.Index(fields=["expected_close_date"], name="deal_close_date"),
            models.Index(fields=["team", "closed_at"], name="deal_team_closed"),
            # The board's columns and the deal list, in their order (close date, then id),
            # per team, per owner and for admins; archived deals are never shown there.
            models.Index(
                fields=["team", "state", "expected_close_date", "id"],
                name="deal_board_team",
                condition=models.Q(archived_at__isnull=True),
            ),
            models.Index(
                fields=["owner", "state", "expected_close_date", "id"],
                name="deal_board_owner",
                condition=models.Q(archived_at__isnull=True),
            ),
            models.Index(
                fields=["state", "expected_close_date", "id"],
                name="deal_board_all",
                condition=models.Q(archived_at__isnull=True),
            ),
            models.Index(
                fields=["team", "expected_close_date", "id"],
                name="deal_list_team",
                condition=models.Q(archived_at__isnull=True),
            ),
            models.Index(
                fields=["expected_close_date", "id"],
                name="deal_list_all",
                condition=models.Q(archived_at__isnull=True),
            ),
            # The deal list's other usual orders for admins (all teams), read in either
            # direction: a deep page walks the index for its ids instead of sorting every
            # deal. Latest close first is the default order's reverse: nulls first here, so
            # that read backwards the deals without a close date still come last.
            # PostgreSQL only (migration 0018): SQLite cannot build NULLS FIRST into an index.
            models.Index(
                F("expected_close_date").asc(nulls_first=True),
                F("id").asc(),
                name="deal_list_all_close_desc",
                condition=models.Q(archived_at__isnull=True),
            ),
            models.Index(
                fields=["amount", "id"],
                name="deal_list_all_amount",
                condition=models.Q(archived_at__isnull=True),
            ),
            models.Index(
                fields=["last_activity_at", "id"],
                name="deal_list_all_activity",
                condition=models.Q(archived_at__isnull=True),
            ),
            # Dashboards (covering, so PostgreSQL answers from the index alone): deals
            # closed in a period, per team or all; open deals by expected close date (the
            # forecast); the few archived deals (left out of the all-teams scope); a deal's
            # owner and team by id (joins from asks and stays); recent activity per state
            # (stalled = open minus recently active).
            models.Index(
                fields=["closed_at"],
                name="deal_closed_all",
                include=["id", "state", "team", "owner", "currency", "amount", "loss_reason"],
                condition=models.Q(archived_at__isnull=True, closed_at__isnull=False),
            ),
            models.Index(
                fields=["team", "closed_at"],
                name="deal_closed_team",
                include=["id", "state", "owner", "currency", "amount", "loss_reason"],
                condition=models.Q(archived_at__isnull=True, closed_at__isnull=False),
            ),
            models.Index(
                fields=["team", "expected_close_date"],
                name="deal_forecast_team",
                include=["id", "state", "owner", "currency", "amount"],
                condition=models.Q(archived_at__isnull=True, state__in=OPEN_STATES),
            ),
            models.Index(
                fields=["expected_close_date"],
                name="deal_forecast_all",
                include=["id", "state", "team", "owner", "currency", "amount"],
                condition=models.Q(archived_at__isnull=True, state__in=OPEN_STATES),
            ),
            models.Index(
                fields=["id"],
                name="deal_archived",
                condition=models.Q(archived_at__isnull=False),
            ),
            models.Index(
                fields=["id"],
                name="deal_scope",
                include=["team", "owner"],
                condition=models.Q(archived_at__isnull=True),
            ),
            models.Index(
                fields=["state", "last_activity_at"],
                name="deal_activity",
                include=["id", "team", "owner"],
                condition=models.Q(archived_at__isnull=True),
            ),
            # A team's deals by state and last activity, with what the dashboard's drill-down
            # sorts on (amount, id): its stalled list and count, on any page, read this index
            # alone instead of every deal of the team.
            models.Index(
                fields=["team", "state", "last_activity_at"],
                name="deal_stalled_team",
                include=["id", "amount", "owner"],
                condition=models.Q(archived_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("deals:deal_detail", args=[self.pk])

    def refresh_from_db(self, using=None, fields=None, from_queryset=None):
        """Reload from the database; safe when several threads reload deals at once.

        django-fsm lifts `protected` on the state field (one object shared by all
        threads) while it reloads, so a reload in another thread at that moment fails
        with "Direct state modification is not allowed". Forgetting the state first
        lets Django set it again without touching the field's protection.
        """
        if fields is None:
            self._prefetched_objects_cache = {}
            deferred = self.get_deferred_fields()
            fields = [f.attname for f in self._meta.concrete_fields if f.attname not in deferred]
        fields = set(fields)
        if "state" in fields:
            self.__dict__.pop("state", None)
        models.Model.refresh_from_db(self, using=using, fields=fields, from_queryset=from_queryset)
        self._update_initial_state()  # ConcurrentTransitionMixin: the state just read

    # --- derived values ---------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def is_live(self) -> bool:
        """Open and not archived: the only deals whose contract may still be signed."""
        return self.state in OPEN_STATES and self.archived_at is None

    @property
    def readiness_score(self) -> int:
        return sum(1 for field, _ in READINESS_ITEMS if getattr(self, field))

    @property
    def readiness_total(self) -> int:
        return len(READINESS_ITEMS)

    @property
    def readiness(self) -> list[tuple[str, str, bool]]:
        return [(field, label, getattr(self, field)) for field, label in READINESS_ITEMS]

    @property
    def technique_guide(self) -> str:
        return TECHNIQUE_GUIDES.get(self.closing_technique, "")

    @property
    def days_in_state(self) -> int:
        return (timezone.now() - self.state_changed_at).days

    # --- transitions: they change fields only; deals.services fires them ---

    # `made_by` names the one use case that fires a transition because it also makes the
    # record the transition stands for (a sent contract, a numbered ask). Every other path
    # (deal page, board, admin, API) reads it and refuses with `how`, pointing at the step
    # (`anchor` on the deal page, `api` for integrations). deals.services enforces it.

    @transition(
        field=state,
        source=[DealState.INTENT_SPOTTED, DealState.NEGOTIATING],
        target=DealState.ASKED,
        permission=can_work_deal,
        custom={
            "label": gettext_lazy("Ask for the sale"),
            "verb": "ask",
            "made_by": "deal_ask_record",
            "how": (
                "Asking for the sale is recorded as a numbered ask (channel, what you said and "
                "the buyer's answer): use “Record an ask” on the deal page."
            ),
            "api": "POST /api/v1/deals/{deal_id}/asks/",
            "anchor": "panel-asks",
            "step": "Record the ask",
        },
    )
    def ask(self):
        """The rep asks for a verbal, non-binding yes (first ask or asking again)."""

    @transition(
        field=state,
        source=[DealState.INTENT_SPOTTED, DealState.ASKED, DealState.NEGOTIATING],
        target=DealState.AGREEMENT_SENT,
        conditions=[has_contract_to_send],
        permission=can_work_deal,
        custom={
            "label": gettext_lazy("Send the agreement"),
            "made_by": "contract_send",
            "how": (
                "The agreement is sent by sending a contract version: generate one and press "
                "“Send for signature” in the deal's Contract panel (the deal moves with it)."
            ),
            "api": "POST /api/v1/deals/{deal_id}/contracts/{version_id}/send/",
            "anchor": "contracts-panel",
            "step": "Send a contract",
        },
    )
    def send_agreement(self):
        """A binding contract goes out for signature (proposal-first teams skip the ask)."""

    @transition(
        field=state,
        source=[DealState.ASKED, DealState.AGREEMENT_SENT, DealState.FOLLOW_UP],
        target=DealState.NEGOTIATING,
        permission=can_work_deal,
        custom={"label": gettext_lazy("Negotiate")},
    )
    def negotiate(self):
        """Objections, a review meeting or give-get concessions are being worked."""

    @transition(
        field=state,
        source=DealState.AGREEMENT_SENT,
        target=DealState.FOLLOW_UP,
        permission=can_work_deal,
        custom={"label": gettext_lazy("Follow up")},
    )
    def follow_up(self):
        """The contract is with the buyer; friendly reminders until it is signed."""

    @transition(
        field=state,
        source=[DealState.AGREEMENT_SENT, DealState.FOLLOW_UP, DealState.NEGOTIATING],
        target=DealState.CLOSED_WON,
        conditions=[has_completed_signature],
        permission=can_work_deal,
        custom={"label": gettext_lazy("Mark won (signed)")},
    )
    def mark_won(self):
        """The signature is complete: the deal is won."""
        self.closed_at = timezone.now()

    @transition(
        field=state,
        source=OPEN_STATES,
        target=DealState.CLOSED_WON,
        conditions=[has_override_reason],
        permission=can_manage_deal,
        custom={"label": gettext_lazy("Override to won"), "needs_reason": True},
    )
    def override_won(self):
        """A manager marks the deal won without a completed signature, with a reason."""
        self.closed_at = timezone.now()

    @transition(
        field=state,
        source=OPEN_STATES,
        target=DealState.CLOSED_LOST,
        conditions=[has_loss_reason],
        permission=can_work_deal,
        custom={"label": gettext_lazy("Close as lost"), "needs_reason": True},
    )
    def mark_lost(self):
        """No agreement: the deal ends amicably with a recorded reason."""
        self.closed_at = timezone.now()

    @transition(
        field=state,
        source=DealState.CLOSED_LOST,
        target=DealState.INTENT_SPOTTED,
        conditions=[has_reopen_reason],
        permission=can_manage_deal,
        custom={"label": gettext_lazy("Reopen"), "needs_reason": True},
    )
    def reopen(self):
        """A manager reopens a lost deal; it starts again at intent spotted."""
        self.closed_at = None
        self.loss_reason = ""

    @transition(
        field=state,
        source=[*OPEN_STATES, DealState.CLOSED_LOST],
        target=DealState.CLOSED_WON,
        conditions=[has_late_signature, has_decision_reason],
        permission=can_manage_deal,
        custom={
            "label": gettext_lazy("Win with the late signature"),
            "needs_reason": True,
            "made_by": "contract_late_signature_accept",
            "how": (
                "A signature that arrived after the deal closed is turned into a win from the "
                "banner on the deal page (a manager, with a reason)."
            ),
            "api": "POST /api/v1/deals/{deal_id}/contracts/{version_id}/accept-late-signature/",
            "anchor": "late-signature",
            "step": "Review the late signature",
            "also_saves": ["archived_at"],
        },
    )
    def accept_late_signature(self):
        """A manager turns a signature that came after the close into the win it records."""
        self.closed_at = timezone.now()
        self.archived_at = None


class LineItem(models.Model):
    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="line_items")
    description = models.CharField(max_length=200)
    quantity = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal("1"))
    unit_price = models.DecimalField(max_digits=14, decimal_places=2)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "pk"]

    def __str__(self) -> str:
        return self.description

    @property
    def total(self) -> Decimal:
        return (self.quantity * self.unit_price).quantize(Decimal("0.01"))


class StageSetting(models.Model):
    """Per-state numbers managers tune: win probability and when a deal counts as stalled."""

    state = models.CharField(max_length=20, choices=DealState.choices, unique=True)
    probability = models.PositiveSmallIntegerField(
        help_text=gettext_lazy("Win probability in percent, used for the weighted pipeline.")
    )
    stall_after_days = models.PositiveSmallIntegerField(
        default=7,
        help_text=gettext_lazy("A deal with no activity for this many days counts as stalled."),
    )

    class Meta:
        ordering = ["state"]

    def __str__(self) -> str:
        return f"{self.get_state_display()}: {self.probability}%"

    def clean(self) -> None:
        if self.probability > 100:
            raise ValidationError({"probability": "A probability is at most 100%."})


class Stakeholder(models.Model):
    class Role(models.TextChoices):
        DECISION_MAKER = "decision_maker", gettext_lazy("Decision maker")
        SIGNER = "signer", gettext_lazy("Signer")
        CHAMPION = "champion", gettext_lazy("Champion")
        ECONOMIC_BUYER = "economic_buyer", gettext_lazy("Economic buyer")
        USER = "user", gettext_lazy("User")
        INFLUENCER = "influencer", gettext_lazy("Influencer")

    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="stakeholders")
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="stakeholder_roles")
    role = models.CharField(max_length=20, choices=Role.choices)
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["role", "contact__last_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["deal", "contact", "role"], name="stakeholder_unique_role"
            )
        ]

    def __str__(self) -> str:
        return f"{self.contact} ({self.get_role_display()})"


class Channel(models.TextChoices):
    CALL = "call", gettext_lazy("Call")
    MEETING = "meeting", gettext_lazy("Meeting")
    EMAIL = "email", gettext_lazy("Email")
    VIDEO = "video", gettext_lazy("Video call")
    CHAT = "chat", gettext_lazy("Chat")
    OTHER = "other", gettext_lazy("Other")


class BuyingSignal(models.Model):
    class Kind(models.TextChoices):
        EXPLICIT = "explicit", gettext_lazy("Explicit statement")
        CASE_STUDY = "case_study", gettext_lazy("Case-study interest")
        IMPLEMENTATION = "implementation", gettext_lazy("Implementation question")
        PRICING = "pricing", gettext_lazy("Pricing / terms question")
        TIMELINE = "timeline", gettext_lazy("Timeline question")
        STAKEHOLDER = "stakeholder", gettext_lazy("Stakeholder introduced")
        CONTRACT_VIEWED = "contract_viewed", gettext_lazy("Contract viewed")
        ROOM_VISIT = "room_visit", gettext_lazy("Opened the closing room")
        ROOM_QUESTION = "room_question", gettext_lazy("Question in the closing room")
        OTHER = "other", gettext_lazy("Other")

    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="signals")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    note = models.TextField(help_text=gettext_lazy("The buyer's words, or what you noticed."))
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.CALL)
    observed_at = models.DateTimeField(default=timezone.now)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )

    class Meta:
        ordering = ["-observed_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.note[:40]}"


class Ask(models.Model):
    class Answer(models.TextChoices):
        YES = "yes", gettext_lazy("Yes")
        NOT_YET = "not_yet", gettext_lazy("Not yet (objection)")
        NO = "no", gettext_lazy("No")

    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="asks")
    number = models.PositiveSmallIntegerField()
    channel = models.CharField(max_length=10, choices=Channel.choices)
    technique = models.CharField(max_length=20, choices=ClosingTechnique.choices, blank=True)
    statement = models.TextField(help_text=gettext_lazy("What you said when you asked."))
    answer = models.CharField(max_length=10, choices=Answer.choices)
    asked_at = models.DateTimeField(default=timezone.now)
    asked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )

    class Meta:
        ordering = ["number"]
        indexes = [models.Index(fields=["asked_at"], name="ask_asked_at")]
        constraints = [models.UniqueConstraint(fields=["deal", "number"], name="ask_unique_number")]

    def __str__(self) -> str:
        return f"Ask #{self.number}: {self.get_answer_display()}"

    @property
    def ordinal(self) -> str:
        return ordinal_text(self.number)


class Objection(models.Model):
    class Category(models.TextChoices):
        PRICE = "price", gettext_lazy("Price")
        TERMS = "terms", gettext_lazy("Terms")
        TIMELINE = "timeline", gettext_lazy("Timeline")
        AUTHORITY = "authority", gettext_lazy("Authority")
        NEED = "need", gettext_lazy("Need")
        COMPETITOR = "competitor", gettext_lazy("Competitor")
        RISK = "risk", gettext_lazy("Risk")
        OTHER = "other", gettext_lazy("Other")

    class Status(models.TextChoices):
        OPEN = "open", gettext_lazy("Open")
        RESOLVED = "resolved", gettext_lazy("Resolved")
        ACCEPTED_LOSS = "accepted_loss", gettext_lazy("Accepted loss")

    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="objections")
    ask = models.ForeignKey(
        Ask, on_delete=models.SET_NULL, null=True, blank=True, related_name="objections"
    )
    category = models.CharField(max_length=20, choices=Category.choices)
    is_stall = models.BooleanField(
        default=False,
        help_text=gettext_lazy("A stall delays the decision; a real objection blocks it."),
    )
    detail = models.TextField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    resolution = models.TextField(blank=True)
    raised_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-raised_at"]
        indexes = [
            # Dashboard: objections raised in the period, with what the figure counts.
            models.Index(
                fields=["raised_at"],
                name="objection_raised",
                include=["deal", "category", "status", "is_stall"],
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_category_display()}: {self.detail[:40]}"


class Concession(models.Model):
    class Status(models.TextChoices):
        PROPOSED = "proposed", gettext_lazy("Proposed")
        ACCEPTED = "accepted", gettext_lazy("Accepted")
        REJECTED = "rejected", gettext_lazy("Rejected")

    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="concessions")
    give = models.CharField(
        max_length=200, help_text=gettext_lazy("What we give."), validators=[single_line]
    )
    get = models.CharField(
        max_length=200, help_text=gettext_lazy("What we get in return."), validators=[single_line]
    )
    # The structured change of the deal's terms the give-get brings (blank: unchanged).
    new_amount = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"))],
    )
    new_discount_percent = models.DecimalField(
        "New discount (%)",
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
    )
    new_term_months = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)]
    )
    new_billing = models.CharField(max_length=10, choices=BillingFrequency.choices, blank=True)
    new_start_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PROPOSED)
    created_at = models.DateTimeField(default=timezone.now)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.give} ↔ {self.get}"

    #: (concession field, deal field) of the structured term changes.
    TERM_FIELDS = (
        ("new_amount", "amount"),
        ("new_discount_percent", "discount_percent"),
        ("new_term_months", "term_months"),
        ("new_billing", "billing"),
        ("new_start_date", "start_date"),
    )

    @property
    def term_changes(self) -> dict:
        """The deal fields this concession changes, with their new values."""
        return {
            deal_field: getattr(self, field)
            for field, deal_field in self.TERM_FIELDS
            if getattr(self, field) not in (None, "")
        }


class OnboardingStep(models.Model):
    """The handoff checklist a won deal starts for its account manager."""

    class Kind(models.TextChoices):
        INTRO = "intro", gettext_lazy("Introduce the account manager")
        KICKOFF = "kickoff", gettext_lazy("Kickoff meeting")
        FIRST_DELIVERY = "first_delivery", gettext_lazy("First delivery")
        VALUE_VERIFICATION = (
            "value_verification",
            gettext_lazy("Verify the value the buyer expected"),
        )

    deal = models.ForeignKey(Deal, on_delete=models.CASCADE, related_name="onboarding_steps")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    due_date = models.DateField()
    done_at = models.DateTimeField(null=True, blank=True)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        ordering = ["due_date", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["deal", "kind"], name="onboarding_unique_kind")
        ]

    def __str__(self) -> str:
        return self.get_kind_display()


class AppendOnlyError(Exception):
    """The audit log is append-only: events are never changed or deleted."""


class DealEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError(gettext("Deal events are append-only and cannot be updated."))

    def delete(self):
        raise AppendOnlyError(gettext("Deal events are append-only and cannot be deleted."))

    def erase_personal_text(self, *, replacements: dict[str, str]) -> int:
        """The one exception to append-only, for GDPR erasure only (deals.services.
        contact_erase, which audits it): replace a person's name and email in the reason
        and data of these events. Kind, states, actor and time stay as they were."""
        changed = 0
        for event in self.only("pk", "reason", "data"):
            reason, data = event.reason, json.dumps(event.data)
            for old, new in replacements.items():
                if old:
                    reason = reason.replace(old, new)
                    data = data.replace(json.dumps(old)[1:-1], json.dumps(new)[1:-1])
            if reason != event.reason or data != json.dumps(event.data):
                models.QuerySet.update(
                    DealEvent.objects.filter(pk=event.pk), reason=reason, data=json.loads(data)
                )
                changed += 1
        return changed


class DealEvent(models.Model):
    """One immutable line of a deal's history: who did what, when and why."""

    class Kind(models.TextChoices):
        CREATED = "created", gettext_lazy("Deal created")
        TRANSITION = "transition", gettext_lazy("State changed")
        EDITED = "edited", gettext_lazy("Details edited")
        SIGNAL = "signal", gettext_lazy("Buying signal")
        READINESS = "readiness", gettext_lazy("Readiness updated")
        TECHNIQUE = "technique", gettext_lazy("Closing technique chosen")
        ASK = "ask", gettext_lazy("Asked for the sale")
        OBJECTION = "objection", gettext_lazy("Objection")
        CONCESSION = "concession", gettext_lazy("Concession")
        STAKEHOLDER = "stakeholder", gettext_lazy("Buying group")
        CONTRACT = "contract", gettext_lazy("Contract")
        REMINDER = "reminder", gettext_lazy("Follow-up")
        TASK = "task", gettext_lazy("Task")
        MEETING = "meeting", gettext_lazy("Meeting")
        HANDOFF = "handoff", gettext_lazy("Customer handoff")
        OWNER = "owner", gettext_lazy("Owner changed")
        NOTE = "note", gettext_lazy("Note")
        EMAIL = "email", gettext_lazy("Email")
        PLAN = "plan", gettext_lazy("Close plan")
        ROOM = "room", gettext_lazy("Buyer room")

    deal = models.ForeignKey(Deal, on_delete=models.PROTECT, related_name="events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    from_state = models.CharField(max_length=20, choices=DealState.choices, blank=True)
    to_state = models.CharField(max_length=20, choices=DealState.choices, blank=True)
    transition = models.CharField(max_length=40, blank=True)
    reason = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = DealEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["deal", "-created_at"], name="event_deal_time"),
            models.Index(fields=["kind", "to_state", "created_at"], name="event_kind_state"),
        ]

    def __str__(self) -> str:
        if self.kind == self.Kind.TRANSITION:
            source = self.get_from_state_display() if self.from_state else "New"
            return f"{source} → {self.get_to_state_display()}"
        return self.get_kind_display()

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AppendOnlyError(gettext("Deal events are append-only and cannot be changed."))
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError(gettext("Deal events are append-only and cannot be deleted."))

    @property
    def actor_label(self) -> str:
        return str(self.actor) if self.actor_id else "System"


class DealTotal(models.Model):
    """Running totals of the deals that are not archived, per team, owner, state and
    currency: how many, and their amount.

    Kept by `deals.services` in the same transaction as every write that creates a deal or
    changes its state, amount, currency, owner or archived flag (`deal_totals_kept` locks
    the deals' rows, reads them before and after, and adds the difference), so dashboards
    read a few hundred rows instead of aggregating every deal. `manage.py deal_totals`
    checks it against the live aggregate (`--rebuild` recomputes it, e.g. after a bulk
    load that bypassed the services). Rows whose count went back to zero stay.
    """

    # CASCADE: a user or team can only be deleted once no deal points at them (Deal's own
    # PROTECT), and then their rows here only hold zeros.
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=20, choices=DealState.choices)
    currency = models.CharField(max_length=3, choices=Currency.choices)
    deals = models.IntegerField(default=0)
    amount = models.DecimalField(max_digits=18, decimal_places=2, default=Decimal("0"))

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["team", "owner", "state", "currency"], name="deal_total_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.team_id}/{self.owner_id} {self.state} {self.currency}: {self.deals}"


class DealStay(models.Model):
    """One stay of a deal in one state: when it entered, when it left and who moved it.

    Written by `deals.services` in the transaction that writes the matching audit event
    (creation opens the first stay; each transition closes the open stay and opens the
    next), so it always agrees with the event log; dashboards aggregate it instead of
    scanning the log. `left_at` is empty while the deal is still in the state.
    """

    deal = models.ForeignKey(Deal, on_delete=models.PROTECT, related_name="stays")
    state = models.CharField(max_length=20, choices=DealState.choices)
    entered_at = models.DateTimeField()
    left_at = models.DateTimeField(null=True, blank=True)
    entered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    left_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    #: When the stay ended: the seconds the deal has spent in this state so far, this stay
    #: and its earlier ones added up (a reopened deal passes through the states again).
    state_seconds = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["deal", "entered_at", "pk"]
        indexes = [
            models.Index(fields=["deal", "entered_at"], name="stay_deal_entered"),
            # Time in state: finished stays by when they ended, with what the aggregate reads.
            models.Index(
                fields=["left_at", "state", "deal", "state_seconds"],
                name="stay_left",
                condition=models.Q(left_at__isnull=False),
            ),
        ]
        constraints = [
            # At most one open stay per deal: the deal's current state.
            models.UniqueConstraint(
                fields=["deal"], condition=models.Q(left_at__isnull=True), name="stay_one_open"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.deal_id}: {self.state} from {self.entered_at:%Y-%m-%d %H:%M}"

    @property
    def duration(self) -> dt.timedelta | None:
        return (self.left_at - self.entered_at) if self.left_at else None


class PrivacyEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError(gettext("Privacy events are append-only and cannot be updated."))

    def delete(self):
        raise AppendOnlyError(gettext("Privacy events are append-only and cannot be deleted."))


class PrivacyEvent(models.Model):
    """Who exported or erased a contact's personal data, when and on whose request
    (append-only, like the deal timeline)."""

    class Kind(models.TextChoices):
        EXPORTED = "exported", gettext_lazy("Personal data exported")
        ERASED = "erased", gettext_lazy("Personal data erased")

    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="privacy_events")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    reason = models.TextField(
        blank=True, help_text=gettext_lazy("The request it answers (who, when, how).")
    )
    data = models.JSONField(
        default=dict, blank=True, help_text=gettext_lazy("What was exported or erased.")
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = PrivacyEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: contact #{self.contact_id}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AppendOnlyError(gettext("Privacy events are append-only and cannot be changed."))
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError(gettext("Privacy events are append-only and cannot be deleted."))
        raise AppendOnlyError("Privacy events are append-only and cannot be deleted.")


# --- quotas -------------------------------------------------------------------------------


class QuotaPeriod(models.TextChoices):
    MONTH = "month", _("Month")
    QUARTER = "quarter", _("Quarter")


def quota_period_end(kind: str, start: dt.date) -> dt.date:
    """The last day (inclusive) of the month or quarter that begins on `start`."""
    months = 3 if kind == QuotaPeriod.QUARTER else 1
    year, month = divmod(start.month - 1 + months, 12)
    return dt.date(start.year + year, month + 1, 1) - dt.timedelta(days=1)


def quota_period_key(kind: str, start: dt.date) -> str:
    """The period as written in CSV files and URLs: 2026-Q1 or 2026-03."""
    if kind == QuotaPeriod.QUARTER:
        return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    return f"{start:%Y-%m}"


def quota_period_parse(text: str) -> tuple[str, dt.date]:
    """(kind, first day) from "2026-Q1" (a quarter) or "2026-03" (a month); ValueError else."""
    import re

    value = (text or "").strip().upper()
    match = re.fullmatch(r"(\d{4})-?Q([1-4])", value)
    if match:
        return QuotaPeriod.QUARTER, dt.date(int(match[1]), 3 * int(match[2]) - 2, 1)
    match = re.fullmatch(r"(\d{4})-(\d{1,2})", value)
    if match and 1 <= int(match[2]) <= 12:
        return QuotaPeriod.MONTH, dt.date(int(match[1]), int(match[2]), 1)
    raise ValueError(text)


def quota_period_label(kind: str, start: dt.date) -> str:
    """The period in words, in the user's language: "Q1 2026" or "Mar 2026"."""
    from django.utils.formats import date_format

    if kind == QuotaPeriod.QUARTER:
        quarter = (start.month - 1) // 3 + 1
        return _("Q%(quarter)s %(year)s") % {"quarter": quarter, "year": start.year}
    return date_format(start, "M Y")


class Quota(models.Model):
    """What a rep is expected to win in one month or quarter, in one currency.

    Set only through `deals.services.quota_set`, which keeps the append-only history
    (`QuotaChange`: who set what, when). Nothing is deleted: a quota no longer wanted is
    set to zero.
    """

    team = models.ForeignKey(
        Team, on_delete=models.PROTECT, related_name="quotas", verbose_name=_("team")
    )
    rep = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="quotas",
        verbose_name=_("rep"),
    )
    period_kind = models.CharField(_("period"), max_length=10, choices=QuotaPeriod.choices)
    period_start = models.DateField(_("first day of the period"))
    currency = models.CharField(_("currency"), max_length=3, choices=Currency.choices)
    amount = models.DecimalField(
        _("quota"),
        max_digits=14,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0"))],
    )
    set_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    set_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("quota")
        verbose_name_plural = _("quotas")
        ordering = ["-period_start", "team", "rep", "currency"]
        constraints = [
            models.UniqueConstraint(
                fields=["rep", "period_kind", "period_start", "currency"],
                name="quota_unique_rep_period_currency",
            )
        ]
        indexes = [
            models.Index(fields=["team", "period_start"], name="quota_team_period"),
        ]

    def __str__(self) -> str:
        return f"{self.rep} {self.period_label}: {self.amount} {self.currency}"

    @property
    def period_end(self) -> dt.date:
        return quota_period_end(self.period_kind, self.period_start)

    @property
    def period_key(self) -> str:
        return quota_period_key(self.period_kind, self.period_start)

    @property
    def period_label(self) -> str:
        return quota_period_label(self.period_kind, self.period_start)


class QuotaChangeQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("Quota changes are append-only and cannot be updated.")

    def delete(self):
        raise AppendOnlyError("Quota changes are append-only and cannot be deleted.")


class QuotaChange(models.Model):
    """One line of a quota's history: who set which amount, when, and from where
    (append-only, like the deal timeline)."""

    class Source(models.TextChoices):
        PAGE = "page", _("Quotas page")
        ADMIN = "admin", _("Admin")
        IMPORT = "import", _("CSV import")

    quota = models.ForeignKey(Quota, on_delete=models.PROTECT, related_name="changes")
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="+")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    old_amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    new_amount = models.DecimalField(max_digits=14, decimal_places=2)
    source = models.CharField(max_length=10, choices=Source.choices)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = QuotaChangeQuerySet.as_manager()

    class Meta:
        verbose_name = _("quota change")
        verbose_name_plural = _("quota history")
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.quota}: {self.old_amount} → {self.new_amount}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise AppendOnlyError("Quota changes are append-only and cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Quota changes are append-only and cannot be deleted.")


# --- the workspace: saved views and bulk jobs ------------------------------------------------


class SavedView(models.Model):
    """A named set of filters and sort of the deal list or the board.

    Private to its owner unless shared with the owner's team; the team's manager may make one
    shared view the team's default for its page. Only the parameters are stored: they are
    applied with the viewer's own visibility, so a shared view never shows another team's deals.
    """

    class Page(models.TextChoices):
        DEAL_LIST = "deal_list", _("Deal list")
        BOARD = "board", _("Board")

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views"
    )
    team = models.ForeignKey(
        Team, on_delete=models.CASCADE, null=True, blank=True, related_name="saved_views"
    )
    page = models.CharField(max_length=20, choices=Page.choices)
    name = models.CharField(max_length=80, validators=[single_line])
    params = models.JSONField(default=dict, blank=True)
    shared = models.BooleanField(default=False)
    team_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "page", "name"], name="saved_view_unique_name_per_owner"
            ),
            models.UniqueConstraint(
                fields=["team", "page"],
                condition=models.Q(team_default=True),
                name="saved_view_one_default_per_team_page",
            ),
            models.CheckConstraint(
                condition=models.Q(team_default=False) | models.Q(shared=True),
                name="saved_view_default_is_shared",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class BulkJob(models.Model):
    """One bulk action on many deals: who asked, what, with which inputs, and how far it got.

    Each deal is a BulkJobItem, acted on in its own transaction that also records its result,
    so a job run again after a worker died only does what is left (see deals.services).
    """

    class Action(models.TextChoices):
        REASSIGN = "reassign", _("Reassign")
        ARCHIVE = "archive", _("Archive")
        TRANSITION = "transition", _("Move state")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")

    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=20, choices=Action.choices)
    params = models.JSONField(default=dict, blank=True, help_text="The batch's inputs.")
    selection = models.JSONField(
        default=dict, blank=True, help_text="The ticked deal ids, or the filters of “all matching”."
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} · {self.total} · #{self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("deals:bulk_job", args=[self.pk])


class BulkJobItem(models.Model):
    """One deal of a bulk job and what happened to it."""

    class Outcome(models.TextChoices):
        PENDING = "pending", _("Waiting")
        DONE = "done", _("Done")
        REFUSED = "refused", _("Refused")

    job = models.ForeignKey(BulkJob, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField()
    #: The id as given; `deal` is empty when the user may not see such a deal (never named).
    ref = models.PositiveBigIntegerField()
    deal = models.ForeignKey(
        Deal, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    title = models.CharField(max_length=200, blank=True)
    seen_state = models.CharField(max_length=20, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.PENDING)
    message = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job", "position"]
        constraints = [
            models.UniqueConstraint(fields=["job", "ref"], name="bulk_item_once_per_job"),
        ]
        indexes = [models.Index(fields=["job", "outcome", "position"])]

    def __str__(self) -> str:
        return f"{self.title or self.ref}: {self.get_outcome_display()}"
