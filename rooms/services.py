"""Every write of the close plan and the buyer room: keyword-only, atomic, audited.

Rep-side services take `by` (a user) and check that the user may work the deal. Buyer-side
services take `link` (a `RoomLink` already checked by `room_link_for_token`) and act as that
contact: the timeline event has no actor and names the buyer in its data.
A service that checks a status then changes it locks the deal's row first, then its record.
"""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from deals import services as deal_services
from deals.models import (
    BuyingSignal,
    Contact,
    Deal,
    DealEvent,
    DealState,
    Objection,
    User,
    can_work_deal,
)
from deals.services import (
    DealConflict,
    DealError,
    NotPermitted,
    conflict_already,
    deal_activity_record,
    deal_lock,
    row_lock,
)

from .models import (
    DealNeed,
    Phase,
    PlanOutcome,
    PlanStep,
    PlanTemplate,
    RoomFile,
    RoomLink,
    RoomQuestion,
    Side,
)

ROOM_SALT = "rooms.room-link"
#: A new visit is counted when the last one by the same link is older than this.
VISIT_GAP = dt.timedelta(minutes=30)


class LinkRefused(Exception):
    """The room link is tampered with, expired or revoked; `message` is for the buyer."""

    def __init__(self, message: str, *, status: int = 403):
        super().__init__(message)
        self.message = message
        self.status = status


# --- helpers -----------------------------------------------------------------


def _require_workable(deal: Deal, by: User) -> None:
    if not can_work_deal(deal, by):
        raise NotPermitted(can_work_deal.denied_message)


def _one_line(value: str, what: str, *, limit: int = 200) -> str:
    value = (value or "").strip()
    if not value:
        raise DealError(_("%(what)s cannot be empty.") % {"what": what})
    if "\n" in value or "\r" in value:
        raise DealError(_("%(what)s must be a single line.") % {"what": what})
    if len(value) > limit:
        raise DealError(
            _("%(what)s is at most %(limit)d characters.") % {"what": what, "limit": limit}
        )
    return value


def _buyer_name(link: RoomLink) -> str:
    return str(link.contact)


def _check_owner(deal: Deal, side: str, owner_user, owner_contact) -> None:
    if side not in Side.values:
        raise DealError(_("Choose the side that owns the step: seller or buyer."))
    if owner_user is not None and owner_contact is not None:
        raise DealError(_("A step has one owner: a team member or a buying-group contact."))
    if owner_user is not None:
        if side != Side.SELLER:
            raise DealError(_("A team member owns seller steps; pick a buying-group contact."))
        if owner_user.team_id != deal.team_id or not owner_user.is_active:
            raise DealError(_("The owner must be an active member of the deal's team."))
    if owner_contact is not None:
        if side != Side.BUYER:
            raise DealError(_("A buying-group contact owns buyer steps."))
        if not deal.stakeholders.filter(contact=owner_contact).exists():
            raise DealError(_("The owner must be in the deal's buying group."))


def _next_position(deal: Deal, phase: str) -> int:
    last = PlanStep.objects.filter(deal=deal, phase=phase).order_by("-position").first()
    return (last.position + 1) if last else 1


# --- templates and plans -------------------------------------------------------------


def plan_template_for(deal: Deal) -> PlanTemplate | None:
    """The team's default template, else the default for every team, else any it may use."""
    usable = PlanTemplate.objects.filter(Q(team=deal.team_id) | Q(team__isnull=True))
    return (
        usable.filter(team=deal.team_id, is_default=True).order_by("pk").first()
        or usable.filter(team__isnull=True, is_default=True).order_by("pk").first()
        or usable.order_by("pk").first()
    )


@transaction.atomic
def plan_create_from_template(
    *, deal: Deal, by: User, template: PlanTemplate | None = None
) -> list[PlanStep]:
    """Build the deal's plan from a template (once: a deal with steps keeps its plan)."""
    deal = deal_lock(deal.pk)
    _require_workable(deal, by)
    if not deal.is_open:
        raise DealError(_("The plan is built while the deal is open."))
    if PlanStep.objects.filter(deal=deal).exists():
        raise DealConflict(_("This deal already has a close plan. Reload the page to see it."))
    template = template or plan_template_for(deal)
    if template is None:
        raise DealError(_("No plan template exists yet: an admin adds one under Plan templates."))
    if template.team_id not in (None, deal.team_id):
        raise DealError(_("This template belongs to another team."))
    today = timezone.localdate()
    steps = [
        PlanStep(
            deal=deal,
            position=t.position or i,
            title=t.title,
            side=t.side,
            phase=t.phase,
            owner_user=deal.owner if t.side == Side.SELLER else None,
            due_date=(today + dt.timedelta(days=t.days_after_start))
            if t.phase == Phase.CLOSE
            else None,
        )
        for i, t in enumerate(template.steps.all(), start=1)
    ]
    PlanStep.objects.bulk_create(steps)
    deal_activity_record(
        deal=deal,
        by=by,
        kind=DealEvent.Kind.PLAN,
        reason=_("Close plan built from “%(name)s” (%(n)d steps)")
        % {"name": template.name, "n": len(steps)},
        template_id=template.pk,
    )
    return list(PlanStep.objects.filter(deal=deal))


@transaction.atomic
def plan_step_add(
    *,
    deal: Deal,
    by: User,
    title: str,
    side: str = Side.SELLER,
    phase: str = Phase.CLOSE,
    owner_user: User | None = None,
    owner_contact: Contact | None = None,
    due_date: dt.date | None = None,
    note: str = "",
) -> PlanStep:
    deal = deal_lock(deal.pk)
    _require_workable(deal, by)
    title = _one_line(title, _("The step's title"))
    if phase not in Phase.values:
        raise DealError(_("Choose the phase: close or onboarding."))
    _check_owner(deal, side, owner_user, owner_contact)
    step = PlanStep.objects.create(
        deal=deal,
        position=_next_position(deal, phase),
        title=title,
        side=side,
        phase=phase,
        owner_user=owner_user,
        owner_contact=owner_contact,
        due_date=due_date,
        note=(note or "").strip()[:300],
    )
    deal_activity_record(
        deal=deal,
        by=by,
        kind=DealEvent.Kind.PLAN,
        reason=_("Plan step added: %(title)s") % {"title": title},
        step_id=step.pk,
    )
    return step


_UNSET: Any = object()


@transaction.atomic
def plan_step_update(
    *,
    step: PlanStep,
    by: User,
    expected_status: str | None = None,
    title: str = _UNSET,
    status: str = _UNSET,
    due_date: dt.date | None = _UNSET,
    owner_user: User | None = _UNSET,
    owner_contact: Contact | None = _UNSET,
    side: str = _UNSET,
    note: str = _UNSET,
    expected_version: str | None = None,
) -> PlanStep:
    """Change a step (the rep). `expected_status`: the status the rep saw; a step changed by
    someone else meanwhile (the buyer ticked it) is a conflict, not a silent overwrite.
    `expected_version`: the step's `version` the rep's edit form was made from; any change
    since (title, owner, date, status, note) refuses the edit the same way."""
    deal = deal_lock(step.deal_id)
    row_lock(step)
    step.deal = deal
    _require_workable(deal, by)
    if expected_status and step.status != expected_status:
        raise conflict_already(
            _("This step was marked “%(status)s” meanwhile")
            % {"status": step.get_status_display().lower()},
            by=step.done_by_user or step.done_by_contact,
            when=step.done_at,
        )
    if expected_version and step.version != expected_version:
        raise DealConflict(
            _(
                "Someone changed “%(title)s” meanwhile. Cancel to see their change, "
                "then edit it again."
            )
            % {"title": step.title}
        )
    changes: dict[str, Any] = {}
    if title is not _UNSET:
        changes["title"] = _one_line(title, _("The step's title"))
    if status is not _UNSET:
        if status not in PlanStep.Status.values:
            raise DealError(_("A step is open, done or skipped."))
        changes["status"] = status
    if due_date is not _UNSET:
        changes["due_date"] = due_date
    if note is not _UNSET:
        note = (note or "").strip()
        if len(note) > 300:
            raise DealError(_("A step's note is at most 300 characters."))
        changes["note"] = note
    new_side = step.side if side is _UNSET else side
    new_user = step.owner_user if owner_user is _UNSET else owner_user
    new_contact = step.owner_contact if owner_contact is _UNSET else owner_contact
    if (side, owner_user, owner_contact) != (_UNSET, _UNSET, _UNSET):
        if side is not _UNSET and side != step.side:
            # Switching sides drops the other side's owner unless a new one is given.
            if owner_user is _UNSET and new_side == Side.BUYER:
                new_user = None
            if owner_contact is _UNSET and new_side == Side.SELLER:
                new_contact = None
        _check_owner(deal, new_side, new_user, new_contact)
        changes.update(side=new_side, owner_user=new_user, owner_contact=new_contact)
    if "status" in changes and changes["status"] != step.status:
        if changes["status"] == PlanStep.Status.OPEN:
            changes.update(done_at=None, done_by_user=None, done_by_contact=None)
        else:
            changes.update(done_at=timezone.now(), done_by_user=by, done_by_contact=None)
    changed = {k: v for k, v in changes.items() if getattr(step, k) != v}
    if not changed:
        return step
    for key, value in changed.items():
        setattr(step, key, value)
    step.save(update_fields=list(changed))
    shown = {
        k: (str(v) if v is not None else "")
        for k, v in changed.items()
        if k in ("title", "status", "due_date", "side", "note")
    }
    if "owner_user" in changed or "owner_contact" in changed:
        shown["owner"] = step.owner_label
    deal_activity_record(
        deal=deal,
        by=by,
        kind=DealEvent.Kind.PLAN,
        reason=_("Plan step “%(title)s” updated") % {"title": step.title},
        step_id=step.pk,
        changes=shown,
    )
    return step


@transaction.atomic
def plan_step_move(*, step: PlanStep, by: User, direction: str) -> PlanStep:
    """Move a step one place up or down among its phase's steps (the list is renumbered
    1..n, so equal positions from a template cannot make a move do nothing)."""
    deal = deal_lock(step.deal_id)
    row_lock(step)
    step.deal = deal
    _require_workable(deal, by)
    if direction not in ("up", "down"):
        raise DealError(_("A step moves up or down."))
    siblings = list(
        PlanStep.objects.select_for_update()
        .filter(deal=deal, phase=step.phase)
        .order_by("position", "pk")
    )
    index = next(i for i, s in enumerate(siblings) if s.pk == step.pk)
    other = index - 1 if direction == "up" else index + 1
    if not 0 <= other < len(siblings):
        raise DealError(
            _("“%(title)s” is already first.") % {"title": step.title}
            if direction == "up"
            else _("“%(title)s” is already last.") % {"title": step.title}
        )
    siblings[index], siblings[other] = siblings[other], siblings[index]
    moved = []
    for position, sibling in enumerate(siblings, start=1):
        if sibling.position != position:
            sibling.position = position
            moved.append(sibling)
    PlanStep.objects.bulk_update(moved, ["position"])
    step.position = other + 1
    deal_activity_record(
        deal=deal,
        by=by,
        kind=DealEvent.Kind.PLAN,
        reason=(
            _("Plan step “%(title)s” moved up") % {"title": step.title}
            if direction == "up"
            else _("Plan step “%(title)s” moved down") % {"title": step.title}
        ),
        step_id=step.pk,
        position=step.position,
    )
    return step


# --- room links --------------------------------------------------------------------


def room_token(link: RoomLink) -> str:
    return signing.TimestampSigner(salt=ROOM_SALT).sign_object(
        {"l": link.pk, "n": link.nonce}, compress=True
    )


def room_url(link: RoomLink) -> str:
    from django.urls import reverse

    return settings.SITE_URL + reverse("rooms_public:room", args=[room_token(link)])


def room_link_for_token(token: str) -> RoomLink:
    """The live link a token names, or LinkRefused saying why (for the buyer)."""
    try:
        data = signing.TimestampSigner(salt=ROOM_SALT).unsign_object(token)
    except signing.BadSignature:
        raise LinkRefused(_("This link is not valid. Check that it was copied whole.")) from None
    link = (
        RoomLink.objects.select_related(
            "deal", "deal__account", "deal__owner", "deal__team", "contact"
        )
        .filter(pk=data.get("l") if isinstance(data, dict) else None)
        .first()
    )
    if link is None or link.nonce != data.get("n"):
        raise LinkRefused(_("This link is not valid. Check that it was copied whole."))
    owner = link.deal.owner
    if link.revoked_at is not None:
        raise LinkRefused(
            _("This link was turned off by %(owner)s. Ask them for a new one if you need it.")
            % {"owner": owner}
        )
    if link.expires_at <= timezone.now():
        raise LinkRefused(
            _("This link has expired. Ask %(owner)s for a new one.") % {"owner": owner}
        )
    if link.deal.archived_at is not None or link.contact.archived_at is not None:
        raise LinkRefused(_("This room is closed."))
    return link


@transaction.atomic
def room_link_issue(*, deal: Deal, by: User, contact: Contact, days: int | None = None) -> RoomLink:
    """A new link for one buying-group contact (their earlier live links keep working)."""
    deal = deal_lock(deal.pk)
    _require_workable(deal, by)
    if deal.archived_at is not None:
        raise DealError(_("This deal is archived."))
    if not deal.stakeholders.filter(contact=contact).exists():
        raise DealError(_("Room links are for people in the deal's buying group."))
    days = settings.ROOM_LINK_DAYS if days is None else days
    if not 1 <= days <= 365:
        raise DealError(_("A link lives between 1 and 365 days."))
    link = RoomLink.objects.create(
        deal=deal,
        contact=contact,
        created_by=by,
        expires_at=timezone.now() + dt.timedelta(days=days),
    )
    deal_activity_record(
        deal=deal,
        by=by,
        kind=DealEvent.Kind.ROOM,
        reason=_("Room shared with %(who)s") % {"who": contact},
        link_id=link.pk,
        contact_id=contact.pk,
    )
    return link


@transaction.atomic
def room_link_revoke(*, link: RoomLink, by: User) -> RoomLink:
    deal = deal_lock(link.deal_id)
    row_lock(link)
    link.deal = deal
    _require_workable(deal, by)
    if link.revoked_at is not None:
        raise conflict_already(
            _("This link was already turned off"), by=link.revoked_by, when=link.revoked_at
        )
    link.revoked_at = timezone.now()
    link.revoked_by = by
    link.save(update_fields=["revoked_at", "revoked_by"])
    deal_activity_record(
        deal=deal,
        by=by,
        kind=DealEvent.Kind.ROOM,
        reason=_("Room link of %(who)s turned off") % {"who": link.contact},
        link_id=link.pk,
    )
    return link


# --- what the buyer does -------------------------------------------------------------


def _notify_owner(deal: Deal, *, kind: str, text: str, key: str) -> None:
    from notifications.services import notify

    notify(recipient=deal.owner, kind=kind, text=text, key=key, deal=deal)


@transaction.atomic
def room_visit_record(*, link: RoomLink) -> bool:
    """Count a visit (a new one after VISIT_GAP). True when a visit was recorded."""
    from notifications.models import Kind

    deal = deal_lock(link.deal_id)
    row_lock(link)
    link.deal = deal
    now = timezone.now()
    if link.last_visit_at and now - link.last_visit_at < VISIT_GAP:
        link.last_visit_at = now
        link.save(update_fields=["last_visit_at"])
        return False
    first = link.first_visit_at is None
    link.visits += 1
    link.last_visit_at = now
    if first:
        link.first_visit_at = now
    link.save(update_fields=["visits", "last_visit_at", "first_visit_at"])
    who = _buyer_name(link)
    deal_activity_record(
        deal=deal,
        by=None,
        kind=DealEvent.Kind.ROOM,
        reason=_("%(who)s opened the closing room") % {"who": who},
        link_id=link.pk,
        contact_id=link.contact_id,
        visit=link.visits,
    )
    if first:
        deal_services.buying_signal_record_system(
            deal=deal,
            kind=BuyingSignal.Kind.ROOM_VISIT,
            note=_("%(who)s opened the closing room for the first time") % {"who": who},
            channel="other",
        )
        _notify_owner(
            deal,
            kind=Kind.ROOM_VISITED,
            text=_("%(who)s opened the closing room of %(deal)s") % {"who": who, "deal": deal},
            key=f"room-visit:{link.pk}",
        )
    return True


@transaction.atomic
def room_step_tick(*, link: RoomLink, step: PlanStep) -> PlanStep:
    """The buyer marks one of the buyer side's steps done."""
    deal = deal_lock(link.deal_id)
    row_lock(step)
    if step.deal_id != deal.pk:
        raise LinkRefused(_("Not found."), status=404)
    if step.side != Side.BUYER:
        raise DealError(_("Only the buying group's steps can be ticked here."))
    if step.status != PlanStep.Status.OPEN:
        raise conflict_already(
            _("This step is already marked “%(status)s”")
            % {"status": step.get_status_display().lower()},
            by=step.done_by_contact or step.done_by_user,
            when=step.done_at,
        )
    step.status = PlanStep.Status.DONE
    step.done_at = timezone.now()
    step.done_by_contact = link.contact
    step.done_by_user = None
    step.save(update_fields=["status", "done_at", "done_by_contact", "done_by_user"])
    deal_activity_record(
        deal=deal,
        by=None,
        kind=DealEvent.Kind.ROOM,
        reason=_("%(who)s ticked “%(title)s” in the closing room")
        % {"who": _buyer_name(link), "title": step.title},
        link_id=link.pk,
        step_id=step.pk,
    )
    return step


@transaction.atomic
def room_question_ask(*, link: RoomLink, text: str) -> RoomQuestion:
    from notifications.models import Kind

    text = (text or "").strip()
    if not text:
        raise DealError(_("Write your question."))
    if len(text) > 2000:
        raise DealError(_("A question is at most 2,000 characters."))
    deal = deal_lock(link.deal_id)
    question = RoomQuestion.objects.create(deal=deal, link=link, text=text)
    who = _buyer_name(link)
    deal_activity_record(
        deal=deal,
        by=None,
        kind=DealEvent.Kind.ROOM,
        reason=_("%(who)s asked: %(text)s") % {"who": who, "text": text},
        link_id=link.pk,
        question_id=question.pk,
    )
    deal_services.buying_signal_record_system(
        deal=deal, kind=BuyingSignal.Kind.ROOM_QUESTION, note=text, channel="other"
    )
    _notify_owner(
        deal,
        kind=Kind.ROOM_QUESTION,
        text=_("%(who)s asked in the closing room: %(text)s") % {"who": who, "text": text},
        key=f"room-question:{question.pk}",
    )
    return question


@transaction.atomic
def room_question_answer(*, question: RoomQuestion, by: User, answer: str) -> RoomQuestion:
    deal = deal_lock(question.deal_id)
    row_lock(question)
    question.deal = deal
    _require_workable(deal, by)
    answer = (answer or "").strip()
    if not answer:
        raise DealError(_("Write the answer."))
    if question.answered_at:
        raise conflict_already(
            _("This question was already answered"),
            by=question.answered_by,
            when=question.answered_at,
        )
    question.answer = answer[:4000]
    question.answered_by = by
    question.answered_at = timezone.now()
    question.save(update_fields=["answer", "answered_by", "answered_at"])
    deal_activity_record(
        deal=deal,
        by=by,
        kind=DealEvent.Kind.ROOM,
        reason=_("Answered in the closing room: %(text)s") % {"text": question.answer},
        question_id=question.pk,
    )
    return question


@transaction.atomic
def room_question_to_objection(
    *, question: RoomQuestion, by: User, category: str = Objection.Category.OTHER
) -> Objection:
    """One click: the buyer's question becomes an objection (through the objections service)."""
    deal = deal_lock(question.deal_id)
    row_lock(question)
    question.deal = deal
    _require_workable(deal, by)
    if question.objection_id:
        raise conflict_already(_("This question is already an objection"))
    if not deal.is_open:
        raise DealError(_("Objections are noted while the deal is open."))
    objection = deal_services.objection_raise(
        deal=deal,
        by=by,
        category=category,
        detail=_("%(who)s in the closing room: %(text)s")
        % {"who": question.link.contact, "text": question.text},
    )
    question.objection = objection
    question.save(update_fields=["objection"])
    return objection


def _check_upload(upload) -> tuple[str, str]:
    """(safe name, content type) of an allowed upload, or DealError saying what is allowed."""
    limit = settings.ROOM_UPLOAD_MAX_BYTES
    if upload is None:
        raise DealError(_("Choose a file."))
    if upload.size > limit:
        raise DealError(
            _("The file is too large: at most %(mb)s MB.") % {"mb": round(limit / 1048576, 1)}
        )
    if upload.size == 0:
        raise DealError(_("The file is empty."))
    base = os.path.basename(upload.name or "").replace("\x00", "")
    name = "".join(ch for ch in base if ch.isprintable() and ch not in '"\\/')[:150] or "file"
    ext = os.path.splitext(name)[1].lower()
    allowed = settings.ROOM_UPLOAD_EXTENSIONS
    if ext not in allowed:
        raise DealError(
            _("This type of file is not accepted. Allowed: %(types)s.")
            % {"types": ", ".join(sorted(allowed))}
        )
    return name, allowed[ext]


@transaction.atomic
def room_file_upload(*, link: RoomLink, upload) -> RoomFile:
    """A buyer's file: size- and type-limited, stored under a random name, never served
    inline (the content type is ours, from the extension, not the browser's)."""
    name, content_type = _check_upload(upload)
    deal = deal_lock(link.deal_id)
    room_file = RoomFile(
        deal=deal, name=name, size=upload.size, content_type=content_type, uploaded_by_link=link
    )
    room_file.file.save(name, upload, save=False)
    room_file.save()
    deal_activity_record(
        deal=deal,
        by=None,
        kind=DealEvent.Kind.ROOM,
        reason=_("%(who)s uploaded “%(name)s”") % {"who": _buyer_name(link), "name": name},
        link_id=link.pk,
        file_id=room_file.pk,
    )
    return room_file


@transaction.atomic
def room_file_share(*, deal: Deal, by: User, upload) -> RoomFile:
    deal = deal_lock(deal.pk)
    _require_workable(deal, by)
    name, content_type = _check_upload(upload)
    room_file = RoomFile(
        deal=deal, name=name, size=upload.size, content_type=content_type, shared_by=by
    )
    room_file.file.save(name, upload, save=False)
    room_file.save()
    deal_activity_record(
        deal=deal,
        by=by,
        kind=DealEvent.Kind.ROOM,
        reason=_("File shared in the closing room: %(name)s") % {"name": name},
        file_id=room_file.pk,
    )
    return room_file


@transaction.atomic
def room_file_opened(*, link: RoomLink, room_file: RoomFile) -> None:
    if room_file.deal_id != link.deal_id:
        raise LinkRefused(_("Not found."), status=404)
    deal_activity_record(
        deal=link.deal,
        by=None,
        kind=DealEvent.Kind.ROOM,
        reason=_("%(who)s opened “%(name)s”") % {"who": _buyer_name(link), "name": room_file.name},
        link_id=link.pk,
        file_id=room_file.pk,
    )


# --- outcomes (value verification) and noted needs -------------------------------


@transaction.atomic
def plan_outcome_add(*, deal: Deal, by: User, text: str) -> PlanOutcome:
    deal = deal_lock(deal.pk)
    _require_workable(deal, by)
    text = _one_line(text, _("The outcome"))
    outcome = PlanOutcome.objects.create(deal=deal, text=text)
    deal_activity_record(
        deal=deal,
        by=by,
        kind=DealEvent.Kind.PLAN,
        reason=_("Outcome agreed in the plan: %(text)s") % {"text": text},
        outcome_id=outcome.pk,
    )
    return outcome


@transaction.atomic
def room_outcome_confirm(
    *, link: RoomLink, outcome: PlanOutcome, status: str, note: str = ""
) -> PlanOutcome:
    """After the win the buyer says whether an agreed outcome was met."""
    deal = deal_lock(link.deal_id)
    row_lock(outcome)
    if outcome.deal_id != deal.pk:
        raise LinkRefused(_("Not found."), status=404)
    if deal.state != DealState.CLOSED_WON:
        raise DealError(_("Outcomes are confirmed after the contract is signed."))
    if status not in (
        PlanOutcome.Status.MET,
        PlanOutcome.Status.PARTLY,
        PlanOutcome.Status.NOT_YET,
    ):
        raise DealError(_("Choose met, partly or not yet."))
    outcome.status = status
    outcome.note = (note or "").strip()[:500]
    outcome.confirmed_at = timezone.now()
    outcome.confirmed_by = link.contact
    outcome.save(update_fields=["status", "note", "confirmed_at", "confirmed_by"])
    deal_activity_record(
        deal=deal,
        by=None,
        kind=DealEvent.Kind.ROOM,
        reason=_("%(who)s confirmed “%(text)s”: %(status)s")
        % {"who": _buyer_name(link), "text": outcome.text, "status": outcome.get_status_display()},
        link_id=link.pk,
        outcome_id=outcome.pk,
        status=status,
        note=outcome.note,
    )
    return outcome


@transaction.atomic
def deal_need_add(*, deal: Deal, by: User, text: str) -> DealNeed:
    deal = deal_lock(deal.pk)
    _require_workable(deal, by)
    text = _one_line(text, _("The need"))
    need = DealNeed.objects.create(deal=deal, text=text, noted_by=by)
    deal_activity_record(
        deal=deal,
        by=by,
        kind=DealEvent.Kind.NOTE,
        reason=_("Need noted for later: %(text)s") % {"text": text},
        need_id=need.pk,
    )
    return need


@transaction.atomic
def deal_need_to_follow_on(*, need: DealNeed, by: User, amount: Decimal = Decimal("0")) -> Deal:
    """Offer a noted need as a follow-on deal (deals' follow-on service), once."""
    deal = deal_lock(need.deal_id)
    row_lock(need)
    need.deal = deal
    if need.follow_on_id:
        raise conflict_already(_("A follow-on deal was already opened for this need"))
    follow_on = deal_services.deal_follow_on_create(
        parent=deal, by=by, title=need.text[:200], need=need.text, amount=amount
    )
    need.follow_on = follow_on
    need.save(update_fields=["follow_on"])
    return follow_on


# --- personal data (GDPR; deals.signals.contact_data_collect / contact_data_erase) --------


def contact_room_data(*, contact: Contact) -> dict[str, list[dict]]:
    """What the rooms hold about a contact: their links, questions, uploads, confirmations."""
    links = RoomLink.objects.filter(contact=contact)
    return {
        "room_links": [
            {
                "deal_id": link.deal_id,
                "created_at": link.created_at,
                "expires_at": link.expires_at,
                "revoked_at": link.revoked_at,
                "visits": link.visits,
                "first_visit_at": link.first_visit_at,
                "last_visit_at": link.last_visit_at,
            }
            for link in links
        ],
        "room_questions": [
            {"deal_id": q.deal_id, "asked_at": q.asked_at, "text": q.text, "answer": q.answer}
            for q in RoomQuestion.objects.filter(link__contact=contact)
        ],
        "room_uploads": [
            {"deal_id": f.deal_id, "name": f.name, "size": f.size, "created_at": f.created_at}
            for f in RoomFile.objects.filter(uploaded_by_link__contact=contact)
        ],
        "outcome_confirmations": [
            {"deal_id": o.deal_id, "outcome": o.text, "status": o.status, "note": o.note}
            for o in PlanOutcome.objects.filter(confirmed_by=contact)
        ],
    }


def contact_room_data_erase(*, contact: Contact, by: User) -> dict[str, int]:
    """Inside contact_erase's transaction: links end, their words and files go."""
    now = timezone.now()
    revoked = RoomLink.objects.filter(contact=contact, revoked_at__isnull=True).update(
        revoked_at=now, revoked_by=by
    )
    questions = RoomQuestion.objects.filter(link__contact=contact).update(
        text=_("[erased at the person's request]")
    )
    uploads = 0
    for room_file in RoomFile.objects.filter(uploaded_by_link__contact=contact):
        room_file.file.delete(save=False)
        room_file.name = _("erased file")
        room_file.size = 0
        room_file.save(update_fields=["file", "name", "size"])
        uploads += 1
    notes = PlanOutcome.objects.filter(confirmed_by=contact).update(note="")
    return {
        "room_links_revoked": revoked,
        "room_questions_erased": questions,
        "room_uploads_erased": uploads,
        "outcome_notes_erased": notes,
    }
