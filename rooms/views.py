"""The rep's side of the close plan and the room, on the deal page (htmx panel).

Thin: find what the user may see (another team's deal is a 404), call one service, answer
with the panel (htmx) or a redirect to the deal page.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from deals.models import Contact, Objection, User, can_work_deal
from deals.selectors import deal_get_visible
from deals.services import DealConflict, DealError, NotPermitted

from . import services
from .forms import StepEditForm, owner_choices
from .models import DealNeed, Phase, PlanStep, RoomFile, RoomLink, RoomQuestion, Side
from .templatetags.rooms_tags import room_panel_context


def _status(error: DealError) -> int:
    if isinstance(error, NotPermitted):
        return 403
    if isinstance(error, DealConflict):
        return 409
    return 400


def _panel(request, deal, *, error: str = "", status: int = 200, notice: str = ""):
    if request.htmx:
        context = room_panel_context(request, deal)
        context.update(room_error=error, room_notice=notice)
        return render(request, "rooms/_deal_panel.html", context, status=status)
    if error:
        # Without htmx: a page saying why, with the refusal's status (no silent redirect).
        return render(request, "rooms/error.html", {"deal": deal, "message": error}, status=status)
    if notice:
        messages.success(request, notice, extra_tags="rooms")
    return HttpResponseRedirect(deal.get_absolute_url() + "#room-panel")


def _act(request, pk: int, action, notice: str = ""):
    deal = deal_get_visible(request.user, pk)
    try:
        if not can_work_deal(deal, request.user):
            raise NotPermitted(can_work_deal.denied_message)
        result = action(deal)
    except DealError as exc:
        return _panel(request, deal, error=exc.message, status=_status(exc))
    return _panel(request, deal, notice=result if isinstance(result, str) else notice)


def _date(value: str) -> dt.date | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise DealError(_("Enter the date as YYYY-MM-DD.")) from None


def _owner(deal, value: str):
    """'u<id>' a team member, 'c<id>' a buying-group contact, '' nobody."""
    value = (value or "").strip()
    if not value:
        return None, None
    kind, _sep, pk = value[0], None, value[1:]
    if not pk.isdigit():
        raise DealError(_("Choose the owner from the list."))
    if kind == "u":
        user = User.objects.filter(pk=int(pk), team=deal.team_id, is_active=True).first()
        if user is None:
            raise DealError(_("Choose the owner from the list."))
        return user, None
    if kind == "c":
        contact = Contact.objects.filter(pk=int(pk), stakeholder_roles__deal=deal).first()
        if contact is None:
            raise DealError(_("Choose the owner from the list."))
        return None, contact
    raise DealError(_("Choose the owner from the list."))


@require_GET
@login_required
def panel(request, pk: int):
    """The panel itself (the deal page loads it with htmx, keeping its own query budget)."""
    deal = deal_get_visible(request.user, pk)
    context = room_panel_context(request, deal)
    return render(request, "rooms/_deal_panel.html", context)


@require_POST
@login_required
def plan_from_template(request, pk: int):
    def action(deal):
        steps = services.plan_create_from_template(deal=deal, by=request.user)
        return _("Close plan built: %(n)d steps.") % {"n": len(steps)}

    return _act(request, pk, action)


@require_POST
@login_required
def step_add(request, pk: int):
    def action(deal):
        owner_user, owner_contact = _owner(deal, request.POST.get("owner", ""))
        side = Side.BUYER if owner_contact else request.POST.get("side", Side.SELLER)
        services.plan_step_add(
            deal=deal,
            by=request.user,
            title=request.POST.get("title", ""),
            side=side,
            phase=request.POST.get("phase", Phase.CLOSE),
            owner_user=owner_user,
            owner_contact=owner_contact,
            due_date=_date(request.POST.get("due_date", "")),
        )
        return _("Step added.")

    return _act(request, pk, action)


@require_POST
@login_required
def step_update(request, pk: int, step_pk: int):
    def action(deal):
        step = get_object_or_404(PlanStep, pk=step_pk, deal=deal)
        changes = {}
        if "status" in request.POST:
            changes["status"] = request.POST["status"]
        if "due_date" in request.POST:
            changes["due_date"] = _date(request.POST["due_date"])
        if "owner" in request.POST:
            owner_user, owner_contact = _owner(deal, request.POST["owner"])
            changes.update(owner_user=owner_user, owner_contact=owner_contact)
            if owner_user or owner_contact:
                changes["side"] = Side.SELLER if owner_user else Side.BUYER
        services.plan_step_update(
            step=step,
            by=request.user,
            expected_status=request.POST.get("expected_status") or None,
            **changes,
        )
        return _("Step “%(title)s” saved.") % {"title": step.title}

    return _act(request, pk, action)


@require_http_methods(["GET", "POST"])
@login_required
def step_edit(request, pk: int, step_pk: int):
    """GET: the step's row as a small form (htmx swaps it in place of the row). POST: save it
    through `plan_step_update`; the panel comes back, or the form again with its errors."""
    deal = deal_get_visible(request.user, pk)
    step = get_object_or_404(
        PlanStep.objects.select_related("owner_user", "owner_contact"), pk=step_pk, deal=deal
    )
    if not can_work_deal(deal, request.user):
        return _panel(request, deal, error=can_work_deal.denied_message, status=403)
    context = room_panel_context(request, deal)
    owners = owner_choices(
        step, team_members=context["team_members"], group_contacts=context["group_contacts"]
    )
    status = 200
    if request.method == "POST":
        form = StepEditForm.for_step(step, owners=owners, data=request.POST)
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                owner_user, owner_contact = _owner(deal, data["owner"])
                services.plan_step_update(
                    step=step,
                    by=request.user,
                    expected_version=data["version"],
                    title=data["title"],
                    owner_user=owner_user,
                    owner_contact=owner_contact,
                    due_date=data["due_date"],
                    note=data["note"],
                )
            except DealError as exc:
                form.add_error(None, exc.message)
                status = _status(exc)
            else:
                return _panel(
                    request, deal, notice=_("Step “%(title)s” saved.") % {"title": step.title}
                )
    else:
        form = StepEditForm.for_step(step, owners=owners)
    context.update(step=step, form=form)
    if not request.htmx:
        return render(request, "rooms/step_edit.html", context, status=status)
    response = render(request, "rooms/_step_edit.html", context, status=status)
    if request.method == "POST":
        # The form posts with the panel as its target; a refused save shows the form again.
        response["HX-Retarget"] = f"#rm-step-{step.pk}"
        response["HX-Reswap"] = "outerHTML"
    return response


@require_POST
@login_required
def step_move(request, pk: int, step_pk: int):
    def action(deal):
        step = get_object_or_404(PlanStep, pk=step_pk, deal=deal)
        services.plan_step_move(
            step=step, by=request.user, direction=request.POST.get("direction", "")
        )
        return ""

    return _act(request, pk, action)


@require_POST
@login_required
def link_issue(request, pk: int):
    def action(deal):
        contact_pk = request.POST.get("contact", "")
        contact = (
            Contact.objects.filter(pk=int(contact_pk), stakeholder_roles__deal=deal).first()
            if contact_pk.isdigit()
            else None
        )
        if contact is None:
            raise DealError(_("Choose someone from the buying group."))
        services.room_link_issue(deal=deal, by=request.user, contact=contact)
        return _("Room link ready for %(who)s: copy it from the list below.") % {"who": contact}

    return _act(request, pk, action)


@require_POST
@login_required
def link_revoke(request, pk: int, link_pk: int):
    def action(deal):
        link = get_object_or_404(RoomLink, pk=link_pk, deal=deal)
        services.room_link_revoke(link=link, by=request.user)
        return _("The link of %(who)s no longer works.") % {"who": link.contact}

    return _act(request, pk, action)


@require_POST
@login_required
def question_answer(request, pk: int, question_pk: int):
    def action(deal):
        question = get_object_or_404(RoomQuestion, pk=question_pk, deal=deal)
        services.room_question_answer(
            question=question, by=request.user, answer=request.POST.get("answer", "")
        )
        return _("Answer posted in the room.")

    return _act(request, pk, action)


@require_POST
@login_required
def question_objection(request, pk: int, question_pk: int):
    def action(deal):
        question = get_object_or_404(RoomQuestion, pk=question_pk, deal=deal)
        category = request.POST.get("category", Objection.Category.OTHER)
        services.room_question_to_objection(question=question, by=request.user, category=category)
        return _("The question is now an open objection on this deal.")

    return _act(request, pk, action)


@require_POST
@login_required
def file_share(request, pk: int):
    def action(deal):
        room_file = services.room_file_share(
            deal=deal, by=request.user, upload=request.FILES.get("file")
        )
        return _("“%(name)s” is in the room.") % {"name": room_file.name}

    return _act(request, pk, action)


@require_GET
@login_required
def file_download(request, pk: int, file_pk: int):
    deal = deal_get_visible(request.user, pk)
    room_file = get_object_or_404(RoomFile, pk=file_pk, deal=deal)
    response = FileResponse(
        room_file.file.open("rb"),
        as_attachment=True,
        filename=room_file.name,
        content_type=room_file.content_type or "application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@require_POST
@login_required
def outcome_add(request, pk: int):
    def action(deal):
        services.plan_outcome_add(deal=deal, by=request.user, text=request.POST.get("text", ""))
        return _("Outcome added to the plan.")

    return _act(request, pk, action)


@require_POST
@login_required
def need_add(request, pk: int):
    def action(deal):
        services.deal_need_add(deal=deal, by=request.user, text=request.POST.get("text", ""))
        return _("Need noted.")

    return _act(request, pk, action)


@require_POST
@login_required
def need_follow_on(request, pk: int, need_pk: int):
    def action(deal):
        need = get_object_or_404(DealNeed, pk=need_pk, deal=deal)
        raw = (request.POST.get("amount") or "0").strip()
        try:
            amount = Decimal(raw)
        except InvalidOperation:
            raise DealError(_("Enter the amount as a number.")) from None
        if amount < 0:
            raise DealError(_("The amount cannot be negative."))
        created = services.deal_need_to_follow_on(need=need, by=request.user, amount=amount)
        return _("Follow-on deal “%(title)s” opened.") % {"title": created.title}

    return _act(request, pk, action)


urlpatterns = [
    path("deals/<int:pk>/panel/", panel, name="panel"),
    path("deals/<int:pk>/plan/from-template/", plan_from_template, name="plan_from_template"),
    path("deals/<int:pk>/steps/", step_add, name="step_add"),
    path("deals/<int:pk>/steps/<int:step_pk>/", step_update, name="step_update"),
    path("deals/<int:pk>/steps/<int:step_pk>/edit/", step_edit, name="step_edit"),
    path("deals/<int:pk>/steps/<int:step_pk>/move/", step_move, name="step_move"),
    path("deals/<int:pk>/links/", link_issue, name="link_issue"),
    path("deals/<int:pk>/links/<int:link_pk>/revoke/", link_revoke, name="link_revoke"),
    path(
        "deals/<int:pk>/questions/<int:question_pk>/answer/",
        question_answer,
        name="question_answer",
    ),
    path(
        "deals/<int:pk>/questions/<int:question_pk>/objection/",
        question_objection,
        name="question_objection",
    ),
    path("deals/<int:pk>/files/", file_share, name="file_share"),
    path("deals/<int:pk>/files/<int:file_pk>/", file_download, name="file_download"),
    path("deals/<int:pk>/outcomes/", outcome_add, name="outcome_add"),
    path("deals/<int:pk>/needs/", need_add, name="need_add"),
    path("deals/<int:pk>/needs/<int:need_pk>/follow-on/", need_follow_on, name="need_follow_on"),
]
