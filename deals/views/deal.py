"""The deal page and everything a rep does on it. Thin views over selectors and services.

Every panel form posts to its own URL. With htmx the response is the panel again (plus
out-of-band updates of the header, next best action, moves and timeline); without JavaScript
the same URL redirects back to the deal page. Errors re-render the form with the message and
a 4xx status, and nothing is saved.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .. import forms, services
from ..models import (
    READINESS_DERIVED,
    READINESS_ITEMS,
    Concession,
    Deal,
    DealState,
    Objection,
    OnboardingStep,
    Stakeholder,
    can_manage_deal,
    can_work_deal,
    readiness_derivation,
)
from ..selectors import (
    RANKING_EXPLANATION,
    deal_get_visible,
    deal_page_data,
    deal_timeline_page,
    next_likeliest_deal,
    readiness_events_grouped,
    state_graph_mermaid,
    state_machine_rows,
)
from ..services import DealConflict, DealError, NotPermitted, TransitionBlocked

# --- helpers -----------------------------------------------------------------


def _status_for(error: DealError) -> int:
    if isinstance(error, NotPermitted):
        return 403
    if isinstance(error, (DealConflict, TransitionBlocked)):
        return 409
    return 400


def _safe_next(request, value: str) -> str:
    if value and url_has_allowed_host_and_scheme(
        value, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return value
    return ""


def _redirect(request, url: str) -> HttpResponse:
    """A redirect that also works for htmx requests (full navigation via HX-Redirect)."""
    if request.htmx:
        response = HttpResponse(status=200)
        response["HX-Redirect"] = url
        return response
    return HttpResponseRedirect(url)


def _after_lost_context(request, deal: Deal) -> dict:
    """When the rep lands here right after losing another deal: say why this one is next."""
    lost_pk = request.GET.get("after_lost", "")
    if not lost_pk.isdigit():
        return {}
    ranked = next_likeliest_deal(request.user, exclude=int(lost_pk))
    if ranked is None or ranked.pk != deal.pk:
        return {}
    lost = Deal.objects.visible_to(request.user).filter(pk=int(lost_pk)).first()
    return {
        "after_lost": {
            "lost": lost,
            "readiness": ranked.readiness_points,
            "recent_signals": ranked.recent_signals,
            "expected_close": ranked.expected_close_date,
            "explanation": RANKING_EXPLANATION,
        }
    }


def _page_context(request, deal: Deal, **overrides) -> dict:
    user = request.user
    data = deal_page_data(deal)
    can_work = can_work_deal(deal, user)
    can_manage = can_manage_deal(deal, user)
    transitions = services.deal_transitions_for(deal, user)
    readiness_initial = {name: getattr(deal, name) for name, _ in READINESS_ITEMS}
    derived = readiness_derivation(
        objection_statuses=[o.status for o in data["objections"]],
        roles={s.role for s in data["stakeholders"]},
    )
    context = {
        "deal": deal,
        **data,
        "can_work": can_work,
        "can_manage": can_manage,
        "transitions": transitions,
        "readiness_items": [
            (name, label, getattr(deal, name), READINESS_DERIVED[name] if name in derived else "")
            for name, label in READINESS_ITEMS
        ],
        "technique_guides": forms.technique_guides(),
        "signal_form": forms.BuyingSignalForm(),
        "readiness_form": forms.ReadinessForm(initial=readiness_initial),
        "technique_form": forms.TechniqueForm(initial={"technique": deal.closing_technique}),
        "ask_form": forms.AskForm(
            initial={"expected_state": deal.state, "technique": deal.closing_technique}
        ),
        "objection_form": forms.ObjectionForm(),
        "concession_form": forms.ConcessionForm(),
        "stakeholder_form": forms.StakeholderForm(account=deal.account, contacts=data["contacts"]),
        "next_step_form": forms.NextStepForm(
            initial={
                "next_step": deal.next_step,
                "next_step_due": deal.next_step_due,
                "expected_close_date": deal.expected_close_date,
            }
        ),
        "note_form": forms.NoteForm(),
        "follow_on_form": forms.FollowOnForm(),
        # Only managers see "Change owner" (its choices and the account's owner cost queries).
        "reassign_form": forms.ReassignForm(deal=deal) if can_manage else None,
        "resolve_error": None,
        "today": timezone.localdate(),
        "panel_error": {},
        "ask_states": list(services.ASK_STATES),
    }
    context.update(_after_lost_context(request, deal))
    context.update(overrides)
    # Each answer says beforehand where it takes the deal.
    outcomes = services.deal_ask_outcomes(deal)
    context["ask_answers"] = [
        {"radio": radio, "outcome": outcomes.get(radio.data["value"], "")}
        for radio in context["ask_form"]["answer"]
    ]
    return context


#: Panel name -> its partial template and the id of its element on the page.
PANELS = {
    "signals": "deals/deal/_signals.html",
    "readiness": "deals/deal/_readiness.html",
    "technique": "deals/deal/_technique.html",
    "asks": "deals/deal/_asks.html",
    "objections": "deals/deal/_objections.html",
    "concessions": "deals/deal/_concessions.html",
    "stakeholders": "deals/deal/_stakeholders.html",
    "next_step": "deals/deal/_next_step.html",
    "notes": "deals/deal/_notes.html",
    "handoff": "deals/deal/_handoff.html",
    "owner": "deals/deal/_owner.html",
}


def _panel_response(
    request, deal: Deal, panel: str, *, status: int = 200, error: str = "", **overrides
) -> HttpResponse:
    """The panel after a write (htmx) or the whole page (errors without htmx)."""
    deal.refresh_from_db()
    context = _page_context(request, deal, **overrides)
    context["panel_error"] = {panel: error} if error else {}
    if request.htmx:
        context["panel_template"] = PANELS[panel]
        return render(request, "deals/deal/_update.html", context, status=status)
    if error:
        messages.error(request, error)
    return render(request, "deals/deal_detail.html", context, status=status)


def _done(request, deal: Deal, panel: str, message: str) -> HttpResponse:
    if request.htmx:
        return _panel_response(request, deal, panel)
    messages.success(request, message)
    return HttpResponseRedirect(f"{deal.get_absolute_url()}#panel-{panel.replace('_', '-')}")


def _write(request, deal: Deal, panel: str, form, action, success: str, form_key: str):
    """Validate `form`, run `action()` (a service call), answer as the request expects."""
    if not form.is_valid():
        return _panel_response(request, deal, panel, status=400, **{form_key: form})
    try:
        action(form.cleaned_data)
    except DealError as error:
        return _panel_response(
            request, deal, panel, status=_status_for(error), error=error.message, **{form_key: form}
        )
    return _done(request, deal, panel, success)


# --- the page ----------------------------------------------------------------


@require_GET
@login_required
def deal_detail(request, pk: int):
    deal = deal_get_visible(request.user, pk)
    return render(request, "deals/deal_detail.html", _page_context(request, deal))


@require_GET
@login_required
def deal_timeline(request, pk: int):
    """The next older page of the deal's timeline (htmx: "Older events")."""
    deal = deal_get_visible(request.user, pk)
    try:
        before = int(request.GET.get("before", ""))
    except ValueError:
        return HttpResponse("Say which event to continue from (?before=id).", status=400)
    events, older = deal_timeline_page(deal, before=before)
    context = {
        "deal": deal,
        "events": readiness_events_grouped(events),
        "events_older": older,
        "before": before,
    }
    return render(request, "deals/deal/_timeline_items.html", context)


# --- the state machine: one endpoint for the deal page and the pipeline board ------------


def _refusal(deal: Deal, name: str, user) -> tuple[int, str] | None:
    """(status, plain message) if `user` cannot start `name` on `deal` now."""
    fsm = getattr(Deal, name)._django_fsm.get_transition(deal.state)
    if fsm is not None and not fsm.has_perm(deal, user):
        return 403, fsm.permission.denied_message
    required = services.record_required(deal, name)
    if required is not None:
        return 409, required.message
    if fsm is None:
        return 409, services.transition_blockers(deal, name, None)[0]
    blockers = services.transition_blockers(deal, name, None, check_inputs=False)
    if blockers:
        return 409, " ".join(blockers)
    return None


#: Whom to thank first when a deal ends: the people who decided.
_THANK_FIRST = [
    Stakeholder.Role.DECISION_MAKER,
    Stakeholder.Role.SIGNER,
    Stakeholder.Role.ECONOMIC_BUYER,
    Stakeholder.Role.CHAMPION,
    Stakeholder.Role.INFLUENCER,
    Stakeholder.Role.USER,
]


def _buyer(deal: Deal) -> Stakeholder | None:
    stakeholders = list(deal.stakeholders.select_related("contact"))
    stakeholders.sort(key=lambda s: _THANK_FIRST.index(s.role))
    return stakeholders[0] if stakeholders else None


def _transition_render(request, deal, name, form, *, status=200, error="", blocked=False):
    label = getattr(Deal, name)._django_fsm.transitions
    fsm = getattr(Deal, name)._django_fsm.get_transition(deal.state)
    any_fsm = fsm or next(iter(label.values()))
    context = {
        "deal": deal,
        "name": name,
        "label": any_fsm.custom.get("label", name),
        "target": DealState(any_fsm.target),
        "form": form,
        "error": error,
        "blocked": blocked or (bool(error) and request.method == "GET"),
        "buyer": _buyer(deal),
        "record_step": services.transition_record_rule(name) or None,
    }
    template = "deals/deal/_transition_form.html" if request.htmx else "deals/transition_form.html"
    return render(request, template, context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
def deal_transition(request, pk: int, name: str):
    """GET: the form for a move (partial for htmx). POST: fire it with the state the user saw.

    Success redirects (HX-Redirect for htmx) to `next` if given, else back to the page the
    htmx request came from, else the deal page; a deal closed as lost goes to the rep's next
    likeliest open deal instead (unless `next` is given).
    """
    deal = deal_get_visible(request.user, pk)
    if name not in services.TRANSITION_NAMES:
        raise Http404("No such move.")
    if request.method == "GET":
        form = forms.TransitionForm(
            transition=name,
            initial={"expected_state": deal.state, "next": request.GET.get("next", "")},
        )
        refusal = _refusal(deal, name, request.user)
        if refusal:
            return _transition_render(
                request, deal, name, form, status=refusal[0], error=refusal[1]
            )
        return _transition_render(request, deal, name, form)

    form = forms.TransitionForm(request.POST, transition=name)
    if not form.is_valid():
        return _transition_render(request, deal, name, form, status=400)
    data = form.cleaned_data
    try:
        services.deal_transition(
            deal=deal,
            transition=name,
            by=request.user,
            reason=data["reason"],
            loss_reason=data.get("loss_reason", ""),
            expected_state=data["expected_state"],
        )
    except DealError as error:
        deal.refresh_from_db()
        return _transition_render(
            request,
            deal,
            name,
            form,
            status=_status_for(error),
            error=error.message,
            # The deal moved on: offer the deal as it is now, not the move that just failed.
            blocked=isinstance(error, DealConflict),
        )
    next_url = _safe_next(request, data.get("next", ""))
    if name == "mark_lost":
        buyer = _buyer(deal)
        messages.success(
            request,
            gettext(
                "“%(deal)s” is closed as lost (%(loss_reason)s). Thank %(buyer)s for "
                "their time and candour: a courteous ending keeps the door open."
            )
            % {
                "deal": deal,
                "loss_reason": deal.get_loss_reason_display(),
                "buyer": buyer.contact if buyer else "the buyer",
            },
        )
        if next_url:
            return _redirect(request, next_url)
        following = next_likeliest_deal(request.user, exclude=deal)
        if following is None:
            messages.info(request, gettext("You have no other open deals right now."))
            return _redirect(request, reverse("home"))
        return _redirect(request, f"{following.get_absolute_url()}?after_lost={deal.pk}")
    messages.success(
        request,
        gettext("“%(deal)s” is now %(state)s.") % {"deal": deal, "state": deal.get_state_display()},
    )
    if not next_url and request.htmx:
        # Stay where the move was made (the deal page or the board), now up to date.
        next_url = _safe_next(request, request.htmx.current_url_abs_path or "")
    return _redirect(request, next_url or deal.get_absolute_url())


# --- panels --------------------------------------------------------------------


@require_POST
@login_required
def signal_add(request, pk: int):
    deal = deal_get_visible(request.user, pk)
    return _write(
        request,
        deal,
        "signals",
        forms.BuyingSignalForm(request.POST),
        lambda d: services.buying_signal_record(
            deal=deal, by=request.user, kind=d["kind"], note=d["note"], channel=d["channel"]
        ),
        "Buying signal logged.",
        "signal_form",
    )


@require_POST
@login_required
def readiness_set(request, pk: int):
    deal = deal_get_visible(request.user, pk)
    return _write(
        request,
        deal,
        "readiness",
        forms.ReadinessForm(request.POST),
        lambda d: services.deal_readiness_set(deal=deal, by=request.user, items=d),
        "Readiness checklist saved.",
        "readiness_form",
    )


@require_POST
@login_required
def technique_choose(request, pk: int):
    deal = deal_get_visible(request.user, pk)
    return _write(
        request,
        deal,
        "technique",
        forms.TechniqueForm(request.POST),
        lambda d: services.deal_technique_choose(
            deal=deal, by=request.user, technique=d["technique"]
        ),
        "Closing technique saved.",
        "technique_form",
    )


@require_POST
@login_required
def ask_record(request, pk: int):
    deal = deal_get_visible(request.user, pk)
    form = forms.AskForm(request.POST)

    def action(d):
        services.deal_ask_record(
            deal=deal,
            by=request.user,
            channel=d["channel"],
            statement=d["statement"],
            answer=d["answer"],
            technique=d["technique"],
            objection=form.objection(),
            expected_state=d["expected_state"] or None,
        )

    return _write(request, deal, "asks", form, action, "Ask recorded.", "ask_form")


@require_POST
@login_required
def objection_add(request, pk: int):
    deal = deal_get_visible(request.user, pk)
    return _write(
        request,
        deal,
        "objections",
        forms.ObjectionForm(request.POST),
        lambda d: services.objection_raise(
            deal=deal,
            by=request.user,
            category=d["category"],
            detail=d["detail"],
            is_stall=d["is_stall"],
        ),
        "Objection noted.",
        "objection_form",
    )


@require_POST
@login_required
def objection_resolve(request, pk: int, objection_pk: int):
    deal = deal_get_visible(request.user, pk)
    objection = get_object_or_404(Objection, pk=objection_pk, deal=deal)
    form = forms.ObjectionResolveForm(request.POST)
    error = {"id": objection.pk, "form": form}
    if not form.is_valid():
        return _panel_response(request, deal, "objections", status=400, resolve_error=error)
    try:
        services.objection_resolve(
            objection=objection,
            by=request.user,
            resolution=form.cleaned_data["resolution"],
            accepted_loss=form.cleaned_data["outcome"] == "accepted_loss",
        )
    except DealError as exc:
        return _panel_response(
            request,
            deal,
            "objections",
            status=_status_for(exc),
            error=exc.message,
            resolve_error=error,
        )
    return _done(request, deal, "objections", "Objection settled.")


@require_POST
@login_required
def concession_add(request, pk: int):
    deal = deal_get_visible(request.user, pk)
    return _write(
        request,
        deal,
        "concessions",
        forms.ConcessionForm(request.POST),
        lambda d: services.concession_propose(
            deal=deal,
            by=request.user,
            give=d["give"],
            get=d["get"],
            **{f: d.get(f) for f in forms.ConcessionForm.TERM_FIELDS},
        ),
        "Concession proposed.",
        "concession_form",
    )


@require_POST
@login_required
def concession_decide(request, pk: int, concession_pk: int):
    deal = deal_get_visible(request.user, pk)
    concession = get_object_or_404(Concession, pk=concession_pk, deal=deal)
    form = forms.ConcessionDecideForm(request.POST)
    if not form.is_valid():
        return _panel_response(
            request, deal, "concessions", status=400, error="Choose accept or reject."
        )
    accepted = form.cleaned_data["decision"] == "accept"
    try:
        services.concession_decide(concession=concession, by=request.user, accepted=accepted)
    except DealError as exc:
        return _panel_response(
            request, deal, "concessions", status=_status_for(exc), error=exc.message
        )
    if accepted:
        # The terms, the contract panel and the state may all have changed: reload the page.
        messages.success(
            request,
            gettext(
                "Concession accepted: the deal's terms changed. Any contract out was withdrawn; "
                "send the revised version today."
            ),
        )
        return _redirect(request, f"{deal.get_absolute_url()}#contracts-panel")
    return _done(request, deal, "concessions", "Concession decided.")


@require_POST
@login_required
def stakeholder_add(request, pk: int):
    deal = deal_get_visible(request.user, pk)
    form = forms.StakeholderForm(request.POST, account=deal.account)

    def action(d):
        if d["contact"] is None:
            services.stakeholder_add_new_contact(
                deal=deal,
                by=request.user,
                first_name=d["first_name"],
                last_name=d["last_name"],
                email=d["email"],
                job_title=d["job_title"],
                role=d["role"],
                note=d["note"],
            )
        else:
            services.stakeholder_add(
                deal=deal, by=request.user, contact=d["contact"], role=d["role"], note=d["note"]
            )

    return _write(
        request,
        deal,
        "stakeholders",
        form,
        action,
        "Added to the buying group.",
        "stakeholder_form",
    )


@require_POST
@login_required
def stakeholder_remove(request, pk: int, stakeholder_pk: int):
    deal = deal_get_visible(request.user, pk)
    stakeholder = get_object_or_404(
        Stakeholder.objects.select_related("contact"), pk=stakeholder_pk, deal=deal
    )
    try:
        services.stakeholder_remove(stakeholder=stakeholder, by=request.user)
    except DealError as exc:
        return _panel_response(
            request, deal, "stakeholders", status=_status_for(exc), error=exc.message
        )
    return _done(request, deal, "stakeholders", "Removed from the buying group.")


@require_POST
@login_required
def next_step_update(request, pk: int):
    deal = deal_get_visible(request.user, pk)
    return _write(
        request,
        deal,
        "next_step",
        forms.NextStepForm(request.POST),
        lambda d: services.deal_update(deal=deal, by=request.user, **d),
        "Next step saved.",
        "next_step_form",
    )


@require_POST
@login_required
def note_add(request, pk: int):
    deal = deal_get_visible(request.user, pk)
    return _write(
        request,
        deal,
        "notes",
        forms.NoteForm(request.POST),
        lambda d: services.deal_note_add(deal=deal, by=request.user, text=d["text"]),
        "Note added.",
        "note_form",
    )


@require_POST
@login_required
def deal_archive(request, pk: int):
    """Take the deal out of lists and pages; the row and its history stay (admins see it)."""
    deal = deal_get_visible(request.user, pk)
    try:
        services.deal_archive(deal=deal, by=request.user, reason=request.POST.get("reason", ""))
    except NotPermitted as exc:
        raise PermissionDenied(exc.message) from None
    except DealError as exc:  # archived by someone else at the same moment
        messages.error(request, exc.message)
        return HttpResponseRedirect(reverse("deals:deal_list"))
    messages.success(
        request,
        gettext("“%(title)s” is archived: it no longer shows in lists; its history is kept.")
        % {"title": deal.title},
    )
    return HttpResponseRedirect(reverse("deals:deal_list"))


@require_POST
@login_required
def deal_reassign(request, pk: int):
    """The manager's "Change owner": the deal, its open follow-ups and tasks go to a teammate."""
    deal = deal_get_visible(request.user, pk)
    if not can_manage_deal(deal, request.user):
        raise PermissionDenied("Only the team's manager or an admin can change a deal's owner.")
    form = forms.ReassignForm(request.POST, deal=deal)

    def reassign(data):
        deal.owner_id = data["expected_owner"]  # as the manager saw it: stale is a conflict
        services.deal_reassign(
            deal=deal,
            by=request.user,
            new_owner=data["new_owner"],
            reason=data["reason"],
            move_account=data["move_account"],
        )

    return _write(
        request,
        deal,
        "owner",
        form,
        reassign,
        f"“{deal.title}” has a new owner; they have been notified.",
        "reassign_form",
    )


@require_POST
@login_required
def onboarding_complete(request, pk: int, step_pk: int):
    deal = deal_get_visible(request.user, pk)
    step = get_object_or_404(OnboardingStep, pk=step_pk, deal=deal)
    try:
        services.onboarding_step_complete(step=step, by=request.user)
    except DealError as exc:
        return _panel_response(request, deal, "handoff", status=_status_for(exc), error=exc.message)
    return _done(request, deal, "handoff", f"Onboarding: {step.get_kind_display()} done.")


@require_POST
@login_required
def follow_on_create(request, pk: int):
    deal = deal_get_visible(request.user, pk)
    form = forms.FollowOnForm(request.POST)
    if not form.is_valid():
        return _panel_response(request, deal, "handoff", status=400, follow_on_form=form)
    try:
        created = services.deal_follow_on_create(
            parent=deal,
            by=request.user,
            title=form.cleaned_data["title"],
            need=form.cleaned_data["need"],
            amount=form.cleaned_data["amount"],
        )
    except DealError as exc:
        return _panel_response(
            request,
            deal,
            "handoff",
            status=_status_for(exc),
            error=exc.message,
            follow_on_form=form,
        )
    if request.htmx:
        return _panel_response(request, deal, "handoff")
    messages.success(
        request, gettext("Follow-on deal “%(created)s” opened.") % {"created": created}
    )
    return HttpResponseRedirect(f"{deal.get_absolute_url()}#panel-handoff")


# --- the state machine page ------------------------------------------------------------


@require_GET
@login_required
def state_machine(request):
    return render(
        request,
        "deals/state_machine.html",
        {"mermaid": state_graph_mermaid(), "rows": state_machine_rows()},
    )


urlpatterns = [
    path("deals/<int:pk>/", deal_detail, name="deal_detail"),
    path("deals/<int:pk>/timeline/", deal_timeline, name="deal_timeline"),
    path("deals/<int:pk>/transition/<slug:name>/", deal_transition, name="deal_transition"),
    path("deals/<int:pk>/signals/", signal_add, name="deal_signal_add"),
    path("deals/<int:pk>/readiness/", readiness_set, name="deal_readiness_set"),
    path("deals/<int:pk>/technique/", technique_choose, name="deal_technique_choose"),
    path("deals/<int:pk>/asks/", ask_record, name="deal_ask_record"),
    path("deals/<int:pk>/objections/", objection_add, name="deal_objection_add"),
    path(
        "deals/<int:pk>/objections/<int:objection_pk>/resolve/",
        objection_resolve,
        name="deal_objection_resolve",
    ),
    path("deals/<int:pk>/concessions/", concession_add, name="deal_concession_add"),
    path(
        "deals/<int:pk>/concessions/<int:concession_pk>/decide/",
        concession_decide,
        name="deal_concession_decide",
    ),
    path("deals/<int:pk>/stakeholders/", stakeholder_add, name="deal_stakeholder_add"),
    path(
        "deals/<int:pk>/stakeholders/<int:stakeholder_pk>/remove/",
        stakeholder_remove,
        name="deal_stakeholder_remove",
    ),
    path("deals/<int:pk>/next-step/", next_step_update, name="deal_next_step_update"),
    path("deals/<int:pk>/notes/", note_add, name="deal_note_add"),
    path("deals/<int:pk>/archive/", deal_archive, name="deal_archive"),
    path("deals/<int:pk>/owner/", deal_reassign, name="deal_reassign"),
    path(
        "deals/<int:pk>/onboarding/<int:step_pk>/complete/",
        onboarding_complete,
        name="deal_onboarding_complete",
    ),
    path("deals/<int:pk>/follow-on/", follow_on_create, name="deal_follow_on_create"),
    path("state-machine/", state_machine, name="state_machine"),
]
