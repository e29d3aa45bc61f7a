"""Reads of the deal page: what to do next, the page's data in a bounded number of queries,
and which open deal a rep should turn to after losing one."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import (
    Case,
    Count,
    F,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    Subquery,
    Value,
    When,
)
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext, ngettext

from ..models import (
    OPEN_STATES,
    READINESS_ITEMS,
    TECHNIQUE_GUIDES,
    Ask,
    BuyingSignal,
    Channel,
    ClosingTechnique,
    Concession,
    Contact,
    Deal,
    DealEvent,
    DealState,
    Objection,
    Stakeholder,
    in_sentence,
    ordinal_text,
)

__all__ = [
    "NextBestAction",
    "RANKING_EXPLANATION",
    "PANEL_LIMIT",
    "with_labels",
    "deal_next_best_action",
    "deal_page_counts",
    "readiness_events_grouped",
    "deal_page_data",
    "deal_timeline_page",
    "next_likeliest_deal",
    "state_machine_rows",
]

#: How `next_likeliest_deal` ranks, in the words shown to reps.
RANKING_EXPLANATION = (
    "Ranked by readiness score first, then by buying signals logged in the last 14 days, "
    "then by the nearest expected close date."
)
RECENT_SIGNAL_DAYS = 14


@dataclass(frozen=True)
class NextBestAction:
    """The one thing the page suggests doing next."""

    headline: str
    detail: str = ""
    technique: str = ""
    tone: str = "go"  # go | wait | done (won) | closed (lost: a record, nothing to celebrate)
    hints: tuple[str, ...] = field(default_factory=tuple)

    @property
    def technique_label(self) -> str:
        return ClosingTechnique(self.technique).label if self.technique else ""

    @property
    def technique_guide(self) -> str:
        return TECHNIQUE_GUIDES.get(self.technique, "") if self.technique else ""


def _suggested_technique(deal: Deal, resolved_objection: bool) -> str:
    if deal.closing_technique:
        return deal.closing_technique
    if resolved_objection:
        return ClosingTechnique.OBJECTION
    if deal.readiness_score >= deal.readiness_total - 1:
        return ClosingTechnique.SUMMARY
    if deal.readiness_score >= 3:
        return ClosingTechnique.QUESTION
    return ClosingTechnique.SOFT


def deal_next_best_action(
    deal: Deal,
    *,
    objections: list[Objection] | None = None,
    asks: list[Ask] | None = None,
    onboarding_open: int | None = None,
) -> NextBestAction:
    """The next best action for `deal`, from its state, readiness, objections and asks.

    The one place that decides it (the deal page, My day and the API all ask here). Pass the
    objections and asks the caller already loaded to avoid queries.
    """
    if objections is None:
        objections = list(deal.objections.all())
    if asks is None:
        asks = list(deal.asks.all())
    score, total = deal.readiness_score, deal.readiness_total
    readiness = gettext("Readiness %(score)s/%(total)s") % {"score": score, "total": total}
    missing = [label for name, label in READINESS_ITEMS if not getattr(deal, name)]
    hints = []
    today = timezone.localdate()
    if deal.is_open and deal.next_step_due and deal.next_step_due < today:
        step = deal.next_step or gettext("no step named")
        hints.append(
            gettext("Next step overdue since %(next_step_due)s: %(step)s.")
            % {"next_step_due": date_format(deal.next_step_due, "d M"), "step": step}
        )

    if deal.state == DealState.CLOSED_WON:
        if onboarding_open is None:
            onboarding_open = deal.onboarding_steps.filter(done_at__isnull=True).count()
        if onboarding_open:
            return NextBestAction(
                ngettext(
                    "Won. Hand over: %(count)s onboarding step still open.",
                    "Won. Hand over: %(count)s onboarding steps still open.",
                    onboarding_open,
                )
                % {"count": onboarding_open},
                gettext(
                    "Introduce the account manager, then look for needs to turn into follow-on "
                    "deals."
                ),
                tone="done",
            )
        return NextBestAction(
            gettext("Won and onboarded."),
            gettext("Verify the value with the customer and open follow-on deals for new needs."),
            tone="done",
        )
    if deal.state == DealState.CLOSED_LOST:
        return NextBestAction(
            gettext("Closed as lost (%(reason)s).")
            % {"reason": deal.get_loss_reason_display() or gettext("no reason")},
            gettext(
                "Thank the buyer and keep the door open; a manager can reopen the deal if "
                "they return."
            ),
            tone="closed",
        )

    open_objections = [o for o in objections if o.status == Objection.Status.OPEN]
    real = [o for o in open_objections if not o.is_stall]
    resolved = any(o.status == Objection.Status.RESOLVED for o in objections)
    next_ask = (asks[-1].number if asks else 0) + 1  # asks are numbered 1, 2, 3…
    ordinal = _ordinal(next_ask)
    if real:
        first = real[0]
        more = (
            " " + gettext("(%(count)s more open)") % {"count": len(real) - 1}
            if len(real) > 1
            else ""
        )
        return NextBestAction(
            gettext("Resolve the %(category)s objection, then ask again.")
            % {"category": in_sentence(first.get_category_display())},
            gettext("%(more)s Once settled, make the %(ordinal)s ask straight away.")
            % {"more": _quoted(first.detail, more), "ordinal": ordinal},
            technique=deal.closing_technique or ClosingTechnique.OBJECTION,
            tone="wait",
            hints=tuple(hints),
        )
    if open_objections:
        first = open_objections[0]
        return NextBestAction(
            gettext("A stall is open: find the real concern behind it."),
            gettext(
                "%(detail)s Ask what would have to be true to decide now; then resolve "
                "it and ask again."
            )
            % {"detail": _quoted(first.detail)},
            technique=deal.closing_technique or ClosingTechnique.INOFFENSIVE,
            tone="wait",
            hints=tuple(hints),
        )

    technique = _suggested_technique(deal, resolved)
    if deal.state == DealState.INTENT_SPOTTED:
        if score >= total - 1:
            headline = gettext("%(readiness)s: ask for the sale") % {"readiness": readiness}
            detail = gettext("The buyer shows intent and the checklist is (almost) complete.")
        else:
            headline = gettext("%(readiness)s: confirm %(item)s, or ask early") % {
                "readiness": readiness,
                "item": in_sentence(missing[0]),
            }
            detail = gettext(
                "Asking early is fine: a “no” reveals the concerns. Still open: %(items)s."
            ) % {"items": ", ".join(in_sentence(m) for m in missing)}
        return NextBestAction(headline, detail, technique=technique, hints=tuple(hints))
    if deal.state == DealState.ASKED:
        last = asks[-1] if asks else None
        if last and last.answer == Ask.Answer.YES:
            return NextBestAction(
                gettext("They said yes: send the agreement today."),
                gettext("Generate the contract from the deal's terms and send it for signature."),
                hints=tuple(hints),
            )
        return NextBestAction(
            gettext("%(readiness)s: record the buyer's answer to your ask")
            % {"readiness": readiness},
            gettext("A “not yet” or “no” moves the deal to negotiating with the objection noted."),
            technique=technique,
            hints=tuple(hints),
        )
    if deal.state == DealState.NEGOTIATING:
        last = asks[-1] if asks else None
        if last and last.answer == Ask.Answer.YES:
            return NextBestAction(
                gettext("The %(ordinal)s ask was a “yes”: send the agreement today.")
                % {"ordinal": last.ordinal},
                gettext(
                    "Generate the contract with the terms you agreed and send it for signature; "
                    "the deal moves to “Agreement sent”."
                ),
                hints=tuple(hints),
            )
        if last and last.answer == Ask.Answer.NO and not _resolved_after(objections, last):
            return NextBestAction(
                gettext("The %(ordinal)s ask was a “no”: find the concern behind it.")
                % {"ordinal": last.ordinal},
                gettext(
                    "One no is not the end. Note what holds them back as an objection, "
                    "settle it, then make the %(ordinal)s ask."
                )
                % {"ordinal": ordinal},
                technique=technique,
                tone="wait",
                hints=tuple(hints),
            )
        return NextBestAction(
            gettext("%(readiness)s: objections settled, make the %(ordinal)s ask")
            % {"readiness": readiness, "ordinal": ordinal},
            gettext("Or send the revised contract the same day if terms changed."),
            technique=technique,
            hints=tuple(hints),
        )
    if deal.state == DealState.AGREEMENT_SENT:
        return NextBestAction(
            gettext("The contract is out: confirm it arrived and book a review meeting."),
            gettext("Walk the signer through it; note objections as they come."),
            tone="wait",
            hints=tuple(hints),
        )
    return NextBestAction(
        gettext("Follow up: a friendly call to settle what is left before signing."),
        gettext("Push for a short call or meeting rather than another email."),
        tone="wait",
        hints=tuple(hints),
    )


def _quoted(text: str, after: str = "") -> str:
    """The buyer's words in quotes as a sentence, without doubling their own full stop."""
    text = text.strip()
    end = "" if text[-1:] in ".!?…" and not after else "."
    return f"“{text}”{after}{end}"


def _resolved_after(objections: list[Objection], ask: Ask) -> bool:
    """An objection was settled after `ask` was made."""
    return any(o.resolved_at and o.resolved_at >= ask.asked_at for o in objections)


def _ordinal(n: int) -> str:
    return ordinal_text(n)


#: Readiness ticks by one person within this many minutes read as one timeline entry.
READINESS_GROUP_MINUTES = 30


def readiness_events_grouped(events: list) -> list:
    """Fold runs of readiness ticks (newest first) by the same person into one entry.

    The checklist saves on every click, so ticking four boxes wrote four events; the
    timeline shows one line with the resulting score and what changed. The audit rows
    themselves are untouched (append-only); only this list for display is shorter.
    """
    from ..models import DealEvent

    labels = dict(READINESS_ITEMS)
    grouped: list = []
    for event in events:
        previous = grouped[-1] if grouped else None
        if (
            previous is not None
            and event.kind == previous.kind == DealEvent.Kind.READINESS
            and event.actor_id == previous.actor_id
            and previous.created_at - event.created_at
            <= dt.timedelta(minutes=READINESS_GROUP_MINUTES)
        ):
            previous.grouped_changes = {
                **(event.data or {}).get("changed", {}),
                **previous.grouped_changes,
            }
            continue
        if event.kind == DealEvent.Kind.READINESS:
            event.grouped_changes = dict((event.data or {}).get("changed", {}))
        grouped.append(event)
    for event in grouped:
        changes = getattr(event, "grouped_changes", None)
        if changes and len(changes) > 1:
            ticked = [labels.get(f, f).lower() for f, v in changes.items() if v]
            unticked = [labels.get(f, f).lower() for f, v in changes.items() if not v]
            parts = []
            if ticked:
                parts.append("ticked " + ", ".join(ticked))
            if unticked:
                parts.append("unticked " + ", ".join(unticked))
            event.reason = f"{event.reason}: {'; '.join(parts)}."
    return grouped


#: How many rows each panel of the deal page loads; older ones come on demand ("older").
PANEL_LIMIT = 50


def with_labels(rows, **fields) -> None:
    """Give each row a `<field>_label` attribute: its choice's label in the active language.

    `get_FOO_display()` rebuilds (and hashes, translating every lazy label) the field's whole
    choice list on each call; a panel of 50 rows paid that for each row and field. Here each
    label is translated once per call, for all the rows.
    """
    for name, choices in fields.items():
        labels = {value: str(label) for value, label in choices.choices}
        for row in rows:
            value = getattr(row, name)
            setattr(row, f"{name}_label", labels.get(value, value))


def _latest(queryset, limit: int = PANEL_LIMIT) -> list:
    """The newest `limit` rows of a queryset ordered oldest first, still oldest first."""
    ordering = queryset.query.order_by or queryset.model._meta.ordering
    reverse = [o[1:] if o.startswith("-") else f"-{o}" for o in ordering]
    return list(reversed(queryset.order_by(*reverse)[:limit]))


def deal_timeline_page(deal: Deal, *, before: int | None = None) -> tuple[list, int | None]:
    """The deal's newest `PANEL_LIMIT` events (older than event `before` if given), newest
    first, and the id to continue from (None when there is nothing older). Keyset paging on
    the (deal, created_at) index: page 100 costs what page 1 costs."""
    events = deal.events.select_related("actor")
    if before is not None:
        anchor = DealEvent.objects.filter(deal=deal, pk=before).values("created_at")[:1]
        events = events.filter(
            Q(created_at__lt=Subquery(anchor)) | Q(created_at=Subquery(anchor), pk__lt=before)
        )
    page = list(events.order_by("-created_at", "-pk")[: PANEL_LIMIT + 1])
    older = page[PANEL_LIMIT - 1].pk if len(page) > PANEL_LIMIT else None
    page = page[:PANEL_LIMIT]
    with_labels(page, kind=DealEvent.Kind, from_state=DealState, to_state=DealState)
    return page, older


def _count(queryset) -> Subquery:
    return Subquery(
        queryset.order_by().values("deal").annotate(n=Count("pk")).values("n")[:1],
        output_field=IntegerField(),
    )


def deal_page_counts(deal: Deal) -> dict[str, int]:
    """How many events, signals, asks, objections (and open ones) and concessions the deal
    has, in one query (the panels load only the newest of each)."""
    mine = {"deal": OuterRef("pk")}
    counts = (
        Deal.objects.filter(pk=deal.pk)
        .annotate(
            n_events=_count(DealEvent.objects.filter(**mine)),
            n_signals=_count(BuyingSignal.objects.filter(**mine)),
            n_asks=_count(Ask.objects.filter(**mine)),
            n_objections=_count(Objection.objects.filter(**mine)),
            n_open_objections=_count(
                Objection.objects.filter(**mine, status=Objection.Status.OPEN)
            ),
            n_concessions=_count(Concession.objects.filter(**mine)),
        )
        .values(
            "n_events",
            "n_signals",
            "n_asks",
            "n_objections",
            "n_open_objections",
            "n_concessions",
        )
        .first()
        or {}
    )
    return {key[2:]: value or 0 for key, value in counts.items()}


def deal_page_data(deal: Deal) -> dict:
    """Everything the deal page shows, in a fixed number of queries whatever the data size.

    Every list is bounded: the newest `PANEL_LIMIT` rows of each panel (the timeline pages
    further back on demand), with the totals from `deal_page_counts`.
    """
    events, events_older = deal_timeline_page(deal)
    events = readiness_events_grouped(events)
    signals = list(deal.signals.select_related("recorded_by")[:PANEL_LIMIT])
    objections = list(deal.objections.select_related("ask")[:PANEL_LIMIT])
    open_objections = list(
        deal.objections.filter(status=Objection.Status.OPEN).select_related("ask")[:PANEL_LIMIT]
    )
    asks = _latest(
        deal.asks.select_related("asked_by").prefetch_related(
            Prefetch("objections", queryset=Objection.objects.order_by("raised_at"))
        )
    )
    concessions = _latest(deal.concessions.all())
    stakeholders = list(deal.stakeholders.select_related("contact"))
    contacts = list(Contact.objects.active().filter(account_id=deal.account_id)[:200])
    stays = _latest(deal.stays.select_related("entered_by"))
    onboarding = []
    follow_ons = []
    if deal.state == DealState.CLOSED_WON:
        onboarding = list(deal.onboarding_steps.select_related("assignee", "done_by"))
        follow_ons = list(deal.follow_on_deals.select_related("owner")[:PANEL_LIMIT])
    onboarding_open = sum(1 for s in onboarding if not s.done_at)
    with_labels(signals, kind=BuyingSignal.Kind, channel=Channel)
    with_labels(asks, channel=Channel, technique=ClosingTechnique, answer=Ask.Answer)
    with_labels(
        [*objections, *open_objections, *(o for a in asks for o in a.objections.all())],
        category=Objection.Category,
        status=Objection.Status,
    )
    with_labels(concessions, status=Concession.Status)
    with_labels(stays, state=DealState)
    with_labels(stakeholders, role=Stakeholder.Role)
    # The next best action needs every open objection, plus the recent settled ones.
    seen = {o.pk for o in open_objections}
    for_action = open_objections + [o for o in objections if o.pk not in seen]
    return {
        "events": events,
        "events_older": events_older,
        "signals": signals,
        "objections": objections,
        "open_objections": open_objections,
        "asks": asks,
        "concessions": concessions,
        "stakeholders": stakeholders,
        "contacts": contacts,
        "stays": stays,
        "counts": deal_page_counts(deal),
        "onboarding": onboarding,
        "onboarding_open": onboarding_open,
        "follow_ons": follow_ons,
        "next_best_action": deal_next_best_action(
            deal, objections=for_action, asks=asks, onboarding_open=onboarding_open
        ),
    }


def next_likeliest_deal(user, exclude=None) -> Deal | None:
    """The user's open deal most likely to close next, or None.

    Ranking (in this order, ties broken by the next):
    1. readiness score, highest first (how many of the six checklist items are ticked);
    2. buying signals observed in the last 14 days, most first;
    3. expected close date, nearest first (deals without one come last).

    Candidates are the open, not archived deals the user owns; a manager or admin who owns
    none gets the open deals they may work. `exclude` is a deal (or pk) to leave out, e.g.
    the one just lost. The returned deal carries `readiness_points` and `recent_signals`.
    """
    since = timezone.now() - dt.timedelta(days=RECENT_SIGNAL_DAYS)
    base = Deal.objects.active().filter(state__in=OPEN_STATES)
    if exclude is not None:
        base = base.exclude(pk=getattr(exclude, "pk", exclude))
    candidates = base.filter(owner=user)
    if not candidates.exists():
        candidates = base.workable_by(user)
    readiness = sum(
        (
            Case(When(**{name: True}, then=Value(1)), default=Value(0), output_field=IntegerField())
            for name, _ in READINESS_ITEMS
        ),
        Value(0),
    )
    return (
        candidates.select_related("account")
        .annotate(
            readiness_points=readiness,
            recent_signals=Count("signals", filter=Q(signals__observed_at__gte=since)),
        )
        .order_by(
            "-readiness_points",
            "-recent_signals",
            F("expected_close_date").asc(nulls_last=True),
            "pk",
        )
        .first()
    )


def state_machine_rows() -> list[dict]:
    """Per state: its meaning-carrying label and the moves out of it, from the model."""
    from .core import state_graph_edges

    field_ = Deal._meta.get_field("state")
    labels = {
        t.name: t.custom.get("label", t.name) for t in field_.get_all_transitions(Deal) if t.name
    }
    permissions = {}
    conditions = {}
    for t in field_.get_all_transitions(Deal):
        permissions[t.name] = getattr(t.permission, "__name__", "")
        conditions[t.name] = [str(getattr(c, "blocked_message", c.__name__)) for c in t.conditions]
    rows = []
    for state in DealState:
        moves = [
            {
                "name": name,
                "label": labels.get(name, name),
                "target": DealState(target),
                "managers_only": permissions.get(name) == "can_manage_deal",
                "conditions": conditions.get(name, []),
            }
            for source, target, name in state_graph_edges()
            if source == state.value
        ]
        rows.append({"state": state, "moves": moves})
    return rows
