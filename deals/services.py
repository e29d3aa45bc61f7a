"""Every write that changes a deal's business state: one function per use case.

Each function is atomic and writes its audit event (DealEvent) in the same
transaction. State changes go through `deal_transition`, the only caller of the
django-fsm transition methods. Work that talks to the outside world (email,
e-signature, reminders) is started after commit, never inside the transaction.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Max, OuterRef, Q, Subquery, Value
from django.db.models.functions import Replace
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext, gettext_lazy, ngettext
from django.utils.translation import gettext as _
from django_fsm import ConcurrentTransition

from .models import (
    OPEN_STATES,
    READINESS_ITEMS,
    Account,
    Ask,
    BulkJob,
    BulkJobItem,
    BuyingSignal,
    ClosingTechnique,
    Concession,
    Contact,
    Currency,
    Deal,
    DealEvent,
    DealState,
    DealStay,
    DealTotal,
    LossReason,
    Objection,
    OnboardingStep,
    PrivacyEvent,
    Quota,
    QuotaChange,
    QuotaPeriod,
    SavedView,
    Stakeholder,
    Team,
    User,
    in_sentence,
    quota_period_parse,
    readiness_derivation,
)
from .signals import (
    concession_accepted,
    contact_data_collect,
    contact_data_erase,
    deal_archived,
    deal_reassigned,
    deal_state_changed,
)


class DealError(Exception):
    """A business rule refused the change; the message is meant for the user."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class TransitionBlocked(DealError):
    """The state machine does not allow this move now."""


class DealConflict(DealError):
    """Someone else changed the deal since it was loaded."""


class NotPermitted(DealError, PermissionDenied):
    """The user may not make this change."""


class RecordRequired(TransitionBlocked):
    """The move only happens inside the use case that makes its record (a sent contract, a
    numbered ask); `how` says where, `api` which endpoint an integration calls instead."""

    def __init__(self, message: str, *, step: str, anchor: str, api: str):
        super().__init__(message)
        self.step = step
        self.anchor = anchor
        self.api = api


def _single_line(value: str, what: str) -> str:
    """Titles and names are one line (a newline breaks email headers); stripped."""
    value = (value or "").strip()
    if "\n" in value or "\r" in value:
        raise DealError(
            gettext("%(what)s must be a single line (no line breaks).") % {"what": what}
        )
    return value


# --- the state machine -----------------------------------------------------

#: Transition names in the order they are offered to users.
TRANSITION_NAMES = [
    "ask",
    "send_agreement",
    "negotiate",
    "follow_up",
    "mark_won",
    "override_won",
    "mark_lost",
    "reopen",
    "accept_late_signature",
]

#: Transition fields written by deal_transition (never the whole row: a
#: concurrent edit of the next step must not be overwritten).
_TRANSITION_FIELDS = [
    "state",
    "state_changed_at",
    "last_activity_at",
    "closed_at",
    "loss_reason",
    "loss_note",
    "won_override_reason",
    "updated_at",
]


@dataclass(frozen=True)
class TransitionInfo:
    name: str
    label: str
    target: str
    needs_reason: bool
    blockers: tuple[str, ...]
    #: The use case that alone fires this move, and where the user finds it (see Deal).
    made_by: str = ""
    how: str = ""
    step: str = ""
    anchor: str = ""

    @property
    def allowed(self) -> bool:
        return not self.blockers


def _fsm_transition(deal: Deal, name: str):
    method = getattr(type(deal), name, None)
    meta = getattr(method, "_django_fsm", None)
    if name not in TRANSITION_NAMES or meta is None:
        raise TransitionBlocked(gettext("“%(name)s” is not a deal transition.") % {"name": name})
    return meta.get_transition(deal.state)


def transition_record_rule(name: str) -> dict[str, str]:
    """The transition's `made_by` metadata (empty when any path may fire it)."""
    method = getattr(Deal, name, None)
    meta = getattr(method, "_django_fsm", None)
    if meta is None:
        return {}
    custom = next(iter(meta.transitions.values())).custom
    if not custom.get("made_by"):
        return {}
    return {k: custom.get(k, "") for k in ("made_by", "how", "api", "anchor", "step", "label")}


def transition_admin_actions() -> list[tuple[str, dict[str, Any]]]:
    """(name, {label, needs_reason}) of the transitions any path may fire, in order."""
    actions = []
    for name in TRANSITION_NAMES:
        custom = next(iter(getattr(Deal, name)._django_fsm.transitions.values())).custom
        if custom.get("made_by"):
            continue
        actions.append(
            (name, {"label": custom["label"], "needs_reason": bool(custom.get("needs_reason"))})
        )
    return actions


def record_required(deal: Deal, name: str) -> RecordRequired | None:
    """The refusal for firing `name` outside its use case, or None when any path may."""
    rule = transition_record_rule(name)
    if not rule:
        return None
    api = rule["api"].replace("{deal_id}", str(deal.pk))
    return RecordRequired(
        f"“{rule['label']}” cannot be fired on its own. {rule['how']}",
        step=rule["step"],
        anchor=rule["anchor"],
        api=api,
    )


def transition_blockers(
    deal: Deal, name: str, user: User | None, *, check_inputs: bool = True
) -> list[str]:
    """Why `user` cannot fire `name` on `deal` now, in plain words (empty: allowed).

    With `check_inputs=False` the guards that only need a form input (loss
    reason, override reason) are skipped, so pages can offer the move and ask.
    """
    fsm = _fsm_transition(deal, name)
    if fsm is None:
        label = getattr(type(deal), name)._django_fsm.transitions
        any_label = next(iter(label.values())).custom.get("label", name)
        return [f"A deal in “{deal.get_state_display()}” cannot do “{any_label}”."]
    blockers = []
    for condition in fsm.conditions:
        if not check_inputs and getattr(condition, "input_required", False):
            continue
        if not condition(deal):
            blockers.append(str(condition.blocked_message))
    if user is not None and not fsm.has_perm(deal, user):
        blockers.append(str(fsm.permission.denied_message))
    return blockers


def deal_transitions_for(deal: Deal, user: User) -> list[TransitionInfo]:
    """The moves `user` may offer on `deal` from its current state (with any blockers)."""
    infos = []
    for name in TRANSITION_NAMES:
        fsm = _fsm_transition(deal, name)
        if fsm is None or not fsm.has_perm(deal, user):
            continue
        infos.append(
            TransitionInfo(
                name=name,
                label=fsm.custom.get("label", name),
                target=fsm.target,
                needs_reason=bool(fsm.custom.get("needs_reason")),
                blockers=tuple(transition_blockers(deal, name, user, check_inputs=False)),
                made_by=fsm.custom.get("made_by", ""),
                how=fsm.custom.get("how", ""),
                step=fsm.custom.get("step", ""),
                anchor=fsm.custom.get("anchor", ""),
            )
        )
    return infos


def deal_transition(
    *,
    deal: Deal,
    transition: str,
    by: User | None,
    reason: str = "",
    loss_reason: str = "",
    expected_state: str | None = None,
    data: dict[str, Any] | None = None,
    as_system: bool = False,
    use_case: str = "",
) -> Deal:
    """Fire one transition on `deal`, with its audit event, in one transaction.

    `by` is the user acting; `as_system=True` (with `by=None`) is for the
    e-signature webhook and workers, which act on the buyer's behalf and skip
    the user permission check (never the guards). `expected_state` is the
    state the user saw: if the deal moved meanwhile, DealConflict is raised.
    A transition whose metadata names the use case that makes it (`made_by`) is
    refused with RecordRequired unless that use case passes its name as `use_case`.
    """
    if by is None and not as_system:
        raise NotPermitted(gettext("A transition needs the user who makes it."))
    reason = (reason or "").strip()
    if loss_reason and loss_reason not in LossReason.values:
        raise TransitionBlocked(
            gettext("“%(loss_reason)s” is not a loss reason.") % {"loss_reason": loss_reason}
        )
    snapshot = {f: getattr(deal, f) for f in ("loss_reason", "loss_note", "won_override_reason")}
    try:
        with transaction.atomic():
            if expected_state is not None and deal.state != expected_state:
                raise DealConflict(_conflict_message(deal, by))
            if transition == "mark_lost":
                deal.loss_reason = loss_reason
                deal.loss_note = reason
            elif transition == "override_won":
                deal.won_override_reason = reason
            deal._transition_reason = reason
            fsm = _fsm_transition(deal, transition)
            if fsm is not None and not as_system and not fsm.has_perm(deal, by):
                raise NotPermitted(fsm.permission.denied_message)
            rule = transition_record_rule(transition)
            if rule and use_case != rule["made_by"]:
                raise record_required(deal, transition)
            blockers = transition_blockers(deal, transition, None)
            if blockers:
                raise TransitionBlocked(" ".join(blockers))
            from_state = deal.state
            getattr(deal, transition)()
            now = timezone.now()
            deal.state_changed_at = now
            deal.last_activity_at = now
            # A transition may name extra fields it sets (never written otherwise, so a
            # concurrent archive is not undone by an unrelated move).
            extra = list(fsm.custom.get("also_saves", ())) if fsm is not None else []
            with deal_totals_kept(deal.pk):
                deal.save(update_fields=[*_TRANSITION_FIELDS, *extra])
            event = DealEvent.objects.create(
                deal=deal,
                actor=by,
                kind=DealEvent.Kind.TRANSITION,
                transition=transition,
                from_state=from_state,
                to_state=deal.state,
                reason=reason or (deal.get_loss_reason_display() if loss_reason else ""),
                data={**(data or {}), **({"loss_reason": loss_reason} if loss_reason else {})},
            )
            _deal_stays_move(deal=deal, event=event)
            if deal.state == DealState.CLOSED_WON:
                _deal_start_handoff(deal=deal, by=by)
            # Receivers do their database work inside this transaction (e.g. the
            # follow-up app cancels reminders); outside effects use on_commit.
            deal_state_changed.send(sender=Deal, deal=deal, event=event, by=by)
    except Exception as exc:
        # Nothing was committed: give the caller back the deal as it was.
        for field, value in snapshot.items():
            setattr(deal, field, value)
        if isinstance(exc, DealError):
            raise  # refused before the transition method ran: the in-memory deal is intact
        deal.refresh_from_db()
        if isinstance(exc, ConcurrentTransition):
            raise DealConflict(_conflict_message(deal, by)) from None
        raise
    return deal


def _deal_stays_move(*, deal: Deal, event: DealEvent) -> None:
    """Close the deal's open stay and open one in its new state, at the event's time.

    Three statements in the transition's transaction (the deal row is already locked by
    the conditional state update), so the stays table that time in state and the deal's
    stage history read always agrees with the audit log. A closed stay carries the
    deal's total seconds in that state so far, so dashboards never add up histories.
    """
    earlier = DealStay.objects.filter(
        deal=OuterRef("deal"), state=OuterRef("state"), left_at__isnull=False
    ).order_by("-left_at")
    current = (
        DealStay.objects.filter(deal=deal, left_at__isnull=True)
        .annotate(before=Subquery(earlier.values("state_seconds")[:1]))
        .first()
    )
    if current is not None:
        spent = (event.created_at - current.entered_at).total_seconds()
        DealStay.objects.filter(pk=current.pk).update(
            left_at=event.created_at,
            left_by=event.actor,
            state_seconds=(current.before or 0) + spent,
        )
    DealStay.objects.create(
        deal=deal, state=event.to_state, entered_at=event.created_at, entered_by=event.actor
    )


def _money(value: Any) -> Decimal:
    """Money is a Decimal with two places; anything else is refused clearly."""
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except (ArithmeticError, ValueError, TypeError):
        raise DealError(gettext("“%(value)s” is not an amount.") % {"value": value}) from None
    if amount < 0 or not amount.is_finite():
        raise DealError(gettext("The amount cannot be negative."))
    return amount


def _conflict_message(deal: Deal, by: User | None = None) -> str:
    """Why a write based on an old view of the deal was refused, naming who changed it."""
    current = Deal.objects.filter(pk=deal.pk).values_list("state", flat=True).first()
    label = DealState(current).label if current else gettext("deleted")
    last = (
        DealEvent.objects.filter(deal_id=deal.pk, kind=DealEvent.Kind.TRANSITION)
        .select_related("actor")
        .order_by("-created_at", "-pk")
        .first()
    )
    if by is not None and last is not None and last.actor_id == by.pk:
        who = gettext("You already changed this deal, in another tab or window")
    elif last is not None and last.actor is not None:
        who = gettext("%(actor)s changed this deal meanwhile") % {"actor": last.actor}
    else:
        who = gettext("This deal changed since you opened this page")
    return gettext(
        "%(who)s: it is now “%(state)s”. Nothing was changed by this click; "
        "open the deal as it is now to see what still makes sense."
    ) % {"who": who, "state": label}


def _deal_start_handoff(*, deal: Deal, by: User | None) -> None:
    """Won: the account becomes a customer and onboarding starts for its account manager."""
    account = deal.account
    manager = account.account_manager or deal.team.account_manager
    if manager is None:
        manager = deal.team.members.filter(role=User.Role.MANAGER, is_active=True).first()
    if account.status != Account.Status.CUSTOMER:
        account.status = Account.Status.CUSTOMER
        account.became_customer_at = timezone.now()
    account.account_manager = manager
    account.save(update_fields=["status", "became_customer_at", "account_manager", "updated_at"])
    today = timezone.localdate()
    offsets = {
        OnboardingStep.Kind.INTRO: 1,
        OnboardingStep.Kind.KICKOFF: 7,
        OnboardingStep.Kind.FIRST_DELIVERY: 30,
        OnboardingStep.Kind.VALUE_VERIFICATION: 90,
    }
    for kind, days in offsets.items():
        OnboardingStep.objects.get_or_create(
            deal=deal,
            kind=kind,
            defaults={"assignee": manager, "due_date": today + dt.timedelta(days=days)},
        )
    DealEvent.objects.create(
        deal=deal,
        actor=by,
        kind=DealEvent.Kind.HANDOFF,
        reason=f"{account} is now a customer; handed to {manager or 'the team'} for onboarding.",
        data={"account_manager_id": manager.pk if manager else None},
    )


# --- helpers ---------------------------------------------------------------


def _require_workable(deal: Deal, by: User) -> None:
    from .models import can_work_deal

    if not can_work_deal(deal, by):
        raise NotPermitted(can_work_deal.denied_message)


def _record(
    deal: Deal,
    by: User | None,
    kind: str,
    reason: str = "",
    *,
    counts_as_activity: bool = True,
    **data: Any,
) -> DealEvent:
    """Write one timeline event and (unless it is housekeeping) mark the deal as active now."""
    now = timezone.now()
    if counts_as_activity:
        Deal.objects.filter(pk=deal.pk).update(last_activity_at=now)
        deal.last_activity_at = now
    return DealEvent.objects.create(
        deal=deal, actor=by, kind=kind, reason=reason, data=data, created_at=now
    )


def deal_activity_record(
    *,
    deal: Deal,
    by: User | None,
    kind: str,
    reason: str = "",
    counts_as_activity: bool = True,
    **data: Any,
) -> DealEvent:
    """Put something another app did (contract sent, reminder sent...) on the deal's timeline.

    Call it inside the caller's transaction so the event commits with the change.
    `counts_as_activity=False` is for system housekeeping (follow-ups skipped or cancelled,
    a send that failed): it is logged, but the deal's "last activity" does not move, so a
    deal nobody works on still shows as stalled.
    """
    if kind not in DealEvent.Kind.values:
        raise DealError(gettext("“%(kind)s” is not a timeline event kind.") % {"kind": kind})
    return _record(deal, by, kind, reason, counts_as_activity=counts_as_activity, **data)


def deal_activity_record_many(
    *, entries: list[dict[str, Any]], by: User | None = None, mark_active: bool = True
) -> int:
    """Many timeline events at once (a batch of follow-ups sent): one insert, one update.

    Each entry has `deal`, `kind`, `reason` and optionally `data`. Call it inside the
    caller's transaction, like `deal_activity_record`. With `mark_active=False` the deals'
    last activity is left to the caller (`deals_mark_active` once for a whole batch).
    """
    if not entries:
        return 0
    bad = {e["kind"] for e in entries} - set(DealEvent.Kind.values)
    if bad:
        raise DealError(
            gettext("Not timeline event kinds: %(bad)s.") % {"bad": ", ".join(sorted(bad))}
        )
    now = timezone.now()
    if mark_active:
        deals_mark_active(deal_ids={e["deal"].pk for e in entries}, at=now)
    DealEvent.objects.bulk_create(
        [
            DealEvent(
                deal=e["deal"],
                actor=by,
                kind=e["kind"],
                reason=e.get("reason", ""),
                data=e.get("data", {}),
                created_at=now,
            )
            for e in entries
        ]
    )
    return len(entries)


# --- running totals (deals.DealTotal) -------------------------------------------------

_TOTAL_FIELDS = ("team_id", "owner_id", "state", "currency", "amount", "archived_at")


def _totals_rows(deal_ids, *, lock: bool) -> dict[int, tuple]:
    """What the totals count of these deals, read from their rows (locked: nobody can
    change them until the transaction ends, so before and after are exact)."""
    rows = Deal.objects.filter(pk__in=list(deal_ids)).order_by("pk")
    if lock:
        rows = rows.select_for_update()
    return {row[0]: row[1:] for row in rows.values_list("pk", *_TOTAL_FIELDS)}


def _totals_apply(before: dict[int, tuple], after: dict[int, tuple]) -> None:
    """Add the difference between the deals' rows before and after to DealTotal."""
    deltas: dict[tuple, list] = {}
    for rows, sign in ((before, -1), (after, 1)):
        for team_id, owner_id, state, currency, amount, archived_at in rows.values():
            if archived_at is not None:
                continue
            entry = deltas.setdefault((team_id, owner_id, state, currency), [0, Decimal("0")])
            entry[0] += sign
            entry[1] += sign * (amount or Decimal("0"))
    changes = [(key, n, amount) for key, (n, amount) in sorted(deltas.items()) if n or amount]
    if not changes:
        return
    table = connection.ops.quote_name(DealTotal._meta.db_table)
    values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(changes))
    params = []
    for (team_id, owner_id, state, currency), n, amount in changes:  # key order: no deadlock
        params += [team_id, owner_id, state, currency, n, str(amount)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (team_id, owner_id, state, currency, deals, amount) "
            f"VALUES {values} ON CONFLICT (team_id, owner_id, state, currency) DO UPDATE SET "
            f"deals = {table}.deals + excluded.deals, amount = {table}.amount + excluded.amount",
            params,
        )


@contextlib.contextmanager
def deal_totals_kept(*deal_ids: int):
    """Keep DealTotal right across a write to these deals, inside the caller's transaction:
    locks their rows (the deal's row first, like every service), and after the write adds
    the difference of what the totals count (state, amount, currency, owner, team,
    archived). Every service that changes one of those fields writes inside this."""
    if not connection.in_atomic_block:
        raise RuntimeError("deal_totals_kept runs inside the writing service's transaction.")
    before = _totals_rows(deal_ids, lock=True)
    yield
    _totals_apply(before, _totals_rows(deal_ids, lock=False))


def deal_totals_rebuild() -> int:
    """Recompute DealTotal from the deals (after a bulk load that bypassed the services,
    or to repair it); returns the number of rows. One transaction, tables locked."""
    from django.db.models import Count, Sum

    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    f"LOCK TABLE {DealTotal._meta.db_table} IN EXCLUSIVE MODE; "
                    f"LOCK TABLE {Deal._meta.db_table} IN SHARE MODE"
                )
        DealTotal.objects.all().delete()
        rows = (
            Deal.objects.filter(archived_at__isnull=True)
            .values("team_id", "owner_id", "state", "currency")
            .annotate(n=Count("id"), total=Sum("amount"))
            .order_by()
        )
        totals = [
            DealTotal(
                team_id=r["team_id"],
                owner_id=r["owner_id"],
                state=r["state"],
                currency=r["currency"],
                deals=r["n"],
                amount=r["total"] or Decimal("0"),
            )
            for r in rows
        ]
        DealTotal.objects.bulk_create(totals, batch_size=1000)
    return len(totals)


def deal_totals_differences() -> list[dict]:
    """Where DealTotal and the live aggregate over the deals disagree (empty: they agree)."""
    from django.db.models import Count, Sum

    live = {
        (r["team_id"], r["owner_id"], r["state"], r["currency"]): (r["n"], r["total"])
        for r in Deal.objects.filter(archived_at__isnull=True)
        .values("team_id", "owner_id", "state", "currency")
        .annotate(n=Count("id"), total=Sum("amount"))
        .order_by()
    }
    kept = {
        (t.team_id, t.owner_id, t.state, t.currency): (t.deals, t.amount)
        for t in DealTotal.objects.all()
    }
    differences = []
    for key in sorted(set(live) | set(kept), key=str):
        n_live, amount_live = live.get(key, (0, Decimal("0")))
        n_kept, amount_kept = kept.get(key, (0, Decimal("0")))
        if n_live != n_kept or (amount_live or 0) != (amount_kept or 0):
            team_id, owner_id, state, currency = key
            differences.append(
                {
                    "team_id": team_id,
                    "owner_id": owner_id,
                    "state": state,
                    "currency": currency,
                    "live": (n_live, amount_live),
                    "kept": (n_kept, amount_kept),
                }
            )
    return differences


def row_lock(instance: Any) -> Any:
    """Lock `instance`'s row until the transaction ends, and reload it in place.

    Every service that checks a status and then changes it calls this first, inside
    its transaction: a second writer waits here, then reads the decision the first one
    made (and is refused with DealConflict) instead of making it again. Lock the deal
    before any of its records, the order transitions take, so two writers never
    deadlock. DealConflict when the row is gone.
    """
    model = type(instance)
    try:
        instance.refresh_from_db(from_queryset=model._base_manager.select_for_update())
    except model.DoesNotExist:
        raise DealConflict(
            gettext("This %(verbose_name)s was removed by someone else meanwhile. Reload the page.")
            % {"verbose_name": model._meta.verbose_name}
        ) from None
    return instance


def deal_lock(deal_id: int) -> Deal:
    """The deal's row, locked until the transaction ends (see `row_lock`)."""
    try:
        return Deal.objects.select_for_update().get(pk=deal_id)
    except Deal.DoesNotExist:
        raise DealConflict(gettext("This deal was removed meanwhile. Reload the page.")) from None


def conflict_already(what: str, *, by: Any = None, when: dt.datetime | None = None):
    """The refusal a stale second writer gets: what was decided, by whom and when."""
    parts = [gettext("by %(user)s") % {"user": by}] if by else []
    if when:
        parts.append(date_format(timezone.localtime(when), "d M Y, H:i"))
    details = f" ({', '.join(parts)})" if parts else ""
    return DealConflict(
        gettext("%(what)s%(details)s. Reload the page to see it.")
        % {"what": what, "details": details}
    )


def deals_mark_active(*, deal_ids, at: dt.datetime | None = None) -> int:
    """Something happened on these deals at `at` (default now): their last activity."""
    if not deal_ids:
        return 0
    return Deal.objects.filter(pk__in=deal_ids).update(last_activity_at=at or timezone.now())


def _require_open(deal: Deal) -> None:
    if deal.state not in OPEN_STATES:
        raise DealError(gettext("This deal is closed. A manager can reopen a lost deal."))


# --- accounts and contacts -------------------------------------------------


@transaction.atomic
def account_create(*, by: User, team: Team, name: str, **fields: Any) -> Account:
    name = _single_line(name, "The account's name")
    if not name:
        raise DealError(gettext("An account needs a name."))
    if Account.objects.filter(team=team, name__iexact=name).exists():
        raise DealError(
            gettext("Your team already has an account named “%(name)s”.") % {"name": name}
        )
    return Account.objects.create(team=team, owner=by, name=name, **fields)


@transaction.atomic
def contact_create(*, by: User, account: Account, first_name: str, last_name: str, **fields):
    first_name = _single_line(first_name, "The first name")
    last_name = _single_line(last_name, "The last name")
    if not (first_name or last_name):
        raise DealError(gettext("A contact needs a name."))
    if "job_title" in fields:
        fields["job_title"] = _single_line(fields["job_title"], "The job title")
    return Contact.objects.create(
        account=account, first_name=first_name, last_name=last_name, **fields
    )


def _require_account_editor(account: Account, by: User) -> None:
    """The account's owner, its team's manager or an admin may edit it and its contacts."""
    if by.is_superuser or by.pk == account.owner_id:
        return
    if by.is_manager and by.team_id is not None and by.team_id == account.team_id:
        return
    raise NotPermitted(
        gettext("Only the account's owner or the team's manager can change this account.")
    )


#: Account fields editable through account_update.
ACCOUNT_EDITABLE_FIELDS = {"name", "website", "industry", "account_manager"}


@transaction.atomic
def account_update(*, account: Account, by: User, **changes: Any) -> Account:
    """Edit an account's details (never its team, owner or customer status)."""
    _require_account_editor(account, by)
    unknown = set(changes) - ACCOUNT_EDITABLE_FIELDS
    if unknown:
        raise DealError(
            gettext("These fields cannot be edited here: %(unknown)s.")
            % {"unknown": ", ".join(sorted(unknown))}
        )
    if "name" in changes:
        changes["name"] = _single_line(changes["name"], "The account's name")
        if not changes["name"]:
            raise DealError(gettext("An account needs a name."))
        clash = Account.objects.filter(team_id=account.team_id, name__iexact=changes["name"])
        if clash.exclude(pk=account.pk).exists():
            raise DealError(
                gettext("Your team already has an account named “%(name)s”.")
                % {"name": changes["name"]}
            )
    manager = changes.get("account_manager")
    if manager is not None and manager.team_id != account.team_id:
        raise DealError(gettext("The account manager must be in the account's team."))
    changed = [f for f, v in changes.items() if getattr(account, f) != v]
    for field in changed:
        setattr(account, field, changes[field])
    if changed:
        account.save(update_fields=[*changed, "updated_at"])
    return account


#: Contact fields editable through contact_update.
CONTACT_EDITABLE_FIELDS = {"first_name", "last_name", "email", "phone", "job_title"}


@transaction.atomic
def contact_update(*, contact: Contact, by: User, **changes: Any) -> Contact:
    """Edit a contact's details; anyone who may edit the account may edit its contacts."""
    _require_account_editor(contact.account, by)
    unknown = set(changes) - CONTACT_EDITABLE_FIELDS
    if unknown:
        raise DealError(
            gettext("These fields cannot be edited here: %(unknown)s.")
            % {"unknown": ", ".join(sorted(unknown))}
        )
    for name_field, what in (
        ("first_name", "The first name"),
        ("last_name", "The last name"),
        ("job_title", "The job title"),
    ):
        if name_field in changes:
            changes[name_field] = _single_line(changes[name_field], what)
    first = changes.get("first_name", contact.first_name)
    last = changes.get("last_name", contact.last_name)
    if not (first or last):
        raise DealError(gettext("A contact needs a name."))
    changed = [f for f, v in changes.items() if getattr(contact, f) != v]
    for field in changed:
        setattr(contact, field, changes[field])
    if changed:
        contact.save(update_fields=changed)
    return contact


# --- deals -------------------------------------------------------------------


@transaction.atomic
def deal_create(
    *,
    by: User,
    account: Account,
    title: str,
    owner: User | None = None,
    amount: Decimal = Decimal("0"),
    currency: str = "",
    parent_deal: Deal | None = None,
    **fields: Any,
) -> Deal:
    """Open a deal at `intent_spotted` for `owner` (default: the creator)."""
    owner = owner or by
    if owner.team_id is None:
        raise DealError(
            gettext("%(owner)s is not in a team yet; an admin must add them to one.")
            % {"owner": owner}
        )
    if account.team_id != owner.team_id:
        raise DealError(gettext("The account belongs to another team."))
    amount = _money(amount)
    title = _single_line(title, "The deal's title")
    if not title:
        raise DealError(gettext("A deal needs a title."))
    deal = Deal.objects.create(
        title=title,
        account=account,
        team_id=owner.team_id,
        owner=owner,
        amount=amount,
        currency=currency or owner.team.currency,
        parent_deal=parent_deal,
        **fields,
    )
    event = _record(
        deal,
        by,
        DealEvent.Kind.CREATED,
        f"Follow-on from “{parent_deal}”" if parent_deal else "",
        amount=str(deal.amount),
        currency=deal.currency,
    )
    DealStay.objects.create(deal=deal, state=deal.state, entered_at=event.created_at, entered_by=by)
    _totals_apply({}, _totals_rows([deal.pk], lock=False))
    return deal


#: Fields a rep may edit directly (never the state, closing fields or owner).
DEAL_EDITABLE_FIELDS = {
    "title",
    "amount",
    "currency",
    "expected_close_date",
    "next_step",
    "next_step_due",
    "metrics",
    "identified_pain",
    "decision_criteria",
    "decision_process",
    "competition",
    "term_months",
    "start_date",
    "billing",
    "discount_percent",
    "review_meeting_at",
}


#: The signed terms: frozen once the deal is won (a manager may amend them, with a reason).
FROZEN_WHEN_WON = {"amount", "currency", "term_months", "start_date", "billing", "discount_percent"}


class TermsFrozen(DealError):
    """The deal is won: its signed terms are not edited like other details."""


def deal_update(*, deal: Deal, by: User, **changes: Any) -> Deal:
    """Edit the deal's details; the timeline records what changed (old → new).

    Once the deal is won its signed terms (FROZEN_WHEN_WON) are refused here: a manager
    changes them with `deal_terms_amend` (a reason, audited) or opens a follow-on deal.
    """
    _require_workable(deal, by)
    unknown = set(changes) - DEAL_EDITABLE_FIELDS
    if unknown:
        raise DealError(
            gettext("These fields cannot be edited here: %(unknown)s.")
            % {"unknown": ", ".join(sorted(unknown))}
        )
    return _deal_apply_changes(deal=deal, by=by, changes=changes)


#: Editable fields the running totals (DealTotal) count.
_TOTALS_EDITABLE = {"amount", "currency"}


def _deal_apply_changes(
    *, deal: Deal, by: User, changes: dict[str, Any], amend_reason: str = ""
) -> Deal:
    if "amount" in changes:
        changes["amount"] = _money(changes["amount"])
    if "discount_percent" in changes:
        changes["discount_percent"] = _money(changes["discount_percent"])
        if changes["discount_percent"] > 100:
            raise DealError(gettext("A discount is at most 100%."))
    if "title" in changes:
        changes["title"] = _single_line(changes["title"], "The deal's title")
        if not changes["title"]:
            raise DealError(gettext("A deal needs a title."))
    if "next_step" in changes:
        changes["next_step"] = _single_line(changes["next_step"], "The next step")
    if not amend_reason:
        frozen = sorted(f for f in set(changes) & FROZEN_WHEN_WON if getattr(deal, f) != changes[f])
        if frozen and deal.state == DealState.CLOSED_WON:
            raise TermsFrozen(
                "This deal is won: its signed terms ("
                + ", ".join(Deal._meta.get_field(f).verbose_name for f in frozen)
                + ") are frozen. A manager can amend them with a reason, "
                "or open a follow-on deal."
            )
    diff = {}
    for field, value in changes.items():
        old = getattr(deal, field)
        if old != value:
            diff[field] = [_jsonable(old), _jsonable(value)]
            setattr(deal, field, value)
    if not diff:
        return deal
    try:
        with transaction.atomic():
            if _TOTALS_EDITABLE & set(diff):
                with deal_totals_kept(deal.pk):
                    deal.save(update_fields=[*diff.keys(), "updated_at"])
            else:
                deal.save(update_fields=[*diff.keys(), "updated_at"])
            if amend_reason:
                _record(deal, by, DealEvent.Kind.EDITED, amend_reason, changes=diff, amended=True)
            else:
                _record(deal, by, DealEvent.Kind.EDITED, changes=diff)
    except ConcurrentTransition:
        deal.refresh_from_db()
        raise DealConflict(_conflict_message(deal, by)) from None
    return deal


def deal_terms_amend(*, deal: Deal, by: User, reason: str, **changes: Any) -> Deal:
    """A manager amends a won deal's signed terms, with a reason (audited as an amendment)."""
    from .models import can_manage_deal

    if not can_manage_deal(deal, by):
        raise NotPermitted(
            gettext("Only the team's manager can amend the signed terms of a won deal.")
        )
    reason = (reason or "").strip()
    if not reason:
        raise DealError(gettext("Say why the signed terms are amended (it goes in the audit log)."))
    if deal.state != DealState.CLOSED_WON:
        raise DealError(
            gettext("Only a won deal's signed terms are amended; edit an open deal directly.")
        )
    unknown = set(changes) - FROZEN_WHEN_WON
    if unknown:
        raise DealError(
            gettext("These fields are not signed terms: %(unknown)s.")
            % {"unknown": ", ".join(sorted(unknown))}
        )
    return _deal_apply_changes(deal=deal, by=by, changes=changes, amend_reason=reason)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (Decimal, dt.date, dt.datetime)):
        return str(value)
    return value


@transaction.atomic
def buying_signal_record(
    *,
    deal: Deal,
    by: User,
    kind: str,
    note: str,
    channel: str,
    observed_at: dt.datetime | None = None,
) -> BuyingSignal:
    _require_workable(deal, by)
    if not note.strip():
        raise DealError(gettext("Write down what the buyer said or did."))
    signal = BuyingSignal.objects.create(
        deal=deal,
        kind=kind,
        note=note.strip(),
        channel=channel,
        observed_at=observed_at or timezone.now(),
        recorded_by=by,
    )
    _record(deal, by, DealEvent.Kind.SIGNAL, signal.note, signal_kind=kind, channel=channel)
    return signal


def buying_signal_record_system(*, deal: Deal, kind: str, note: str, channel: str) -> BuyingSignal:
    """A signal the product noticed itself (e.g. the buyer opened the contract)."""
    with transaction.atomic():
        signal = BuyingSignal.objects.create(deal=deal, kind=kind, note=note, channel=channel)
        _record(deal, None, DealEvent.Kind.SIGNAL, note, signal_kind=kind, channel=channel)
    return signal


@transaction.atomic
def deal_readiness_set(*, deal: Deal, by: User, items: dict[str, bool]) -> Deal:
    """Tick or untick readiness checklist items; the score is derived from them.

    Items the deal's objections and buying group decide (READINESS_DERIVED) ignore the
    value given and are brought up to date instead.
    """
    _require_workable(deal, by)
    valid = {field for field, _label in READINESS_ITEMS}
    unknown = set(items) - valid
    if unknown:
        raise DealError(
            gettext("Unknown checklist items: %(unknown)s.")
            % {"unknown": ", ".join(sorted(unknown))}
        )
    derived = _readiness_derived(deal)
    wanted = {f: bool(v) for f, v in items.items() if f not in derived}
    wanted.update(derived)
    changed = {f: v for f, v in wanted.items() if getattr(deal, f) != v}
    if not changed:
        return deal
    Deal.objects.filter(pk=deal.pk).update(**changed)
    for field, value in changed.items():
        setattr(deal, field, value)
    _record(
        deal,
        by,
        DealEvent.Kind.READINESS,
        f"Readiness {deal.readiness_score}/{deal.readiness_total}",
        changed=changed,
        score=deal.readiness_score,
    )
    return deal


def _readiness_derived(deal: Deal) -> dict[str, bool]:
    """The readiness items derivable now, from the deal's objections and buying group."""
    return readiness_derivation(
        objection_statuses=list(deal.objections.values_list("status", flat=True)),
        roles=set(deal.stakeholders.values_list("role", flat=True)),
    )


def _readiness_sync(deal: Deal) -> dict[str, bool]:
    """Bring the derived readiness items up to date (inside the caller's transaction).

    Returns what changed, for the caller's timeline event; the change is part of that
    event, not one of its own.
    """
    changed = {f: v for f, v in _readiness_derived(deal).items() if getattr(deal, f) != v}
    if changed:
        Deal.objects.filter(pk=deal.pk).update(**changed)
        for field, value in changed.items():
            setattr(deal, field, value)
    return changed


@transaction.atomic
def deal_technique_choose(*, deal: Deal, by: User, technique: str) -> Deal:
    _require_workable(deal, by)
    if technique and technique not in ClosingTechnique.values:
        raise DealError(gettext("Choose one of the listed closing techniques."))
    if deal.closing_technique == technique:
        return deal
    Deal.objects.filter(pk=deal.pk).update(closing_technique=technique)
    deal.closing_technique = technique
    label = ClosingTechnique(technique).label if technique else "none"
    _record(deal, by, DealEvent.Kind.TECHNIQUE, label, technique=technique)
    return deal


#: Where an ask moves the deal, by the state it is recorded in and the buyer's answer. Only
#: forward moves: a first ask makes it "Asked"; a "not yet" or "no" takes it on to negotiating
#: (the objection gets worked there); an ask made while negotiating keeps it there.
_ASK_MOVES: dict[str, dict[str, tuple[str, ...]]] = {
    DealState.INTENT_SPOTTED: {
        Ask.Answer.YES: ("ask",),
        Ask.Answer.NOT_YET: ("ask", "negotiate"),
        Ask.Answer.NO: ("ask", "negotiate"),
    },
    DealState.ASKED: {
        Ask.Answer.YES: (),
        Ask.Answer.NOT_YET: ("negotiate",),
        Ask.Answer.NO: ("negotiate",),
    },
    DealState.NEGOTIATING: {Ask.Answer.YES: (), Ask.Answer.NOT_YET: (), Ask.Answer.NO: ()},
}

_ASK_AFTERWARDS = {
    Ask.Answer.YES: gettext_lazy("next, send the agreement"),
    Ask.Answer.NOT_YET: gettext_lazy("the objection is noted for you to work"),
    Ask.Answer.NO: gettext_lazy("one no is not the end: find the concern behind it"),
}


#: States in which an ask can be recorded.
ASK_STATES = tuple(_ASK_MOVES)


def deal_ask_outcomes(deal: Deal) -> dict[str, str]:
    """What recording an ask with each answer will do to `deal`, in words shown beforehand."""
    moves = _ASK_MOVES.get(deal.state, {})
    outcomes = {}
    for answer, names in moves.items():
        if names:
            target = getattr(type(deal), names[-1])._django_fsm.transitions
            target_state = next(iter(target.values())).target
            where = gettext("the deal moves to “%(state)s”") % {
                "state": DealState(target_state).label
            }
        else:
            where = gettext("the deal stays in “%(state)s”") % {"state": deal.get_state_display()}
        outcomes[answer] = f"{where}; {_ASK_AFTERWARDS[answer]}."
    return outcomes


def deal_ask_record(
    *,
    deal: Deal,
    by: User,
    channel: str,
    statement: str,
    answer: str,
    technique: str = "",
    objection: dict[str, Any] | None = None,
    expected_state: str | None = None,
) -> Ask:
    """Record an ask for the sale: numbered, and the deal moves forward (see `_ASK_MOVES`).

    From intent spotted the deal moves to `asked`. A "yes" leaves it there (next: send the
    agreement); a "not yet" records the objection (`objection`: category, detail, is_stall)
    and moves it on to negotiating, as does a "no": one no is not the end. An ask made while
    negotiating keeps the deal in negotiating, whatever the answer (a "yes" there means:
    send the agreement, a forward move the rep makes with the contract).
    """
    _require_workable(deal, by)
    _require_open(deal)
    if answer not in Ask.Answer.values:
        raise DealError(gettext("Record the buyer's answer: yes, not yet or no."))
    if not statement.strip():
        raise DealError(gettext("Write down how you asked."))
    if answer == Ask.Answer.NOT_YET and not (objection and objection.get("detail", "").strip()):
        raise DealError(
            gettext("A “not yet” comes with an objection: write down what is holding them back.")
        )
    if deal.state not in _ASK_MOVES:
        raise TransitionBlocked(
            gettext(
                "A deal in “%(state)s” already has an agreement out; move it to "
                "negotiating to ask again."
            )
            % {"state": deal.get_state_display()}
        )
    if expected_state is not None and deal.state != expected_state:
        raise DealConflict(_conflict_message(deal, by))
    moves = _ASK_MOVES[deal.state][answer]
    with transaction.atomic():
        if "ask" in moves:
            deal_transition(
                deal=deal,
                transition="ask",
                by=by,
                reason=statement,
                expected_state=expected_state,
                use_case="deal_ask_record",
            )
        number = (deal.asks.aggregate(n=Max("number"))["n"] or 0) + 1
        try:
            with transaction.atomic():
                ask = Ask.objects.create(
                    deal=deal,
                    number=number,
                    channel=channel,
                    technique=technique or deal.closing_technique,
                    statement=statement.strip(),
                    answer=answer,
                    asked_by=by,
                )
        except IntegrityError:
            raise DealConflict(
                gettext("Another ask was recorded at the same moment. Reload and retry.")
            ) from None
        _record(
            deal,
            by,
            DealEvent.Kind.ASK,
            ask.statement,
            number=number,
            answer=answer,
            channel=channel,
        )
        if answer == Ask.Answer.NOT_YET:
            objection_raise(deal=deal, by=by, ask=ask, **objection)
        if "negotiate" in moves:
            deal_transition(
                deal=deal,
                transition="negotiate",
                by=by,
                reason=f"{ask.ordinal} ask answered “{ask.get_answer_display()}”",
            )
    return ask


@transaction.atomic
def objection_raise(
    *,
    deal: Deal,
    by: User,
    category: str,
    detail: str,
    is_stall: bool = False,
    ask: Ask | None = None,
) -> Objection:
    _require_workable(deal, by)
    if category not in Objection.Category.values:
        raise DealError(gettext("Choose an objection category."))
    if not detail.strip():
        raise DealError(gettext("Describe the objection in the buyer's words."))
    obj = Objection.objects.create(
        deal=deal, ask=ask, category=category, detail=detail.strip(), is_stall=is_stall
    )
    _record(
        deal,
        by,
        DealEvent.Kind.OBJECTION,
        obj.detail,
        objection_id=obj.pk,
        category=category,
        is_stall=is_stall,
        status=obj.status,
        readiness=_readiness_sync(deal),
    )
    return obj


def objection_raise_system(*, deal: Deal, category: str, detail: str) -> Objection:
    """An objection the product learned of itself (e.g. the buyer declined to sign)."""
    with transaction.atomic():
        obj = Objection.objects.create(deal=deal, category=category, detail=detail)
        _record(
            deal,
            None,
            DealEvent.Kind.OBJECTION,
            detail,
            objection_id=obj.pk,
            category=category,
            readiness=_readiness_sync(deal),
        )
    return obj


@transaction.atomic
def objection_resolve(
    *, objection: Objection, by: User, resolution: str, accepted_loss: bool = False
) -> Objection:
    deal = deal_lock(objection.deal_id)
    row_lock(objection)
    objection.deal = deal
    _require_workable(deal, by)
    if not resolution.strip():
        raise DealError(gettext("Say how the objection was resolved."))
    if objection.status != Objection.Status.OPEN:
        raise conflict_already(
            gettext("This objection is no longer open: it was marked “%(status)s”")
            % {"status": in_sentence(objection.get_status_display())},
            when=objection.resolved_at,
        )
    objection.status = (
        Objection.Status.ACCEPTED_LOSS if accepted_loss else Objection.Status.RESOLVED
    )
    objection.resolution = resolution.strip()
    objection.resolved_at = timezone.now()
    objection.save(update_fields=["status", "resolution", "resolved_at"])
    _record(
        deal,
        by,
        DealEvent.Kind.OBJECTION,
        objection.resolution,
        objection_id=objection.pk,
        status=objection.status,
        category=objection.category,
        readiness=_readiness_sync(deal),
    )
    return objection


def _concession_terms(changes: dict[str, Any]) -> dict[str, Any]:
    """Check a concession's structured term changes; the cleaned values (None: unchanged)."""
    from .models import BillingFrequency

    clean: dict[str, Any] = {}
    for field, _deal_field in Concession.TERM_FIELDS:
        value = changes.get(field)
        if value in (None, ""):
            clean[field] = "" if field == "new_billing" else None
            continue
        if field == "new_amount":
            value = _money(value)
        elif field == "new_discount_percent":
            value = _money(value)
            if value > 100:
                raise DealError(gettext("A discount is at most 100%."))
        elif field == "new_term_months":
            try:
                value = int(value)
            except (TypeError, ValueError):
                raise DealError(gettext("The term is a whole number of months.")) from None
            if value < 1:
                raise DealError(gettext("The term is at least one month."))
        elif field == "new_billing" and value not in BillingFrequency.values:
            raise DealError(gettext("Choose a billing period from the list."))
        elif field == "new_start_date" and not isinstance(value, dt.date):
            try:
                value = dt.date.fromisoformat(str(value))
            except ValueError:
                raise DealError(gettext("The start date is a date (YYYY-MM-DD).")) from None
        clean[field] = value
    unknown = set(changes) - {f for f, _label in Concession.TERM_FIELDS}
    if unknown:
        raise DealError(
            gettext("Unknown term changes: %(unknown)s.") % {"unknown": ", ".join(sorted(unknown))}
        )
    return clean


@transaction.atomic
def concession_propose(
    *, deal: Deal, by: User, give: str, get: str, **term_changes: Any
) -> Concession:
    """A give-get pair: never give something without getting something back.

    `term_changes` (new_amount, new_discount_percent, new_term_months, new_billing,
    new_start_date) say how the deal's terms change if the concession is accepted.
    """
    _require_workable(deal, by)
    _require_open(deal)
    give = _single_line(give, "What you give")
    get = _single_line(get, "What you get")
    if not give or not get:
        raise DealError(
            gettext("A concession is a give-get pair: say what you give and what you get.")
        )
    terms = _concession_terms(term_changes)
    concession = Concession.objects.create(deal=deal, give=give, get=get, **terms)
    _record(
        deal,
        by,
        DealEvent.Kind.CONCESSION,
        str(concession),
        concession_id=concession.pk,
        status=concession.status,
        term_changes={k: _jsonable(v) for k, v in concession.term_changes.items()},
    )
    return concession


@transaction.atomic
def concession_decide(*, concession: Concession, by: User, accepted: bool) -> Concession:
    """Accept or reject a proposed concession; exactly one decision wins (row lock).

    Accepting changes the deal's terms and tells the contracts app (signal
    `concession_accepted`), which withdraws the version out for signature and
    generates the next one from the new terms, in this same transaction.
    """
    deal = concession.deal
    _require_workable(deal, by)
    locked = Concession.objects.select_for_update().filter(pk=concession.pk).first()
    if locked is None:
        raise DealError(gettext("This concession no longer exists."))
    if locked.status != Concession.Status.PROPOSED:
        concession.refresh_from_db()
        raise DealConflict(
            gettext(
                "This concession was already %(status)s by someone else meanwhile. "
                "Reload the page to see the decision."
            )
            % {"status": in_sentence(locked.get_status_display())}
        )
    deal = Deal.objects.select_for_update().get(pk=locked.deal_id)
    if accepted and deal.state not in OPEN_STATES:
        raise DealError(
            gettext("This deal is closed: a concession can no longer change its terms.")
        )
    locked.status = Concession.Status.ACCEPTED if accepted else Concession.Status.REJECTED
    locked.decided_at = timezone.now()
    locked.decided_by = by
    locked.save(update_fields=["status", "decided_at", "decided_by"])
    changes = locked.term_changes if accepted else {}
    diff = {
        field: [_jsonable(getattr(deal, field)), _jsonable(value)]
        for field, value in changes.items()
        if getattr(deal, field) != value
    }
    for field in diff:
        setattr(deal, field, changes[field])
    if diff:
        with deal_totals_kept(deal.pk):
            deal.save(update_fields=[*diff, "updated_at"])
    _record(
        deal,
        by,
        DealEvent.Kind.CONCESSION,
        str(locked),
        concession_id=locked.pk,
        status=locked.status,
        **({"changes": diff} if diff else {}),
    )
    if accepted:
        concession_accepted.send(sender=Concession, deal=deal, concession=locked, by=by)
    for field in ("status", "decided_at", "decided_by_id"):
        setattr(concession, field, getattr(locked, field))
    concession.deal = deal
    return concession


@transaction.atomic
def stakeholder_add(
    *, deal: Deal, by: User, contact: Contact, role: str, note: str = ""
) -> Stakeholder:
    _require_workable(deal, by)
    if contact.account_id != deal.account_id:
        raise DealError(gettext("The contact works for another account."))
    if role not in Stakeholder.Role.values:
        raise DealError(gettext("Choose the contact's role in the buying group."))
    stakeholder, created = Stakeholder.objects.get_or_create(
        deal=deal, contact=contact, role=role, defaults={"note": note}
    )
    if not created:
        raise DealError(
            gettext("%(contact)s is already the %(role)s.")
            % {"contact": contact, "role": in_sentence(stakeholder.get_role_display())}
        )
    _record(
        deal,
        by,
        DealEvent.Kind.STAKEHOLDER,
        f"{contact} added as {stakeholder.get_role_display()}",
        contact_id=contact.pk,
        role=role,
        readiness=_readiness_sync(deal),
    )
    return stakeholder


@transaction.atomic
def stakeholder_remove(*, stakeholder: Stakeholder, by: User) -> None:
    deal = deal_lock(stakeholder.deal_id)
    try:
        row_lock(stakeholder)
    except DealConflict:
        raise DealConflict(
            gettext(
                "%(contact)s was already removed from the buying group. Reload the page to see it."
            )
            % {"contact": stakeholder.contact}
        ) from None
    stakeholder.deal = deal
    _require_workable(deal, by)
    stakeholder.delete()
    _record(
        deal,
        by,
        DealEvent.Kind.STAKEHOLDER,
        f"{stakeholder.contact} removed as {stakeholder.get_role_display()}",
        contact_id=stakeholder.contact_id,
        role=stakeholder.role,
        removed=True,
        readiness=_readiness_sync(deal),
    )


@transaction.atomic
def stakeholder_add_new_contact(
    *,
    deal: Deal,
    by: User,
    first_name: str,
    last_name: str,
    role: str,
    email: str = "",
    job_title: str = "",
    note: str = "",
) -> Stakeholder:
    """Create a contact at the deal's account and add it to the buying group, all or nothing."""
    _require_workable(deal, by)
    contact = contact_create(
        by=by,
        account=deal.account,
        first_name=first_name,
        last_name=last_name,
        email=email,
        job_title=job_title,
    )
    return stakeholder_add(deal=deal, by=by, contact=contact, role=role, note=note)


@transaction.atomic
def deal_note_add(*, deal: Deal, by: User, text: str) -> DealEvent:
    _require_workable(deal, by)
    if not text.strip():
        raise DealError(gettext("The note is empty."))
    return _record(deal, by, DealEvent.Kind.NOTE, text.strip())


@transaction.atomic
def onboarding_step_complete(*, step: OnboardingStep, by: User) -> OnboardingStep:
    deal = deal_lock(step.deal_id)
    row_lock(step)
    step.deal = deal
    if not (
        by.is_superuser
        or by.pk in (deal.owner_id, step.assignee_id)
        or (by.is_manager and by.team_id == deal.team_id)
    ):
        raise NotPermitted(
            gettext("Only the account manager, the owner or the team's manager can do this.")
        )
    if step.done_at:
        raise conflict_already(
            gettext("Onboarding step “%(kind)s” is already done")
            % {"kind": step.get_kind_display()},
            by=step.done_by,
            when=step.done_at,
        )
    step.done_at = timezone.now()
    step.done_by = by
    step.save(update_fields=["done_at", "done_by"])
    _record(deal, by, DealEvent.Kind.HANDOFF, f"Onboarding: {step.get_kind_display()} done")
    return step


def deal_follow_on_create(
    *, parent: Deal, by: User, title: str, need: str, amount: Decimal = Decimal("0")
) -> Deal:
    """Turn a need found during a won sale into the next opportunity."""
    _require_workable(parent, by)
    if parent.state != DealState.CLOSED_WON:
        raise DealError(gettext("Follow-on deals start from a won deal."))
    with transaction.atomic():
        deal = deal_create(
            by=by,
            account=parent.account,
            owner=parent.owner,
            title=title,
            amount=amount,
            currency=parent.currency,
            parent_deal=parent,
            identified_pain=need,
        )
        _record(
            parent, by, DealEvent.Kind.NOTE, f"Follow-on deal opened: {deal.title}", deal_id=deal.pk
        )
    return deal


# --- archiving: nothing is deleted -------------------------------------------------


def _can_edit_account(account: Account, by: User) -> bool:
    if by.is_superuser:
        return True
    if by.pk == account.owner_id:
        return True
    return by.is_manager and by.team_id is not None and by.team_id == account.team_id


@transaction.atomic
def deal_archive(*, deal: Deal, by: User, reason: str = "") -> Deal:
    """Take a deal out of lists and pages; the row and its whole history stay."""
    row_lock(deal)
    _require_workable(deal, by)
    if deal.archived_at is not None:
        raise conflict_already(gettext("This deal is already archived"), when=deal.archived_at)
    deal.archived_at = timezone.now()
    with deal_totals_kept(deal.pk):
        Deal.objects.filter(pk=deal.pk).update(archived_at=deal.archived_at)
    _record(deal, by, DealEvent.Kind.NOTE, reason.strip() or "Deal archived", archived=True)
    # Receivers settle the paperwork in this transaction (contracts void what is out,
    # follow-ups stop); outside calls run on commit.
    deal_archived.send(sender=Deal, deal=deal, by=by)
    return deal


# --- changing a deal's owner -------------------------------------------------


@transaction.atomic
def deal_reassign(
    *, deal: Deal, by: User, new_owner: User, reason: str, move_account: bool = False
) -> Deal:
    """Hand the deal to another active member of its team, with the reason in the audit log.

    For the team's manager or an admin. `deal` is the deal as the caller saw it: if its
    owner changed meanwhile (another manager reassigned it first), the call is refused with
    DealConflict rather than silently handing it on again. Receivers of `deal_reassigned`
    move what belongs to the owner in their apps (follow-ups move open reminders and tasks;
    notifications tell the new owner). With `move_account` the account's owner moves too.
    """
    from .models import can_manage_deal

    reason = (reason or "").strip()
    if not reason:
        raise DealError(
            gettext("Say why the deal changes hands: the reason goes into the audit log.")
        )
    seen_owner_id = deal.owner_id
    row_lock(deal)
    if not can_manage_deal(deal, by):
        raise NotPermitted(
            gettext("Only the team's manager or an admin can change a deal's owner.")
        )
    if deal.owner_id != seen_owner_id:
        last = (
            DealEvent.objects.filter(deal_id=deal.pk, kind=DealEvent.Kind.OWNER)
            .select_related("actor")
            .order_by("-created_at", "-pk")
            .first()
        )
        raise conflict_already(
            gettext("This deal was handed to %(owner)s meanwhile") % {"owner": deal.owner},
            by=last.actor if last else None,
            when=last.created_at if last else None,
        )
    if deal.archived_at is not None:
        raise DealError(gettext("This deal is archived: it cannot change hands."))
    new_owner = User.objects.filter(pk=new_owner.pk).first()
    if new_owner is None or not new_owner.is_active:
        raise DealError(
            gettext("%(user)s is not an active user: pick someone else.")
            % {"user": new_owner or "That user"}
        )
    if new_owner.team_id != deal.team_id:
        raise DealError(
            gettext("%(new_owner)s is not a member of %(team)s: pick someone on the team.")
            % {"new_owner": new_owner, "team": deal.team}
        )
    if new_owner.pk == deal.owner_id:
        raise DealError(gettext("%(new_owner)s already owns this deal.") % {"new_owner": new_owner})

    previous_owner = deal.owner
    with deal_totals_kept(deal.pk):
        Deal.objects.filter(pk=deal.pk).update(owner=new_owner, updated_at=timezone.now())
    deal.owner = new_owner
    account_moved = False
    if move_account:
        account = row_lock(deal.account)
        if account.owner_id != new_owner.pk:
            account.owner = new_owner
            account.save(update_fields=["owner", "updated_at"])
            account_moved = True
    # Housekeeping, not work with the buyer: the deal's "last activity" does not move.
    event = _record(
        deal,
        by,
        DealEvent.Kind.OWNER,
        f"{previous_owner} → {new_owner}: {reason}",
        counts_as_activity=False,
        from_owner_id=previous_owner.pk,
        from_owner=str(previous_owner),
        to_owner_id=new_owner.pk,
        to_owner=str(new_owner),
        account_moved=account_moved,
    )
    # Receivers move reminders and tasks in this transaction; notices go out on commit.
    deal_reassigned.send(sender=Deal, deal=deal, previous_owner=previous_owner, by=by, event=event)
    return deal


@dataclass(frozen=True)
class ReassignResult:
    """What happened to one deal of a bulk reassignment."""

    deal_id: int
    title: str
    moved: bool
    message: str


def deals_reassign_many(
    *, deal_ids, by: User, new_owner: User, reason: str, move_account: bool = False
) -> list[ReassignResult]:
    """Reassign several deals, each in its own transaction, with a result per deal.

    Not all-or-nothing: a refused deal (closed to this manager, changed meanwhile) is
    reported and the others still move; each deal is moved whole or not at all.
    """
    ids = list(dict.fromkeys(int(pk) for pk in deal_ids))
    if not ids:
        raise DealError(gettext("Select at least one deal to reassign."))
    if not (reason or "").strip():
        raise DealError(
            gettext("Say why the deals change hands: the reason goes into the audit log.")
        )
    found = {d.pk: d for d in Deal.objects.visible_to(by).filter(pk__in=ids)}
    results = []
    for pk in ids:
        deal = found.get(pk)
        if deal is None:
            results.append(ReassignResult(pk, f"Deal #{pk}", False, "No such deal for you."))
            continue
        try:
            deal_reassign(
                deal=deal, by=by, new_owner=new_owner, reason=reason, move_account=move_account
            )
        except DealError as exc:
            results.append(ReassignResult(pk, deal.title, False, exc.message))
        else:
            results.append(ReassignResult(pk, deal.title, True, f"Now owned by {deal.owner}."))
    return results


@transaction.atomic
def account_archive(*, account: Account, by: User) -> Account:
    """Archive an account once it has no open deals left (its deals and contacts stay)."""
    if not _can_edit_account(account, by):
        raise NotPermitted(
            gettext("Only the account's owner or the team's manager can archive it.")
        )
    row_lock(account)
    if account.archived_at is not None:
        raise conflict_already(
            gettext("%(account)s is already archived") % {"account": account},
            when=account.archived_at,
        )
    if account.deals.active().filter(state__in=OPEN_STATES).exists():
        raise DealError(gettext("This account still has open deals: close or archive them first."))
    account.archived_at = timezone.now()
    account.save(update_fields=["archived_at", "updated_at"])
    return account


@transaction.atomic
def contact_archive(*, contact: Contact, by: User) -> Contact:
    """Archive a contact; buying-group roles on past deals keep pointing at it."""
    account = contact.account
    if not (by.is_superuser or (by.team_id is not None and by.team_id == account.team_id)):
        raise NotPermitted(gettext("Only the account's team can archive its contacts."))
    row_lock(contact)
    if contact.archived_at is not None:
        raise conflict_already(
            gettext("%(contact)s is already archived") % {"contact": contact},
            when=contact.archived_at,
        )
    contact.archived_at = timezone.now()
    contact.save(update_fields=["archived_at"])
    return contact


# --- personal data requests (GDPR access and erasure) -----------------------------------------

#: The name an erased contact goes by (the row stays, so buying groups and history still add up).
ERASED_FIRST_NAME = "Erased"


def _require_privacy_officer(by: User) -> None:
    if not (by and by.is_superuser):
        raise NotPermitted(gettext("Only admins can export or erase a contact's personal data."))


def _plain(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _contact_record(contact: Contact) -> dict[str, Any]:
    fields = ["first_name", "last_name", "email", "phone", "job_title"]
    fields += ["created_at", "archived_at", "erased_at"]
    return {"id": contact.pk, **{f: _plain(getattr(contact, f)) for f in fields}}


def contact_personal_data(*, contact: Contact) -> dict[str, Any]:
    """Everything the product holds about one contact, as plain JSON-ready data: the contact,
    their account, buying-group roles, the timeline events about them, what other apps hold
    (contract signatures, follow-up emails) and earlier export/erasure records."""
    account = contact.account
    roles = contact.stakeholder_roles.select_related("deal").order_by("deal_id", "role")
    about = Q(data__contact_id=contact.pk)
    if contact.email:
        about |= Q(reason__icontains=contact.email)
    events = (
        DealEvent.objects.filter(about, deal__account=account)
        .select_related("actor")
        .order_by("created_at", "pk")
    )
    data: dict[str, Any] = {
        "format": "closing-crm/contact-personal-data/1",
        "contact": _contact_record(contact),
        "account": {
            "id": account.pk,
            "name": account.name,
            "website": account.website,
            "team": account.team.name,
        },
        "buying_group_roles": [
            {
                "deal_id": role.deal_id,
                "deal_title": role.deal.title,
                "role": role.role,
                "note": role.note,
            }
            for role in roles
        ],
        "timeline_events": [
            {
                "deal_id": event.deal_id,
                "created_at": _plain(event.created_at),
                "kind": event.kind,
                "reason": event.reason,
                "by": event.actor.username if event.actor_id else "system",
            }
            for event in events
        ],
        "privacy_requests": [
            {"kind": e.kind, "created_at": _plain(e.created_at), "reason": e.reason}
            for e in contact.privacy_events.order_by("created_at", "pk")
        ],
    }
    for _receiver, sections in contact_data_collect.send(sender=Contact, contact=contact):
        for name, rows in (sections or {}).items():
            data[name] = [{k: _plain(v) for k, v in row.items()} for row in rows]
    return data


@transaction.atomic
def contact_personal_data_export(*, contact: Contact, by: User, reason: str = "") -> dict:
    """A GDPR access request: everything held about the contact, with an audit record of
    who exported it and why (PrivacyEvent), in one transaction."""
    _require_privacy_officer(by)
    data = contact_personal_data(contact=contact)
    data["exported_at"] = _plain(timezone.now())
    data["exported_by"] = by.username
    sections = {name: len(rows) for name, rows in data.items() if isinstance(rows, list)}
    PrivacyEvent.objects.create(
        contact=contact,
        actor=by,
        kind=PrivacyEvent.Kind.EXPORTED,
        reason=reason.strip(),
        data={"sections": sections},
    )
    return data


#: Free-text fields on a deal's records where a rep may have written a buyer's name or email.
_DEAL_TEXT_FIELDS = [
    (Deal, "pk__in", ["title", "next_step"]),
    (BuyingSignal, "deal__in", ["note"]),
    (Ask, "deal__in", ["statement"]),
    (Objection, "deal__in", ["detail", "resolution"]),
    (Concession, "deal__in", ["give", "get"]),
]


def _replace_in_deal_texts(deals, replacements: dict[str, str]) -> int:
    """Replace each name or email in the free text of these deals and their records (in the
    database, one UPDATE per field and value). Returns how many rows changed."""
    changed = 0
    deal_ids = list(deals.values_list("pk", flat=True))
    for model, of_deals, fields in _DEAL_TEXT_FIELDS:
        for field in fields:
            for old, new in replacements.items():
                rows = model.objects.filter(**{of_deals: deal_ids, f"{field}__contains": old})
                changed += rows.update(**{field: Replace(field, Value(old), Value(new))})
    return changed


@transaction.atomic
def contact_erase(*, contact: Contact, by: User, reason: str) -> dict[str, Any]:
    """A GDPR erasure request: anonymise the contact and every copy of their name and email,
    keeping the deal history consistent.

    The contact row stays (as "Erased contact #id"), so buying groups, deal counts and the
    timeline still add up; its email, phone and job title are emptied and it is archived.
    Their name and email are replaced in the timeline of the account's deals and in
    buying-group notes; other apps erase what they hold through `contact_data_erase` (a
    contract out for signature to them refuses the erasure: void it first). Signed contract
    documents are kept as the legal record of the signature. Each affected deal gets a
    timeline event, and a PrivacyEvent records who erased the contact and on whose request.
    """
    _require_privacy_officer(by)
    if not reason.strip():
        raise DealError(gettext("Say whose request this is (for example the ticket or the email)."))
    contact = Contact.objects.select_for_update().select_related("account").get(pk=contact.pk)
    if contact.erased_at is not None:
        raise DealError(gettext("This contact's personal data was already erased."))
    placeholder = f"{ERASED_FIRST_NAME} contact #{contact.pk}"
    replacements = {
        name: placeholder
        for name in {contact.full_name, f"{contact.last_name}, {contact.first_name}"}
        if len(name.strip(", ")) > 2
    }
    if contact.email:
        replacements[contact.email] = f"erased-contact-{contact.pk}@invalid"
    summary: dict[str, Any] = {}
    for _receiver, sections in contact_data_erase.send(sender=Contact, contact=contact, by=by):
        summary.update(sections or {})
    deals = Deal.objects.filter(account=contact.account)
    summary["timeline_events_redacted"] = DealEvent.objects.filter(
        deal__in=deals
    ).erase_personal_text(replacements=replacements)
    summary["buying_group_notes_cleared"] = (
        Stakeholder.objects.filter(contact=contact).exclude(note="").update(note="")
    )
    summary["deal_notes_redacted"] = _replace_in_deal_texts(deals, replacements)
    now = timezone.now()
    contact.first_name, contact.last_name = ERASED_FIRST_NAME, f"contact #{contact.pk}"
    contact.email = contact.phone = contact.job_title = ""
    contact.archived_at = contact.archived_at or now
    contact.erased_at = now
    contact.save()
    affected = Deal.objects.filter(stakeholders__contact=contact).distinct()
    for deal in affected:
        _record(
            deal,
            by,
            DealEvent.Kind.STAKEHOLDER,
            f"{placeholder}: personal data erased on request.",
            contact_id=contact.pk,
            erased=True,
        )
    summary["deals_noted"] = len(affected)
    PrivacyEvent.objects.create(
        contact=contact,
        actor=by,
        kind=PrivacyEvent.Kind.ERASED,
        reason=reason.strip(),
        data=summary,
    )
    return summary


# --- user preferences ---------------------------------------------------------------


@transaction.atomic
def user_language_set(*, user: User, language: str) -> User:
    """Save the language `user` works in ("" follows the browser's Accept-Language)."""
    codes = {code for code, _name in settings.LANGUAGES}
    if language and language not in codes:
        raise DealError(
            _("“%(language)s” is not a language of this product.") % {"language": language}
        )
    User.objects.filter(pk=user.pk).update(language=language)
    user.language = language
    return user


# --- quotas -------------------------------------------------------------------------------

QUOTA_MAX = Decimal("999999999999.99")


def quota_setter_check(*, by: User, rep: User) -> None:
    """May `by` set `rep`'s quotas (the team's manager, or an admin), and can rep have one?"""
    if not (by.is_superuser or (by.is_manager and by.team_id and by.team_id == rep.team_id)):
        raise NotPermitted(_("Only the rep's team manager or an admin can set quotas."))
    if not rep.is_active or rep.team_id is None:
        raise DealError(_("%(rep)s is not an active member of a team.") % {"rep": rep})


def quota_period_from_text(text: str) -> tuple[str, dt.date]:
    """The period named like "2026-Q1" or "2026-03", or a DealError saying how to write it."""
    try:
        return quota_period_parse(text)
    except ValueError:
        raise DealError(
            _("“%(value)s” is not a period: write a quarter as 2026-Q1 or a month as 2026-03.")
            % {"value": text}
        ) from None


def quota_amount_parse(value: Any) -> Decimal:
    try:
        amount = Decimal(str(value).strip().replace(",", ""))
    except (ArithmeticError, ValueError, TypeError):
        amount = None
    if amount is None or not amount.is_finite():
        raise DealError(_("The quota must be an amount such as 120000 or 120000.50."))
    if amount < 0:
        raise DealError(_("The quota cannot be negative."))
    if amount > QUOTA_MAX or amount.as_tuple().exponent < -2:
        raise DealError(_("The quota must be at most 999,999,999,999.99 with two decimals."))
    return amount.quantize(Decimal("0.01"))


@transaction.atomic
def quota_set(
    *,
    by: User,
    rep: User,
    period_kind: str,
    period_start: dt.date,
    currency: str,
    amount: Any,
    source: str = QuotaChange.Source.PAGE,
    reason: str = "",
) -> tuple[Quota, bool]:
    """Set a rep's quota for one month or quarter in one currency.

    Returns (quota, changed). The row is locked while it is read and written, so two
    managers setting the same quota at once both land in the history, one after the other;
    setting the amount it already has changes nothing and writes no history line.
    """
    quota_setter_check(by=by, rep=rep)
    if period_kind not in QuotaPeriod.values:
        raise DealError(_("The period is a month or a quarter."))
    if currency not in Currency.values:
        raise DealError(
            _("Unknown currency “%(value)s”: use one of %(choices)s.")
            % {"value": currency, "choices": ", ".join(Currency.values)}
        )
    if source not in QuotaChange.Source.values:
        raise DealError(_("Unknown source of the change."))
    months = 3 if period_kind == QuotaPeriod.QUARTER else 1
    month = period_start.month - (period_start.month - 1) % months
    start = period_start.replace(day=1, month=month)
    amount = quota_amount_parse(amount)
    key = {"rep": rep, "period_kind": period_kind, "period_start": start, "currency": currency}
    quota = Quota.objects.select_for_update().filter(**key).first()
    if quota is None:
        try:
            with transaction.atomic():
                quota = Quota.objects.create(
                    team_id=rep.team_id, amount=amount, set_by=by, set_at=timezone.now(), **key
                )
        except IntegrityError:
            # Someone created it a moment ago: wait for their transaction, then update it.
            quota = Quota.objects.select_for_update().get(**key)
        else:
            QuotaChange.objects.create(
                quota=quota,
                team_id=quota.team_id,
                actor=by,
                old_amount=None,
                new_amount=amount,
                source=source,
                reason=reason.strip(),
            )
            return quota, True
    if quota.amount == amount:
        return quota, False
    old = quota.amount
    quota.amount, quota.set_by, quota.set_at = amount, by, timezone.now()
    quota.save(update_fields=["amount", "set_by", "set_at"])
    QuotaChange.objects.create(
        quota=quota,
        team_id=quota.team_id,
        actor=by,
        old_amount=old,
        new_amount=amount,
        source=source,
        reason=reason.strip(),
    )
    return quota, True


# --- bulk actions on the deal list ------------------------------------------------------------
#
# A bulk action is a BulkJob with one BulkJobItem per deal. Each deal is acted on by the one
# service of the action (deal_transition, deal_archive, deal_reassign) inside a transaction that
# also writes the item's result, so every deal is changed whole or not at all, and a job run
# again (a worker died, the task was delivered twice) only does the items still waiting.

#: More deals than this run as a Celery job with a progress page; fewer run in the request.
BULK_INLINE_MAX = 50
#: The most deals one bulk action may cover ("all matching" included).
BULK_MAX_DEALS = 20000
#: A job with no progress for this long may be resumed from its page.
BULK_STALL_SECONDS = 60


def bulk_transition_names(user: User | None = None) -> list[str]:
    """Transitions a bulk move may fire: those without a record of their own (an ask, a sent
    contract) and, for a user, those their role may fire at all."""
    names = []
    for name in TRANSITION_NAMES:
        if transition_record_rule(name):
            continue
        fsm_meta = getattr(Deal, name)._django_fsm
        permission = next(iter(fsm_meta.transitions.values())).permission
        if user is not None and permission is not None and not _role_may(permission, user):
            continue
        names.append(name)
    return names


def _role_may(permission, user: User) -> bool:
    """Whether `user`'s role can ever pass `permission` (managers' moves for managers)."""
    from .models import can_manage_deal

    if permission is can_manage_deal:
        return user.is_superuser or (user.is_manager and user.team_id is not None)
    return True


def _transition_label(name: str) -> str:
    return next(iter(getattr(Deal, name)._django_fsm.transitions.values())).custom["label"]


def bulk_params_check(*, action: str, by: User, params: dict[str, Any]) -> dict[str, Any]:
    """The batch's inputs, checked once for all deals; DealError says what is missing."""
    reason = (params.get("reason") or "").strip()
    if len(reason) > 2000:
        raise DealError(_("Keep the reason under 2,000 characters."))
    if action == BulkJob.Action.REASSIGN:
        if not (by.is_superuser or (by.is_manager and by.team_id)):
            raise NotPermitted(_("Only the team's manager or an admin can change a deal's owner."))
        owner_id = params.get("new_owner")
        owners = User.objects.filter(is_active=True, team__isnull=False)
        if not by.is_superuser:
            owners = owners.filter(team_id=by.team_id)
        new_owner = owners.filter(pk=owner_id).first() if str(owner_id).isdigit() else None
        if new_owner is None:
            raise DealError(_("Choose who takes the selected deals over."))
        if not reason:
            raise DealError(
                _("Say why the deals change hands: the reason goes into the audit log.")
            )
        return {
            "new_owner": new_owner.pk,
            "reason": reason,
            "move_account": bool(params.get("move_account")),
        }
    if action == BulkJob.Action.ARCHIVE:
        return {"reason": reason}
    if action == BulkJob.Action.TRANSITION:
        name = params.get("transition") or ""
        if name not in bulk_transition_names(by):
            if name in TRANSITION_NAMES and transition_record_rule(name):
                raise DealError(
                    _("“%(move)s” cannot be done in bulk: %(how)s")
                    % {"move": _transition_label(name), "how": transition_record_rule(name)["how"]}
                )
            raise DealError(_("Choose where to move the selected deals."))
        loss_reason = params.get("loss_reason") or ""
        if name == "mark_lost" and loss_reason not in LossReason.values:
            raise DealError(_("Choose a loss reason before closing the deals as lost."))
        custom = next(iter(getattr(Deal, name)._django_fsm.transitions.values())).custom
        if custom.get("needs_reason") and name != "mark_lost" and not reason:
            raise DealError(
                _("“%(move)s” needs a written reason: it goes into each deal's audit log.")
                % {"move": custom["label"]}
            )
        return {
            "transition": name,
            "reason": reason,
            "loss_reason": loss_reason if name == "mark_lost" else "",
        }
    raise DealError(_("Choose what to do with the selected deals."))


def bulk_selection(*, by: User, deal_ids=None, filters: dict[str, str] | None = None) -> list:
    """(id, title, state) of the deals chosen, as `by` sees them, in the list's order.

    Ticked ids keep their order; an id `by` cannot see comes back as (id, None, None) so it is
    refused without a hint of what it is. `filters` ("all N matching") is applied with `by`'s
    own visibility, exactly as the deal list does.
    """
    from .selectors import deals_filtered, deals_visible

    if filters is not None:
        rows = deals_filtered(by, filters).values_list("pk", "title", "state")
        return list(rows[: BULK_MAX_DEALS + 1])
    ids = []
    for value in deal_ids or ():
        if str(value).strip().isdigit():
            ids.append(int(value))
    ids = list(dict.fromkeys(ids))
    found = {
        pk: (pk, title, state)
        for pk, title, state in deals_visible(by)
        .filter(pk__in=ids)
        .values_list("pk", "title", "state")
    }
    return [found.get(pk, (pk, None, None)) for pk in ids]


@transaction.atomic
def bulk_job_create(
    *,
    by: User,
    action: str,
    params: dict[str, Any],
    deal_ids=None,
    filters: dict[str, str] | None = None,
) -> BulkJob:
    """Record a bulk action and its deals (each waiting); run it with `bulk_job_run`."""
    params = bulk_params_check(action=action, by=by, params=params)
    rows = bulk_selection(by=by, deal_ids=deal_ids, filters=filters)
    if not rows:
        raise DealError(_("Select at least one deal first."))
    if len(rows) > BULK_MAX_DEALS:
        raise DealError(
            _("That is more than %(max)s deals: narrow the filters and run it in parts.")
            % {"max": f"{BULK_MAX_DEALS:,}"}
        )
    selection = {"filters": filters} if filters is not None else {"ids": [r[0] for r in rows]}
    job = BulkJob.objects.create(
        by=by, action=action, params=params, selection=selection, total=len(rows)
    )
    now = timezone.now()
    items = []
    for position, (pk, title, state) in enumerate(rows):
        visible = title is not None
        items.append(
            BulkJobItem(
                job=job,
                position=position,
                ref=pk,
                deal_id=pk if visible else None,
                title=title if visible else _("Deal #%(id)s") % {"id": pk},
                seen_state=state or "",
                outcome=BulkJobItem.Outcome.PENDING if visible else BulkJobItem.Outcome.REFUSED,
                message="" if visible else _("No such deal for you."),
                finished_at=None if visible else now,
            )
        )
    BulkJobItem.objects.bulk_create(items, batch_size=1000)
    return job


def bulk_job_start(*, job: BulkJob, by: User) -> BulkJob:
    """Run the job now when it is small, else queue it for a worker (after commit)."""
    if job.total <= getattr(settings, "BULK_INLINE_MAX", BULK_INLINE_MAX):
        return bulk_job_run(job_id=job.pk)
    _bulk_job_enqueue(job)
    return job


def _bulk_job_enqueue(job: BulkJob) -> None:
    from .tasks import bulk_job_task

    queue = getattr(settings, "BULK_JOBS_QUEUE", "") or None
    transaction.on_commit(lambda: bulk_job_task.apply_async((job.pk,), queue=queue))


def bulk_job_run(*, job_id: int) -> BulkJob:
    """Act on every deal of the job still waiting, each in its own transaction. Idempotent:
    a deal whose result is recorded is never acted on again, so running a job twice (or two
    runs at once) changes each deal at most once."""
    job = BulkJob.objects.select_related("by").get(pk=job_id)
    if job.status != BulkJob.Status.DONE:
        BulkJob.objects.filter(pk=job.pk, status=BulkJob.Status.QUEUED).update(
            status=BulkJob.Status.RUNNING, started_at=timezone.now()
        )
        waiting = job.items.filter(outcome=BulkJobItem.Outcome.PENDING).order_by("position")
        for item_id in list(waiting.values_list("pk", flat=True)):
            _bulk_item_run(item_id=item_id, job=job)
        if not job.items.filter(outcome=BulkJobItem.Outcome.PENDING).exists():
            BulkJob.objects.filter(pk=job.pk).exclude(status=BulkJob.Status.DONE).update(
                status=BulkJob.Status.DONE, finished_at=timezone.now()
            )
    job.refresh_from_db()
    return job


@transaction.atomic
def _bulk_item_run(*, item_id: int, job: BulkJob) -> None:
    """One deal: act and record the result in one transaction (a crash leaves it waiting)."""
    item = (
        BulkJobItem.objects.select_for_update(skip_locked=True)
        .filter(pk=item_id, outcome=BulkJobItem.Outcome.PENDING)
        .first()
    )
    if item is None:
        return  # done by another run of the same job meanwhile
    try:
        with transaction.atomic():
            message = _bulk_act(job=job, item=item)
    except DealError as error:
        item.outcome, item.message = BulkJobItem.Outcome.REFUSED, error.message
    else:
        item.outcome, item.message = BulkJobItem.Outcome.DONE, message
    item.finished_at = timezone.now()
    item.save(update_fields=["outcome", "message", "finished_at"])


def _bulk_act(*, job: BulkJob, item: BulkJobItem) -> str:
    by, params = job.by, job.params
    deal = Deal.objects.select_related("account", "team", "owner").get(pk=item.deal_id)
    if job.action == BulkJob.Action.TRANSITION:
        if deal.archived_at is not None:
            raise DealError(_("This deal was archived meanwhile."))
        deal_transition(
            deal=deal,
            transition=params["transition"],
            by=by,
            reason=params.get("reason", ""),
            loss_reason=params.get("loss_reason", ""),
            expected_state=item.seen_state or None,
            data={"bulk_job": job.pk},
        )
        return _("Now “%(state)s”.") % {"state": deal.get_state_display()}
    if job.action == BulkJob.Action.ARCHIVE:
        deal_archive(deal=deal, by=by, reason=params.get("reason", ""))
        return _("Archived.")
    if job.action == BulkJob.Action.REASSIGN:
        new_owner = User.objects.get(pk=params["new_owner"])
        deal_reassign(
            deal=deal,
            by=by,
            new_owner=new_owner,
            reason=params["reason"],
            move_account=params.get("move_account", False),
        )
        return _("Now owned by %(owner)s.") % {"owner": deal.owner}
    raise DealError(_("Unknown bulk action."))


def bulk_job_stalled(job: BulkJob, *, now: dt.datetime | None = None) -> bool:
    """A job that should be running but has made no progress for BULK_STALL_SECONDS."""
    if job.status == BulkJob.Status.DONE:
        return False
    last = job.items.aggregate(last=Max("finished_at"))["last"]
    last = max(filter(None, [last, job.started_at, job.created_at]))
    return (now or timezone.now()) - last > dt.timedelta(seconds=BULK_STALL_SECONDS)


@transaction.atomic
def bulk_job_resume(*, job: BulkJob, by: User) -> BulkJob:
    """Queue a stalled job again (its worker died): only the deals still waiting are done."""
    job = row_lock(job)
    if job.by_id != by.pk and not by.is_superuser:
        raise NotPermitted(_("Only who started this job (or an admin) can resume it."))
    if job.status == BulkJob.Status.DONE:
        raise DealConflict(_("This job has already finished: nothing is left to do."))
    _bulk_job_enqueue(job)
    return job


def bulk_job_summary(job: BulkJob) -> str:
    """One sentence on what a finished job did, for the deal list's message."""
    counts = dict(
        job.items.values_list("outcome").annotate(n=Count("pk")).values_list("outcome", "n")
    )
    done = counts.get(BulkJobItem.Outcome.DONE, 0)
    refused = counts.get(BulkJobItem.Outcome.REFUSED, 0)
    if job.action == BulkJob.Action.REASSIGN:
        owner = User.objects.filter(pk=job.params.get("new_owner")).first()
        text = ngettext(
            "%(n)s deal now owned by %(owner)s (notified).",
            "%(n)s deals now owned by %(owner)s (notified).",
            done,
        ) % {"n": done, "owner": owner}
    elif job.action == BulkJob.Action.ARCHIVE:
        text = ngettext("%(n)s deal archived.", "%(n)s deals archived.", done) % {"n": done}
    else:
        text = ngettext("%(n)s deal moved (%(move)s).", "%(n)s deals moved (%(move)s).", done) % {
            "n": done,
            "move": _transition_label(job.params.get("transition", "")),
        }
    if refused:
        text += " " + ngettext("%(n)s refused.", "%(n)s refused.", refused) % {"n": refused}
    return text


# --- saved views of the deal list and the board -----------------------------------------------

#: The parameters a saved view keeps, per page (the rest of a query string is not a filter).
SAVED_VIEW_PARAMS = {
    SavedView.Page.DEAL_LIST: ("q", "state", "owner", "close", "sort"),
    SavedView.Page.BOARD: ("owner", "team", "close"),
}


def saved_view_params(page: str, params) -> dict[str, str]:
    """The filters and sort of `params` (a QueryDict or dict) that a view of `page` keeps."""
    keep = SAVED_VIEW_PARAMS.get(page, ())
    cleaned = {}
    for key in keep:
        value = str(params.get(key, "") or "").strip()[:200]
        if value:
            cleaned[key] = value
    return cleaned


def _saved_view_name(name: str, *, by: User, page: str, exclude: int | None = None) -> str:
    name = _single_line(name, _("A view's name"))
    if not name:
        raise DealError(_("Give the view a name."))
    if len(name) > 80:
        raise DealError(_("Keep the name under 80 characters."))
    taken = SavedView.objects.filter(owner=by, page=page, name__iexact=name)
    if exclude is not None:
        taken = taken.exclude(pk=exclude)
    if taken.exists():
        raise DealError(_("You already have a view named “%(name)s” here.") % {"name": name})
    return name


@transaction.atomic
def saved_view_create(*, by: User, page: str, name: str, params, shared: bool = False) -> SavedView:
    """Save the current filters and sort of the deal list or the board under a name."""
    if page not in SAVED_VIEW_PARAMS:
        raise DealError(_("Views are saved from the deal list or the board."))
    if shared and by.team_id is None:
        raise DealError(_("You are not in a team: this view can only be private."))
    name = _saved_view_name(name, by=by, page=page)
    try:
        with transaction.atomic():
            return SavedView.objects.create(
                owner=by,
                team_id=by.team_id,
                page=page,
                name=name,
                params=saved_view_params(page, params),
                shared=bool(shared),
            )
    except IntegrityError:
        raise DealError(
            _("You already have a view named “%(name)s” here.") % {"name": name}
        ) from None


def _require_view_owner(view: SavedView, by: User) -> None:
    if view.owner_id != by.pk:
        raise NotPermitted(_("Only the person who saved this view can change or delete it."))


@transaction.atomic
def saved_view_update(
    *, view: SavedView, by: User, name: str | None = None, shared: bool | None = None
) -> SavedView:
    """Rename a view or change whether the team sees it (its owner only). A view no longer
    shared stops being the team's default."""
    _require_view_owner(view, by)
    view = row_lock(view)
    fields = ["updated_at"]
    if name is not None:
        view.name = _saved_view_name(name, by=by, page=view.page, exclude=view.pk)
        fields.append("name")
    if shared is not None:
        if shared and by.team_id is None:
            raise DealError(_("You are not in a team: this view can only be private."))
        view.shared = bool(shared)
        fields.append("shared")
        if not view.shared and view.team_default:
            view.team_default = False
            fields.append("team_default")
    view.save(update_fields=fields)
    return view


@transaction.atomic
def saved_view_delete(*, view: SavedView, by: User) -> None:
    """Delete one of your views (a team default goes with it)."""
    _require_view_owner(view, by)
    row_lock(view)
    view.delete()


@transaction.atomic
def saved_view_set_team_default(*, view: SavedView, by: User, default: bool = True) -> SavedView:
    """Make a shared view the team's default for its page (opened without filters), or stop
    it being the default. For the team's manager or an admin."""
    if view.team_id is None or not (
        by.is_superuser or (by.is_manager and by.team_id == view.team_id)
    ):
        raise NotPermitted(_("Only the team's manager can set the team's default view."))
    row_lock(view.team)  # one default per team and page: setters queue on the team's row
    view = row_lock(view)
    if default and not view.shared:
        raise DealError(_("Only a view shared with the team can be its default."))
    if default:
        SavedView.objects.filter(team_id=view.team_id, page=view.page, team_default=True).exclude(
            pk=view.pk
        ).update(team_default=False)
    view.team_default = bool(default)
    view.save(update_fields=["team_default", "updated_at"])
    return view
