"""Every write of the follow-up app: cadences into reminders, the dispatcher, tasks, meetings.

Reminders are rows and the source of truth. The dispatcher works in two committed
steps so that a worker killed at any point neither loses nor duplicates a reminder:

1. `reminders_claim` marks a batch of due reminders `sending` with a fresh claim token
   and a lease, and commits. A reminder whose lease runs out (its worker died) is due
   again and is claimed by the next dispatcher tick.
2. `reminder_batch_send` renews the lease for the rows it still owns, sends each email
   with the reminder's own Message-ID (fixed when the reminder was created, so a resend
   after a crash is the same message, which mail systems de-duplicate), creates rep
   tasks (one per reminder, enforced by a unique key) and commits each sent reminder at
   once (with its timeline event), only where the claim token is still its own; the
   deals' last activity is set once for the batch.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Q
from django.template import Context, TemplateSyntaxError
from django.utils import timezone
from django.utils.translation import gettext

from contracts.documents import TemplateProblem
from deals import addressing
from deals.models import (
    CLOSED_STATES,
    Account,
    Contact,
    Deal,
    DealEvent,
    DealState,
    Stakeholder,
    User,
    in_sentence,
)
from deals.services import (
    DealConflict,
    DealError,
    NotPermitted,
    conflict_already,
    deal_activity_record,
    deal_activity_record_many,
    deal_lock,
    deal_update,
    deals_mark_active,
)

from . import ical
from .mail import ReminderEmailMessage
from .models import Cadence, CadenceStep, Channel, Reminder, RepTask, ReviewMeeting

logger = logging.getLogger(__name__)

#: Whom a follow-up email goes to, in order of preference.
BUYER_ROLES = [
    Stakeholder.Role.SIGNER,
    Stakeholder.Role.DECISION_MAKER,
    Stakeholder.Role.ECONOMIC_BUYER,
    Stakeholder.Role.CHAMPION,
    Stakeholder.Role.INFLUENCER,
    Stakeholder.Role.USER,
]


class PermanentSendError(Exception):
    """Retrying cannot help (no recipient, broken template): the reminder fails at once."""


# --- working hours -----------------------------------------------------------


def _as_time(value) -> dt.time:
    return dt.time.fromisoformat(value) if isinstance(value, str) else value


def _rep_zone(user: User) -> ZoneInfo:
    try:
        return ZoneInfo(user.time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _rep_days(user: User) -> set[int]:
    days = {int(c) for c in (user.working_days or "") if c.isdigit() and int(c) < 7}
    return days or {0, 1, 2, 3, 4}


def working_time_next(*, when: dt.datetime, user: User) -> dt.datetime:
    """The first moment at or after `when` inside the rep's working days and hours.

    Computed in the rep's own time zone, so a reminder never leaves at 3 a.m. for them.
    """
    zone = _rep_zone(user)
    days = _rep_days(user)
    start, end = _as_time(user.workday_start), _as_time(user.workday_end)
    if start >= end:  # a misconfigured day: treat the whole day as working time
        start, end = dt.time(0, 0), dt.time(23, 59, 59)
    local = when.astimezone(zone)
    for offset in range(8):
        day = local.date() + dt.timedelta(days=offset)
        if day.weekday() not in days:
            continue
        day_start = dt.datetime.combine(day, start, tzinfo=zone)
        day_end = dt.datetime.combine(day, end, tzinfo=zone)
        if offset == 0:
            if local < day_start:
                return day_start.astimezone(dt.UTC)
            if local < day_end:
                return when.astimezone(dt.UTC)
            continue
        return day_start.astimezone(dt.UTC)
    return when.astimezone(dt.UTC)  # unreachable: some weekday is always a working day


def is_working_time(*, when: dt.datetime, user: User) -> bool:
    return working_time_next(when=when, user=user) == when.astimezone(dt.UTC)


# --- cadences ------------------------------------------------------------------


def cadence_for_deal(deal: Deal) -> Cadence | None:
    """The deal team's own active cadence, else the default one."""
    own = Cadence.objects.filter(team_id=deal.team_id, is_active=True).first()
    return own or Cadence.objects.filter(team__isnull=True, is_active=True).first()


@dataclass(frozen=True)
class PlannedReminder:
    sequence: int
    step: CadenceStep
    planned_at: dt.datetime
    due_at: dt.datetime


def cadence_expand(*, cadence: Cadence, sent_at: dt.datetime, user: User) -> list[PlannedReminder]:
    """The reminders a cadence makes for a contract sent at `sent_at` by `user`'s deal.

    Each step is due `offset_days` after sending; the last step then repeats every
    `repeat_every_days`, `repeat_times` times. Due times move into the rep's working hours.
    """
    steps = list(cadence.steps.order_by("offset_days", "position", "pk"))
    if not steps:
        return []
    plan: list[tuple[CadenceStep, int]] = [(step, step.offset_days) for step in steps]
    if cadence.repeat_every_days:
        last = steps[-1]
        for n in range(1, cadence.repeat_times + 1):
            plan.append((last, last.offset_days + n * cadence.repeat_every_days))
    planned = []
    previous_due = None
    for sequence, (step, days) in enumerate(plan, start=1):
        planned_at = sent_at + dt.timedelta(days=days)
        due_at = working_time_next(when=planned_at, user=user)
        if previous_due is not None and due_at <= previous_due:
            due_at = working_time_next(when=previous_due + dt.timedelta(minutes=1), user=user)
        previous_due = due_at
        planned.append(PlannedReminder(sequence, step, planned_at, due_at))
    return planned


@transaction.atomic
def reminders_start(*, version, by: User | None = None) -> list[Reminder]:
    """A contract version went out: start a fresh cadence for it.

    Open reminders of the deal's earlier versions are cancelled (a revision starts over).
    Calling it again for the same version changes nothing.
    """
    deal = Deal.objects.select_related("owner").get(pk=version.deal_id)
    existing = list(Reminder.objects.filter(contract_version=version))
    if any(r.is_open for r in existing):
        return existing
    _cancel(
        Reminder.objects.filter(deal=deal).exclude(contract_version=version),
        deal=deal,
        reason=f"Contract v{version.number} replaced the earlier version",
    )
    if deal.state in CLOSED_STATES:
        return []
    cadence = cadence_for_deal(deal)
    if cadence is None:
        return []
    sent_at = version.sent_at or timezone.now()
    if existing:
        # The same version went out again (a failed send retried): its cancelled steps
        # are planned afresh from now; what was already sent stays sent.
        sent_at = timezone.now()
    plan = cadence_expand(cadence=cadence, sent_at=sent_at, user=deal.owner)
    done = {r.sequence for r in existing if r.status == Reminder.Status.SENT}
    Reminder.objects.filter(contract_version=version).exclude(status=Reminder.Status.SENT).delete()
    plan = [item for item in plan if item.sequence not in done]
    reminders = Reminder.objects.bulk_create(
        [
            Reminder(
                deal=deal,
                contract_version=version,
                step=item.step,
                sequence=item.sequence,
                channel=item.step.channel,
                subject_template=item.step.subject,
                body_template=item.step.body,
                planned_at=item.planned_at,
                due_at=item.due_at,
                message_id=f"<followup-{uuid.uuid4().hex}@closing-crm>",
            )
            for item in plan
        ]
    )
    if reminders:
        first = timezone.localtime(reminders[0].due_at, _rep_zone(deal.owner))
        deal_activity_record(
            deal=deal,
            by=by,
            kind=DealEvent.Kind.REMINDER,
            reason=(
                f"{len(reminders)} follow-ups scheduled from “{cadence.name}” for contract "
                f"v{version.number}; the first on {first:%a %d %b, %H:%M}."
            ),
            contract_version_id=version.pk,
            cadence_id=cadence.pk,
        )
    return reminders


def _cancel(
    queryset,
    *,
    deal: Deal,
    reason: str,
    by: User | None = None,
    to: str = Reminder.Status.CANCELLED,
    which: str = "open",
) -> int:
    """Close the deal's open reminders in `queryset` (cancelled, or `to`), drop their pending
    rep tasks, and put one line on the deal's timeline."""
    # A reminder whose email already went out (sent_at committed, the worker is about to
    # record it as sent) is left to be recorded: it was sent, not cancelled.
    ids = list(
        queryset.filter(status__in=Reminder.OPEN_STATUSES)
        .exclude(status=Reminder.Status.SENDING, sent_at__isnull=False)
        .values_list("pk", flat=True)
    )
    if not ids:
        return 0
    count = Reminder.objects.filter(
        pk__in=ids, status__in=Reminder.OPEN_STATUSES, sent_at__isnull=True
    ).update(
        status=to,
        closed_reason=reason,
        claim_token=None,
        lease_until=None,
        updated_at=timezone.now(),
    )
    RepTask.objects.filter(
        reminder_id__in=ids, completed_at__isnull=True, cancelled_at__isnull=True
    ).update(cancelled_at=timezone.now())
    verb = Reminder.Status(to).label.lower()
    deal_activity_record(
        deal=deal,
        by=by,
        kind=DealEvent.Kind.REMINDER,
        # Housekeeping: closing reminders is not work on the deal (a rep's pause or skip is
        # recorded by its own service as activity).
        counts_as_activity=False,
        reason=f"{count} {which} follow-up{'s' if count != 1 else ''} {verb}: {reason}.",
        **{verb: count},
    )
    return count


@transaction.atomic
def reminders_cancel_for_version(*, version, reason: str = "") -> int:
    """The contract version was voided, declined, expired or superseded."""
    deal = Deal.objects.get(pk=version.deal_id)
    reason = reason or f"contract v{version.number} is no longer out for signature"
    return _cancel(Reminder.objects.filter(contract_version=version), deal=deal, reason=reason)


@transaction.atomic
def reminders_cancel_for_deal(*, deal: Deal, reason: str, by: User | None = None) -> int:
    """The deal closed (won or lost): nothing more goes out."""
    count = _cancel(Reminder.objects.filter(deal=deal), deal=deal, reason=reason, by=by)
    RepTask.objects.filter(deal=deal, completed_at__isnull=True, cancelled_at__isnull=True).update(
        cancelled_at=timezone.now()
    )
    return count


@transaction.atomic
def reminders_settle_past(*, before: dt.datetime, reason: str) -> int:
    """Skip scheduled follow-ups that fell due before `before`, with one timeline line per deal.

    For data replayed into the past (the demo seed): without this, every follow-up the
    replayed history planned would go out at once on the dispatcher's first tick.
    """
    overdue = Reminder.objects.filter(status=Reminder.Status.SCHEDULED, due_at__lt=before)
    deal_ids = set(overdue.values_list("deal_id", flat=True))
    return sum(
        _cancel(
            overdue.filter(deal=deal),
            deal=deal,
            reason=reason,
            to=Reminder.Status.SKIPPED,
            which="past",
        )
        for deal in Deal.objects.filter(pk__in=deal_ids)
    )


@transaction.atomic
def rep_task_send_revision(*, version, by: User | None = None) -> RepTask:
    """An accepted concession produced the next version: "send the revised contract today"
    goes to the top of the deal owner's My day (an older such task is replaced)."""
    deal = Deal.objects.select_related("owner").get(pk=version.deal_id)
    now = timezone.now()
    RepTask.objects.filter(
        deal=deal, kind=RepTask.Kind.SEND_CONTRACT, completed_at__isnull=True, cancelled_at=None
    ).update(cancelled_at=now)
    return RepTask.objects.create(
        owner=deal.owner,
        deal=deal,
        kind=RepTask.Kind.SEND_CONTRACT,
        title=gettext("Send the revised contract today (version %(number)s)")
        % {"number": version.number},
        note="The buyer's link now says a revised contract is coming: send it the same day.",
        due_at=now,
    )


@transaction.atomic
def rep_tasks_close_sent(*, version) -> int:
    """The contract went out: the "send the contract" task is done."""
    return RepTask.objects.filter(
        deal_id=version.deal_id,
        kind=RepTask.Kind.SEND_CONTRACT,
        completed_at__isnull=True,
        cancelled_at__isnull=True,
    ).update(
        completed_at=timezone.now(),
        outcome=f"Version {version.number} sent for signature.",
    )


@transaction.atomic
def rep_tasks_late_signature(*, version) -> list[RepTask]:
    """A signature came after the deal closed: the owner and the team's manager each get a
    task at the top of My day, and the timeline says who was told."""
    deal = Deal.objects.select_related("owner", "team").get(pk=version.deal_id)
    managers = list(
        User.objects.filter(team_id=deal.team_id, role=User.Role.MANAGER, is_active=True)
    )
    now = timezone.now()
    state = "was closed" if deal.state in CLOSED_STATES else "had withdrawn it"
    tasks = [
        RepTask.objects.create(
            owner=deal.owner,
            deal=deal,
            kind=RepTask.Kind.LATE_SIGNATURE,
            title=gettext("%(buyer)s signed version %(number)s after the deal %(state)s: call them")
            % {
                "buyer": version.signer_name or "The buyer",
                "number": version.number,
                "state": state,
            },
            note="A manager can turn the signature into a win from the deal page.",
            due_at=now,
        )
    ]
    for manager in managers:
        if manager.pk == deal.owner_id:
            continue
        tasks.append(
            RepTask.objects.create(
                owner=manager,
                deal=deal,
                kind=RepTask.Kind.LATE_SIGNATURE,
                title=gettext(
                    "Decide on a late signature: version %(number)s was signed after the "
                    "deal %(state)s"
                )
                % {"number": version.number, "state": state},
                note="Turn it into a win (with a reason) from the banner on the deal page.",
                due_at=now,
            )
        )
    told = ", ".join(str(t.owner) for t in tasks)
    deal_activity_record(
        deal=deal,
        by=None,
        kind=DealEvent.Kind.TASK,
        reason=f"Late signature on version {version.number}: told {told}.",
        late_signature=version.number,
    )
    return tasks


def on_deal_archived(*, deal: Deal, by: User | None) -> None:
    reminders_cancel_for_deal(deal=deal, reason="the deal is archived", by=by)


def on_deal_reassigned(*, deal: Deal, previous_owner: User) -> dict[str, int]:
    """The deal has a new owner: its open follow-ups and the previous owner's open tasks on it
    move to them, planned again in the new owner's working hours.

    Runs inside the reassigning transaction, with the deal's row already locked (so the
    deal, then its reminders, the order every writer takes). Follow-ups being sent right
    now keep their slot; the deal's audit event is the reassignment's own, none is added.
    """
    new_owner = deal.owner
    now = timezone.now()
    reminders = list(
        Reminder.objects.select_for_update()
        .filter(deal=deal, status__in=(Reminder.Status.SCHEDULED, Reminder.Status.PAUSED))
        .order_by("due_at", "pk")
    )
    previous_due = None
    for reminder in reminders:
        due_at = working_time_next(when=max(reminder.due_at, now), user=new_owner)
        if previous_due is not None and due_at <= previous_due:
            due_at = working_time_next(when=previous_due + dt.timedelta(minutes=1), user=new_owner)
        reminder.due_at = previous_due = due_at
        reminder.updated_at = now
    Reminder.objects.bulk_update(reminders, ["due_at", "updated_at"])
    tasks = list(
        RepTask.objects.select_for_update().filter(
            deal=deal, owner=previous_owner, completed_at__isnull=True, cancelled_at__isnull=True
        )
    )
    for task in tasks:
        task.owner = new_owner
        if task.due_at > now:
            task.due_at = working_time_next(when=task.due_at, user=new_owner)
    RepTask.objects.bulk_update(tasks, ["owner", "due_at"])
    return {"reminders": len(reminders), "tasks": len(tasks)}


def on_deal_state_changed(*, deal: Deal, by: User | None) -> None:
    if deal.state == DealState.CLOSED_WON:
        reminders_cancel_for_deal(deal=deal, reason="the deal is won", by=by)
    elif deal.state == DealState.CLOSED_LOST:
        reminders_cancel_for_deal(deal=deal, reason="the deal is lost", by=by)


# --- what a rep does with a reminder ----------------------------------------------


def _require_workable(deal: Deal, by: User) -> None:
    from deals.models import can_work_deal

    if not can_work_deal(deal, by):
        raise NotPermitted(can_work_deal.denied_message)


def _locked_reminder(reminder: Reminder, by: User) -> Reminder:
    """The reminder reloaded under a lock (the deal's row first, as transitions lock it)."""
    deal = deal_lock(reminder.deal_id)
    locked = Reminder.objects.select_for_update().get(pk=reminder.pk)
    locked.deal = deal
    _require_workable(deal, by)
    return locked


def _reminder_label(reminder: Reminder) -> str:
    return f"Follow-up #{reminder.sequence} ({in_sentence(reminder.get_channel_display())})"


@transaction.atomic
def reminder_pause(*, reminder: Reminder, by: User) -> Reminder:
    """Hold one step on this deal: it stays planned but does not go out until resumed."""
    reminder = _locked_reminder(reminder, by)
    if reminder.status != Reminder.Status.SCHEDULED:
        raise DealConflict(
            gettext(
                "Only a scheduled follow-up can be paused (this one is %(status)s). "
                "Reload to see it."
            )
            % {"status": in_sentence(reminder.get_status_display())}
        )
    reminder.status = Reminder.Status.PAUSED
    reminder.save(update_fields=["status", "updated_at"])
    deal_activity_record(
        deal=reminder.deal,
        by=by,
        kind=DealEvent.Kind.REMINDER,
        reason=f"{_reminder_label(reminder)} paused.",
        reminder_id=reminder.pk,
    )
    return reminder


@transaction.atomic
def reminder_resume(*, reminder: Reminder, by: User) -> Reminder:
    """A paused step is planned again: at its own time, or the next working moment if past."""
    reminder = _locked_reminder(reminder, by)
    if reminder.status != Reminder.Status.PAUSED:
        raise DealConflict(
            gettext(
                "Only a paused follow-up can be resumed (this one is %(status)s). Reload to see it."
            )
            % {"status": in_sentence(reminder.get_status_display())}
        )
    when = max(reminder.due_at, timezone.now())
    reminder.due_at = working_time_next(when=when, user=reminder.deal.owner)
    reminder.status = Reminder.Status.SCHEDULED
    reminder.save(update_fields=["status", "due_at", "updated_at"])
    deal_activity_record(
        deal=reminder.deal,
        by=by,
        kind=DealEvent.Kind.REMINDER,
        reason=f"{_reminder_label(reminder)} resumed.",
        reminder_id=reminder.pk,
    )
    return reminder


@transaction.atomic
def reminder_skip(*, reminder: Reminder, by: User) -> Reminder:
    """Leave out one step on this deal; the rest of the cadence goes on."""
    reminder = _locked_reminder(reminder, by)
    if reminder.status not in (Reminder.Status.SCHEDULED, Reminder.Status.PAUSED):
        raise DealConflict(
            gettext(
                "Only a planned follow-up can be skipped (this one is %(status)s). "
                "Reload to see it."
            )
            % {"status": in_sentence(reminder.get_status_display())}
        )
    reminder.status = Reminder.Status.SKIPPED
    reminder.closed_reason = f"Skipped by {by}"
    reminder.save(update_fields=["status", "closed_reason", "updated_at"])
    deal_activity_record(
        deal=reminder.deal,
        by=by,
        kind=DealEvent.Kind.REMINDER,
        reason=f"{_reminder_label(reminder)} skipped.",
        reminder_id=reminder.pk,
    )
    return reminder


@transaction.atomic
def reminder_snooze(*, reminder: Reminder, by: User, until: dt.datetime) -> Reminder:
    """Move one reminder later (into the rep's working hours)."""
    reminder = _locked_reminder(reminder, by)
    if reminder.status not in (Reminder.Status.SCHEDULED, Reminder.Status.PAUSED):
        raise DealConflict(
            gettext(
                "Only a planned follow-up can be snoozed (this one is %(status)s). "
                "Reload to see it."
            )
            % {"status": in_sentence(reminder.get_status_display())}
        )
    if timezone.is_naive(until):
        raise DealError(gettext("Give the snooze date with a time zone."))
    if until <= timezone.now():
        raise DealError(gettext("Snooze to a moment in the future."))
    if until > timezone.now() + dt.timedelta(days=90):
        raise DealError(gettext("Snooze at most 90 days; skip the follow-up instead."))
    reminder.due_at = working_time_next(when=until, user=reminder.deal.owner)
    reminder.status = Reminder.Status.SCHEDULED
    reminder.save(update_fields=["status", "due_at", "updated_at"])
    local = timezone.localtime(reminder.due_at, _rep_zone(reminder.deal.owner))
    deal_activity_record(
        deal=reminder.deal,
        by=by,
        kind=DealEvent.Kind.REMINDER,
        reason=f"{_reminder_label(reminder)} snoozed to {local:%a %d %b, %H:%M}.",
        reminder_id=reminder.pk,
    )
    return reminder


@transaction.atomic
def reminder_retry(*, reminder: Reminder, by: User) -> Reminder:
    """An admin sends a failed reminder again (after fixing its cause)."""
    if not (by.is_superuser or by.is_staff):
        raise NotPermitted(gettext("Only an admin can retry a failed follow-up."))
    deal = deal_lock(reminder.deal_id)
    reminder = Reminder.objects.select_for_update().get(pk=reminder.pk)
    reminder.deal = deal
    if reminder.status != Reminder.Status.FAILED:
        raise DealConflict(
            gettext("Only a failed follow-up can be retried (this one is %(status)s).")
            % {"status": in_sentence(reminder.get_status_display())}
        )
    if reminder.deal.state in CLOSED_STATES:
        raise DealError(gettext("The deal is closed; nothing more goes out."))
    reminder.status = Reminder.Status.SCHEDULED
    reminder.attempts = 0
    reminder.due_at = timezone.now()
    reminder.save(update_fields=["status", "attempts", "due_at", "updated_at"])
    deal_activity_record(
        deal=deal,
        by=by,
        kind=DealEvent.Kind.REMINDER,
        reason=f"{_reminder_label(reminder)} could not be sent before; it will be retried.",
        reminder_id=reminder.pk,
    )
    return reminder


@transaction.atomic
def reminders_fast_forward(*, days: float, deal: Deal | None = None) -> int:
    """Demo only: pull planned reminders `days` earlier, so the next dispatcher tick sends
    those that fall due. Working hours are ignored on purpose (a demo runs any time)."""
    if days <= 0:
        raise DealError(gettext("Fast-forward by a positive number of days."))
    queryset = Reminder.objects.filter(status=Reminder.Status.SCHEDULED)
    if deal is not None:
        queryset = queryset.filter(deal=deal)
    return queryset.update(due_at=F("due_at") - dt.timedelta(days=days), updated_at=timezone.now())


# --- the dispatcher --------------------------------------------------------------


def _lease() -> dt.timedelta:
    return dt.timedelta(seconds=settings.FOLLOWUPS_LEASE_SECONDS)


def reminders_claim(*, limit: int | None = None, now: dt.datetime | None = None):
    """Claim up to `limit` due reminders for one worker; committed before anything is sent.

    Due means scheduled and past its time, or `sending` with an expired lease (its worker
    died). On PostgreSQL concurrent dispatchers skip each other's locked rows; SQLite
    serialises writers. Returns (token, ids); ids is empty when nothing is due.
    """
    limit = limit or settings.FOLLOWUPS_BATCH_SIZE
    now = now or timezone.now()
    token = uuid.uuid4()
    with transaction.atomic():
        # Two index-ordered reads (expired leases first, then the earliest due), not one
        # OR: with an OR PostgreSQL sorts every due row to return the first `limit`, and
        # a backlog of N rows would cost each of its N/limit claims a sort of all N.
        ids: list[int] = []
        for due, order in (
            (Q(status=Reminder.Status.SENDING, lease_until__lt=now), "lease_until"),
            (Q(status=Reminder.Status.SCHEDULED, due_at__lte=now), "due_at"),
        ):
            queryset = Reminder.objects.filter(due).order_by(order)
            if connection.features.has_select_for_update_skip_locked:
                queryset = queryset.select_for_update(skip_locked=True)
            ids += queryset.values_list("pk", flat=True)[: limit - len(ids)]
            if len(ids) >= limit:
                break
        if ids:
            Reminder.objects.filter(pk__in=ids).update(
                status=Reminder.Status.SENDING,
                claim_token=token,
                lease_until=now + _lease(),
                attempts=F("attempts") + 1,
                updated_at=now,
            )
    return token, ids


def reminder_claims_in_flight(*, now: dt.datetime | None = None) -> int:
    """How many claims hold a live lease: batches queued or being sent."""
    now = now or timezone.now()
    return (
        Reminder.objects.filter(status=Reminder.Status.SENDING, lease_until__gte=now)
        .values("claim_token")
        .distinct()
        .count()
    )


@dataclass
class BatchResult:
    sent: list[int] = field(default_factory=list)
    retried: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    deferred: list[int] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)
    returned: list[int] = field(default_factory=list)  # not reached in time: due again
    not_owned: int = 0


@functools.lru_cache(maxsize=256)
def _template(text: str):
    # Cadence texts are written by admins: the contracts sandbox (allow-listed tags and
    # filters; no {% load %}, {% debug %}, includes, URL tags or `safe`) compiles them.
    from contracts.documents import compile_template

    return compile_template(text)


def _person(person) -> dict[str, str]:
    first, last = getattr(person, "first_name", ""), getattr(person, "last_name", "")
    full = f"{first} {last}".strip()
    return {
        "first_name": first,
        "last_name": last,
        "full_name": full,
        "get_full_name": full,
        "username": getattr(person, "username", ""),
        "email": getattr(person, "email", ""),
    }


def _template_data(context: dict) -> dict:
    """The plain strings a follow-up template may use: no model instance ever reaches it,
    so a template cannot print a password hash or follow a relation to the database."""
    data: dict = {}
    for key, value in context.items():
        if value is None or isinstance(value, (str, int, float, Decimal)):
            data[key] = value
        elif isinstance(value, Deal):
            data[key] = {
                "title": value.title,
                "amount": f"{value.amount:,.2f}",
                "currency": value.currency,
                "expected_close_date": value.expected_close_date,
                "next_step": value.next_step,
            }
        elif isinstance(value, Account):
            data[key] = {"name": value.name}
        elif isinstance(value, (User, Contact, Addressee)):
            data[key] = _person(value)
        elif isinstance(value, Reminder):
            data[key] = {"sequence": value.sequence, "due_at": value.due_at}
        elif hasattr(value, "number") and hasattr(value, "sent_at"):  # a contract version
            data[key] = {"number": value.number, "sent_at": value.sent_at}
    return data


def _render(text: str, context: dict) -> str:
    try:
        return _template(text).render(Context(_template_data(context), autoescape=False)).strip()
    except (TemplateSyntaxError, TemplateProblem) as exc:
        raise PermanentSendError(
            gettext("The follow-up template is broken: %(exc)s") % {"exc": exc}
        ) from None


@dataclass(frozen=True)
class Addressee:
    """The contract's signer when no contact row matches their email."""

    first_name: str
    last_name: str
    email: str

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    def __str__(self) -> str:
        return self.full_name or self.email


def _due_signer(version):
    """The contract's signer whose turn it is (None without a version or with no one due)."""
    if version is None or getattr(version, "pk", None) is None:
        return None
    from django.db.models import prefetch_related_objects

    from contracts.selectors import due_signer

    # Once per version (a no-op when the batch prefetched them): the signing link reads
    # the same rows.
    prefetch_related_objects([version], "signers")
    return due_signer(version)


def _buyer(deal: Deal, version=None) -> Contact | Addressee | None:
    """The person a follow-up speaks to: the contract's signer, else the buying group's
    signer, decision maker and so on, else any contact of the account with an email."""
    signer_email = (getattr(version, "signer_email", "") or "").strip()
    signer_name = getattr(version, "signer_name", "") or ""
    due = _due_signer(version)
    if due is not None:  # several signers: the follow-up goes to whoever is due now
        signer_email, signer_name = due.email, due.name
    if signer_email:
        people = [s.contact for s in deal.stakeholders.all()] + list(deal.account.contacts.all())
        for contact in people:
            if contact.email and contact.email.lower() == signer_email.lower():
                return contact
        first, _, last = signer_name.strip().partition(" ")
        return Addressee(first_name=first, last_name=last, email=signer_email)
    rank = {role: i for i, role in enumerate(BUYER_ROLES)}
    stakeholders = sorted(
        (s for s in deal.stakeholders.all() if s.contact.email and not s.contact.archived_at),
        key=lambda s: rank.get(s.role, len(rank)),
    )
    if stakeholders:
        return stakeholders[0].contact
    contacts = [c for c in deal.account.contacts.all() if c.email and not c.archived_at]
    return contacts[0] if contacts else None


def reminder_context(reminder: Reminder) -> dict:
    deal = reminder.deal
    return {
        "deal": deal,
        "account": deal.account,
        "contact": _buyer(deal, reminder.contract_version),
        "rep": deal.owner,
        "contract": reminder.contract_version,
        "reminder": reminder,
        "site_url": settings.SITE_URL,
        "signing_url": _signing_url(reminder.contract_version),
    }


def _signing_url(version) -> str:
    """A fresh link to the version out for signature (built-in provider), else empty."""
    from .deal_email import signing_url_for

    return signing_url_for(version)


def reminder_email(
    reminder: Reminder, connection=None, parts: dict | None = None
) -> ReminderEmailMessage:
    """The follow-up email of one reminder, rendered with the deal's data.

    `parts` is a per-batch cache of what renders the same for every reminder of a deal
    with the same texts (subject, body, recipient): the dispatcher renders those once.
    """
    rendered = _email_parts(reminder, parts)
    message = ReminderEmailMessage(
        subject=rendered["subject"],
        body=rendered["body"],
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[rendered["to"]],
        reply_to=rendered["reply_to"],
        headers={"Message-ID": reminder.message_id, "X-Closing-Reminder": str(reminder.pk)},
        connection=connection,
    )
    message.metadata = {"deal_id": str(reminder.deal_id)}  # ESP tracking events (anymail)
    return message


def _parts_key(reminder: Reminder) -> tuple:
    """What a reminder's rendered text depends on: the deal (its owner, account and buying
    group), the contract version and the texts; the reminder's own fields only when the
    texts use them."""
    key = (
        reminder.deal_id,
        reminder.contract_version_id,
        reminder.subject_template,
        reminder.body_template,
    )
    if "reminder" in reminder.subject_template or "reminder" in reminder.body_template:
        key += (reminder.pk,)
    return key


def _email_parts(reminder: Reminder, cache: dict | None = None) -> dict:
    """Subject, body (with the signing link), recipient and Reply-To of a follow-up email."""
    key = _parts_key(reminder)
    if cache is not None and key in cache:
        return cache[key]
    context = reminder_context(reminder)
    contact = context["contact"]
    if contact is None:
        raise PermanentSendError(
            gettext(
                "Nobody to write to: add a stakeholder (ideally the signer) with an email address."
            )
        )
    subject = " ".join(_render(reminder.subject_template, context).split())
    body = _render(reminder.body_template, context)
    if not subject:
        raise PermanentSendError(gettext("The follow-up subject renders empty."))
    from .deal_email import signing_link_paragraph

    body += signing_link_paragraph(reminder.contract_version, body)
    parts = {
        "subject": subject,
        "body": body,
        "to": contact.email,
        "reply_to": addressing.reply_to(reminder.deal_id, reminder.deal.owner.email),
    }
    if cache is not None:
        cache[key] = parts
    return parts


def _backoff(attempts: int) -> dt.timedelta:
    base = settings.FOLLOWUPS_RETRY_BACKOFF_SECONDS
    return dt.timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), 3600))


def reminder_batch_send(*, ids: list[int], token: uuid.UUID | str) -> BatchResult:
    """Send the reminders of one claim; sent ones are committed in small groups as they go.

    Safe to run twice (only rows still holding `token` are touched) and to kill at any
    point: rows not yet committed as sent are claimed again when their lease expires, and
    the only email that can go out twice is the one being sent when the worker died (with
    the default FOLLOWUPS_COMMIT_EVERY=1: each sent reminder is committed at once, in
    two statements), resent with the same Message-ID.
    """
    with _commits_without_flush_wait():
        return _batch_send(ids=ids, token=uuid.UUID(str(token)))


@contextlib.contextmanager
def _commits_without_flush_wait():
    """On PostgreSQL, the batch's commits do not wait for the disk flush (reset after).

    A worker crash cannot lose a commit; only a database crash in the next few hundred
    milliseconds could, and then those reminders are resent with the same Message-ID.
    Not waiting for the flush is what makes one commit per sent reminder affordable.
    """
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO OFF")
    try:
        yield
    finally:
        with contextlib.suppress(DatabaseError), connection.cursor() as cursor:
            cursor.execute("RESET synchronous_commit")


def _batch_send(*, ids: list[int], token: uuid.UUID) -> BatchResult:
    result = BatchResult()
    lease = _lease()
    started = time.monotonic()
    # Prefetched, not joined: the reminders of one deal share one Deal (and version,
    # owner, account) instance, so each deal's people are loaded and filtered once.
    reminders = list(
        Reminder.objects.filter(pk__in=ids, claim_token=token, status=Reminder.Status.SENDING)
        .prefetch_related(
            "deal__owner",
            "deal__account__contacts",
            "deal__stakeholders__contact",
            "contract_version__signers",  # who is due signs: one query per batch
        )
        .order_by("due_at", "pk")
    )
    result.not_owned = len(ids) - len(reminders)
    if not reminders:
        return result
    # Stop early enough that no other dispatcher can reclaim a row we are still sending,
    # and before Celery's soft time limit interrupts the batch.
    budget = lease.total_seconds() * 0.75
    soft_limit = getattr(settings, "FOLLOWUPS_TASK_SOFT_TIME_LIMIT", None)
    if soft_limit:
        budget = min(budget, soft_limit * 0.8)
    # A live task must never lose its claim: the lease has to outlast the task's hard time
    # limit. A fresh claim does (lease = limit + 5 s) and is sent without another write;
    # a claim that waited in the queue is renewed first.
    left = min(r.lease_until for r in reminders) - timezone.now()
    if left.total_seconds() < settings.FOLLOWUPS_TASK_TIME_LIMIT:
        reminders = _lease_renew(reminders, token, lease)
        result.not_owned = len(ids) - len(reminders)
    handled: set[int] = set()
    emailed: list[tuple[Reminder, dict]] = []  # sent (sent_at committed), not yet recorded
    pending: list[tuple[Reminder, dict]] = []  # tasks, committed one by one
    cache: dict = {}  # texts rendered once per deal and template in this batch
    working: dict = {}  # owner id → working now?
    mail = get_connection()
    try:
        mail.open()
        for reminder in reminders:
            if time.monotonic() - started > budget:
                break
            outcome = _send_one(reminder, token, mail, result, cache=cache, working=working)
            handled.add(reminder.pk)
            if outcome is None:
                continue
            if outcome.get("emailed"):
                emailed.append((reminder, outcome))
                if len(emailed) >= settings.FOLLOWUPS_RECORD_EVERY:
                    _record_emailed(emailed, token, result)
                    emailed = []
            else:
                pending.append((reminder, outcome))
                if len(pending) >= settings.FOLLOWUPS_COMMIT_EVERY:
                    _commit_sent(pending, token, result)
                    pending = []
    finally:
        try:
            mail.close()
        finally:
            # What went out is recorded, even on error (and by the next claim if this
            # process dies first: its sent_at is already committed).
            _record_emailed(emailed, token, result)
            _commit_sent(pending, token, result)
            # One statement for the whole batch: the deals whose follow-ups went out.
            sent = set(result.sent)
            deals_mark_active(deal_ids={r.deal_id for r in reminders if r.pk in sent})
            leftover = [r.pk for r in reminders if r.pk not in handled]
            if leftover:  # not reached in time: back to the queue for the next tick
                result.returned.extend(leftover)
                Reminder.objects.filter(
                    pk__in=leftover, claim_token=token, status=Reminder.Status.SENDING
                ).update(
                    status=Reminder.Status.SCHEDULED,
                    attempts=F("attempts") - 1,
                    claim_token=None,
                    lease_until=None,
                    updated_at=timezone.now(),
                )
    return result


def _lease_renew(reminders: list[Reminder], token: uuid.UUID, lease) -> list[Reminder]:
    """Extend the claim on these reminders; returns those still ours (in the same order)."""
    pks = [r.pk for r in reminders]
    owned = Reminder.objects.filter(pk__in=pks, claim_token=token, status=Reminder.Status.SENDING)
    if owned.update(lease_until=timezone.now() + lease) == len(pks):
        return reminders
    # Some lease ran out and another dispatcher took those rows: leave them to it.
    still = set(owned.values_list("pk", flat=True))
    return [r for r in reminders if r.pk in still]


_MARK_EMAILED_SQL = None


def _mark_emailed(reminder: Reminder, token: uuid.UUID, recipient: str, now) -> bool:
    """Commit that this reminder's email went out, before the next one is sent: one
    UPDATE (its own transaction) that keeps the claim, so the reminder is still
    `sending` until `_record_emailed` marks it sent with its timeline event. A process
    killed between the two leaves a row whose `sent_at` says the email is out: the next
    claim records it without sending it again."""
    global _MARK_EMAILED_SQL
    if _MARK_EMAILED_SQL is None:
        table = connection.ops.quote_name(Reminder._meta.db_table)
        _MARK_EMAILED_SQL = (
            f"UPDATE {table} SET sent_at = %s, recipient = %s "
            "WHERE id = %s AND claim_token = %s AND status = %s"
        )
    fields = Reminder._meta
    params = [
        fields.get_field("sent_at").get_db_prep_value(now, connection),
        recipient,
        reminder.pk,
        fields.get_field("claim_token").get_db_prep_value(token, connection),
        Reminder.Status.SENDING.value,
    ]
    with connection.cursor() as cursor:
        cursor.execute(_MARK_EMAILED_SQL, params)
        return cursor.rowcount == 1


def _record_emailed(emailed: list[tuple[Reminder, dict]], token: uuid.UUID, result: BatchResult):
    """Mark emailed reminders sent with their timeline events: one transaction for many
    (lock the rows still ours, one UPDATE, one INSERT of the events)."""
    if not emailed:
        return
    now = timezone.now()
    by_pk = {r.pk: (r, info) for r, info in emailed}
    with transaction.atomic():
        owned = list(
            Reminder.objects.select_for_update()
            .filter(
                pk__in=list(by_pk),
                claim_token=token,
                status=Reminder.Status.SENDING,
                sent_at__isnull=False,
            )
            .values_list("pk", flat=True)
        )
        if not owned:
            return
        Reminder.objects.filter(pk__in=owned).update(
            status=Reminder.Status.SENT,
            claim_token=None,
            lease_until=None,
            last_error="",
            updated_at=now,
        )
        events = []
        for pk in sorted(owned, key=lambda pk: (by_pk[pk][1]["sent_at"], pk)):
            reminder, info = by_pk[pk]
            events.append(
                {
                    "deal": reminder.deal,
                    "kind": DealEvent.Kind.REMINDER,
                    "reason": f"Follow-up #{reminder.sequence} emailed to {info['recipient']}: "
                    f"“{info['subject']}”",
                    "data": {"reminder_id": reminder.pk, "channel": reminder.channel},
                }
            )
        # The deals' last activity is set once per batch (see _batch_send), not per send.
        deal_activity_record_many(entries=events, mark_active=False)
    result.sent.extend(owned)


def _owned(reminder: Reminder, token: uuid.UUID):
    """The reminder's row, locked, if this claim still owns it (inside a transaction)."""
    return Reminder.objects.select_for_update().filter(
        pk=reminder.pk, claim_token=token, status=Reminder.Status.SENDING
    )


def _release(reminder: Reminder, token: uuid.UUID, **fields) -> bool:
    return bool(
        _owned(reminder, token).update(
            claim_token=None, lease_until=None, updated_at=timezone.now(), **fields
        )
    )


def _send_one(
    reminder: Reminder,
    token: uuid.UUID,
    mail,
    result: BatchResult,
    *,
    cache: dict | None = None,
    working: dict | None = None,
) -> dict | None:
    """Send one reminder's email or render its task; returns what to record, or None when
    it was cancelled, deferred or failed (those are committed here, one by one).

    An email's sending is committed at once (`_mark_emailed`); a reminder whose email a
    killed worker already sent (its `sent_at` is set) is only recorded, never sent again.
    """
    deal = reminder.deal
    now = timezone.now()
    if reminder.channel == Channel.EMAIL and reminder.sent_at is not None:
        try:
            subject = _email_parts(reminder, cache)["subject"]
        except PermanentSendError:
            subject = reminder.subject_template
        return {
            "emailed": True,
            "recipient": reminder.recipient,
            "subject": subject,
            "sent_at": reminder.sent_at,
        }
    if deal.state in CLOSED_STATES:
        with transaction.atomic():
            if _release(
                reminder,
                token,
                status=Reminder.Status.CANCELLED,
                closed_reason="the deal is closed",
            ):
                result.cancelled.append(reminder.pk)
        return None
    if reminder.channel == Channel.EMAIL:
        owner_id = deal.owner_id
        if working is not None and owner_id in working:
            at_work = working[owner_id]
        else:
            at_work = is_working_time(when=now, user=deal.owner)
            if working is not None:
                working[owner_id] = at_work
        if not at_work:
            with transaction.atomic():
                if _release(
                    reminder,
                    token,
                    status=Reminder.Status.SCHEDULED,
                    due_at=working_time_next(when=now, user=deal.owner),
                    attempts=F("attempts") - 1,
                ):
                    result.deferred.append(reminder.pk)
            return None
    try:
        if reminder.channel == Channel.EMAIL:
            message = reminder_email(reminder, connection=mail, parts=cache)
            message.send()
            if not _mark_emailed(reminder, token, message.to[0], now):
                return None  # reclaimed meanwhile (cannot happen within the lease budget)
            return {
                "emailed": True,
                "recipient": message.to[0],
                "subject": message.subject,
                "sent_at": now,
            }
        context = reminder_context(reminder)
        return {
            "recipient": "",
            "subject": " ".join(_render(reminder.subject_template, context).split()),
            "note": _render(reminder.body_template, context),
            "sent_at": now,
        }
    except PermanentSendError as exc:
        _record_error(reminder, token, str(exc), permanent=True, result=result)
    except SoftTimeLimitExceeded:
        raise  # the batch stops; what was sent is committed, the rest goes back to the queue
    except Exception as exc:  # provider errors: retried with backoff, then failed
        logger.warning("Follow-up %s could not be sent: %s", reminder.pk, exc)
        _record_error(
            reminder, token, f"{type(exc).__name__}: {exc}", permanent=False, result=result
        )
    return None


def _commit_sent(pending: list[tuple[Reminder, dict]], token: uuid.UUID, result: BatchResult):
    """Mark sent reminders sent, with their tasks and timeline events, in one transaction.

    Each reminder's UPDATE is conditional on the claim (token and status), so nothing is
    read or locked first: for one email reminder the commit is two statements (the
    reminder, its timeline event) and COMMIT.
    """
    if not pending:
        return
    now = timezone.now()
    with transaction.atomic():
        rows, tasks, events = [], [], []
        for reminder, info in pending:
            owned = Reminder.objects.filter(
                pk=reminder.pk, claim_token=token, status=Reminder.Status.SENDING
            ).update(
                status=Reminder.Status.SENT,
                sent_at=now,
                recipient=info["recipient"],
                claim_token=None,
                lease_until=None,
                last_error="",
                updated_at=now,
            )
            if not owned:
                continue  # reclaimed meanwhile (cannot happen within the lease budget)
            deal = reminder.deal
            reminder.recipient = info["recipient"]
            rows.append(reminder)
            if reminder.channel == Channel.EMAIL:
                reason = f"Follow-up #{reminder.sequence} emailed to {info['recipient']}: "
            else:
                tasks.append(
                    RepTask(
                        reminder=reminder,
                        owner=deal.owner,
                        deal=deal,
                        kind=reminder.channel,
                        title=info["subject"],
                        note=info["note"],
                        due_at=reminder.due_at,
                    )
                )
                what = "call" if reminder.channel == Channel.CALL else "meeting"
                reason = f"Follow-up #{reminder.sequence}: {what} added to {deal.owner}'s day: "
            events.append(
                {
                    "deal": deal,
                    "kind": DealEvent.Kind.REMINDER,
                    "reason": f"{reason}“{info['subject']}”",
                    "data": {"reminder_id": reminder.pk, "channel": reminder.channel},
                }
            )
        if tasks:
            RepTask.objects.bulk_create(tasks, ignore_conflicts=True)
        # The deals' last activity is set once per batch (see _batch_send), not per send.
        deal_activity_record_many(entries=events, mark_active=False)
    result.sent.extend(r.pk for r in rows)


def _record_error(reminder, token, error: str, *, permanent: bool, result: BatchResult) -> None:
    with transaction.atomic():
        if permanent or reminder.attempts >= settings.FOLLOWUPS_MAX_ATTEMPTS:
            if _release(reminder, token, status=Reminder.Status.FAILED, last_error=error):
                deal_activity_record(
                    deal=reminder.deal,
                    by=None,
                    kind=DealEvent.Kind.REMINDER,
                    counts_as_activity=False,
                    reason=f"Follow-up #{reminder.sequence} could not be sent: {error}",
                    reminder_id=reminder.pk,
                    failed=True,
                )
                result.failed.append(reminder.pk)
        elif _release(
            reminder,
            token,
            status=Reminder.Status.SCHEDULED,
            due_at=timezone.now() + _backoff(reminder.attempts),
            last_error=error,
        ):
            result.retried.append(reminder.pk)


# --- rep tasks -------------------------------------------------------------------


@transaction.atomic
def rep_task_complete(*, task: RepTask, by: User, outcome: str = "") -> RepTask:
    """The rep made the call or held the meeting: the touch goes on the deal's timeline."""
    deal = deal_lock(task.deal_id)
    task = RepTask.objects.select_for_update().get(pk=task.pk)
    task.deal = deal
    if by.pk != task.owner_id:
        _require_workable(deal, by)
    if task.cancelled_at:
        raise DealConflict(
            gettext("This task was cancelled (the deal closed or the contract changed).")
        )
    if task.completed_at:
        raise conflict_already(
            gettext("This task is already done"), by=task.completed_by, when=task.completed_at
        )
    task.completed_at = timezone.now()
    task.completed_by = by
    task.outcome = outcome.strip()
    task.save(update_fields=["completed_at", "completed_by", "outcome"])
    kind = DealEvent.Kind.MEETING if task.kind == RepTask.Kind.MEETING else DealEvent.Kind.TASK
    reason = f"{task.get_kind_display()} done: {task.title}"
    if task.outcome:
        reason += f". {task.outcome}"
    deal_activity_record(deal=task.deal, by=by, kind=kind, reason=reason, task_id=task.pk)
    return task


# --- contract review meeting -----------------------------------------------------


def review_meeting_schedule(
    *,
    deal: Deal,
    by: User,
    starts_at: dt.datetime,
    attendees: list[Contact],
    duration_minutes: int = 45,
    location: str = "",
    agenda: str = "",
) -> ReviewMeeting:
    """Schedule (or move) the deal's contract review meeting and invite the buyers.

    The start becomes the deal's deadline (`review_meeting_at`); the rep gets a meeting
    task; each attendee gets an email with an iCalendar invitation after commit.
    """
    _require_workable(deal, by)
    if deal.state in CLOSED_STATES:
        raise DealError(gettext("This deal is closed: no review meeting to hold."))
    if timezone.is_naive(starts_at):
        raise DealError(gettext("Give the meeting time with a time zone."))
    if starts_at <= timezone.now():
        raise DealError(gettext("Pick a meeting time in the future."))
    if not 15 <= duration_minutes <= 480:
        raise DealError(gettext("A meeting lasts between 15 minutes and 8 hours."))
    if not attendees:
        raise DealError(gettext("Invite at least one person from the buying group."))
    stakeholder_ids = set(deal.stakeholders.values_list("contact_id", flat=True))
    outsiders = [c for c in attendees if c.pk not in stakeholder_ids]
    if outsiders:
        raise DealError(
            gettext(
                "%(outsiders)s is not in this deal's buying group; add them as a stakeholder first."
            )
            % {"outsiders": ", ".join(map(str, outsiders))}
        )
    no_email = [c for c in attendees if not c.email]
    if no_email:
        raise DealError(
            gettext("%(no_email)s has no email address for the invitation.")
            % {"no_email": ", ".join(map(str, no_email))}
        )
    with transaction.atomic():
        meeting = (
            ReviewMeeting.objects.select_for_update()
            .filter(deal=deal, cancelled_at__isnull=True, starts_at__gt=timezone.now())
            .first()
        )
        moved = meeting is not None
        if meeting is None:
            meeting = ReviewMeeting(deal=deal, organizer=by)
        else:
            meeting.sequence += 1
        meeting.starts_at = starts_at
        meeting.duration_minutes = duration_minutes
        meeting.location = location.strip()
        meeting.agenda = agenda.strip()
        meeting.organizer = by
        meeting.save()
        meeting.attendees.set(attendees)
        RepTask.objects.update_or_create(
            meeting=meeting,
            defaults={
                "owner": deal.owner,
                "deal": deal,
                "kind": RepTask.Kind.MEETING,
                "title": f"Contract review meeting: {deal.title}",
                "note": meeting.agenda,
                "due_at": starts_at,
                "completed_at": None,
                "cancelled_at": None,
            },
        )
        deal_update(deal=deal, by=by, review_meeting_at=starts_at)
        local = timezone.localtime(starts_at, _rep_zone(deal.owner))
        deal_activity_record(
            deal=deal,
            by=by,
            kind=DealEvent.Kind.MEETING,
            reason=(
                f"Contract review meeting {'moved to' if moved else 'scheduled for'} "
                f"{local:%a %d %b %Y, %H:%M} with {', '.join(map(str, attendees))}."
            ),
            meeting_id=meeting.pk,
            sequence=meeting.sequence,
        )
        from .tasks import send_meeting_invitation

        meeting_id, sequence = meeting.pk, meeting.sequence
        transaction.on_commit(lambda: send_meeting_invitation.delay(meeting_id, sequence))
    return meeting


def review_meeting_invitation_send(*, meeting_id: int, sequence: int) -> bool:
    """Email the invitation (with its .ics) for one version of the meeting, once.

    Returns False when there is nothing to do (already sent, or a newer version exists).
    """
    meeting = (
        ReviewMeeting.objects.select_related("deal__account", "organizer")
        .prefetch_related("attendees")
        .get(pk=meeting_id)
    )
    if meeting.sequence != sequence or meeting.invitation_sent_sequence >= sequence:
        return False
    if meeting.cancelled_at:
        return False
    deal, organizer = meeting.deal, meeting.organizer
    attendees = list(meeting.attendees.all())
    calendar = ical.meeting_invitation(meeting=meeting, attendees=attendees)
    local = timezone.localtime(meeting.starts_at, _rep_zone(organizer))
    verb = "Updated invitation" if sequence else "Invitation"
    body = (
        f"Hello,\n\n"
        f"{organizer} would like to walk through the contract for “{deal.title}” with you, "
        f"answer any questions and make sure it fits what {deal.account} needs.\n\n"
        f"When: {local:%A %d %B %Y, %H:%M} ({organizer.time_zone}), "
        f"{meeting.duration_minutes} minutes\n"
        + (f"Where: {meeting.location}\n" if meeting.location else "")
        + (f"\nAgenda:\n{meeting.agenda}\n" if meeting.agenda else "")
        + "\nThe calendar invitation is attached. If the time does not suit you, simply reply "
        "and we will find another.\n\n"
        f"Best regards,\n{organizer}\n"
    )
    message = EmailMessage(
        subject=f"{verb}: contract review for {deal.title}",
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[c.email for c in attendees],
        reply_to=addressing.reply_to(deal.pk, organizer.email),
        headers={
            "Message-ID": addressing.message_id(deal.pk, f"{meeting.uid.split('@')[0]}-{sequence}")
        },
    )
    message.attach("invite.ics", calendar, "text/calendar; method=REQUEST; charset=utf-8")
    message.send()
    with transaction.atomic():
        updated = ReviewMeeting.objects.filter(
            pk=meeting.pk, invitation_sent_sequence__lt=sequence
        ).update(invitation_sent_sequence=sequence)
        if updated:
            deal_activity_record(
                deal=deal,
                by=None,
                kind=DealEvent.Kind.MEETING,
                reason=f"{verb} with calendar file sent to {', '.join(map(str, attendees))}.",
                meeting_id=meeting.pk,
            )
    return True


@transaction.atomic
def recipient_personal_data_erase(*, contact, by) -> dict[str, int]:
    """Erase the contact as a follow-up recipient (part of deals.services.contact_erase): their
    email leaves the reminders sent to them, their name leaves the rep tasks about them."""
    erased = 0
    if contact.email:
        erased = Reminder.objects.filter(
            deal__account_id=contact.account_id, recipient__iexact=contact.email
        ).update(recipient="")
    tasks = 0
    name = contact.full_name
    if len(name) > 2:
        placeholder = f"Erased contact #{contact.pk}"
        for task in RepTask.objects.filter(deal__account_id=contact.account_id).filter(
            Q(title__contains=name) | Q(note__contains=name)
        ):
            task.title = task.title.replace(name, placeholder)
            task.note = task.note.replace(name, placeholder)
            task.save(update_fields=["title", "note"])
            tasks += 1
    return {"follow_up_recipients_erased": erased, "rep_tasks_redacted": tasks}
