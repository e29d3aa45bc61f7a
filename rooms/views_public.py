"""The buyer's closing room: no account, a signed link per buying-group contact.

Every request is throttled per IP and link like the signing pages; every refusal is a page
saying why. Buyer files are served as attachments with our own content type and nosniff.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import cache
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from contracts.models import ContractVersion
from deals.services import DealError

from . import selectors, services
from .models import PlanOutcome, PlanStep, RoomFile
from .services import LinkRefused


def _throttled(request, token: str) -> bool:
    digest = hashlib.sha256(token.encode()).hexdigest()[:20]
    key = f"rooms:link:{request.META.get('REMOTE_ADDR', '') or 'unknown'}:{digest}"
    window = settings.CONTRACT_LINK_THROTTLE_WINDOW
    cache.add(key, 0, timeout=window)
    try:
        count = cache.incr(key)
    except ValueError:
        cache.set(key, 1, timeout=window)
        count = 1
    return count > settings.ROOM_LINK_THROTTLE


def _refused(request, message: str, status: int) -> HttpResponse:
    return render(request, "rooms/refused.html", {"message": message}, status=status)


def _guard(request, token: str):
    if _throttled(request, token):
        return None, _refused(
            request, _("Too many requests for this link. Wait a few minutes and try again."), 429
        )
    try:
        return services.room_link_for_token(token), None
    except LinkRefused as exc:
        return None, _refused(request, exc.message, exc.status)


def _page(request, token, link, *, error: str = "", status: int = 200, anchor: str = ""):
    context = selectors.room_page(link)
    context.update(token=token, error=error, error_anchor=anchor)
    return render(request, "rooms/room.html", context, status=status)


def _back(token: str, anchor: str):
    return redirect(f"{_room_path(token)}#{anchor}")


def _room_path(token: str) -> str:
    from django.urls import reverse

    return reverse("rooms_public:room", args=[token])


@never_cache
@require_GET
def room(request, token: str):
    link, refused = _guard(request, token)
    if refused:
        return refused
    services.room_visit_record(link=link)
    return _page(request, token, link)


@never_cache
@require_POST
def step_tick(request, token: str, step_pk: int):
    link, refused = _guard(request, token)
    if refused:
        return refused
    step = get_object_or_404(PlanStep, pk=step_pk, deal_id=link.deal_id)
    try:
        services.room_step_tick(link=link, step=step)
    except DealError as exc:
        return _page(request, token, link, error=exc.message, status=409, anchor="plan")
    return _back(token, "plan")


@never_cache
@require_POST
def question_ask(request, token: str):
    link, refused = _guard(request, token)
    if refused:
        return refused
    try:
        services.room_question_ask(link=link, text=request.POST.get("text", ""))
    except DealError as exc:
        return _page(request, token, link, error=exc.message, status=400, anchor="questions")
    return _back(token, "questions")


@never_cache
@require_POST
def file_upload(request, token: str):
    link, refused = _guard(request, token)
    if refused:
        return refused
    try:
        services.room_file_upload(link=link, upload=request.FILES.get("file"))
    except DealError as exc:
        return _page(request, token, link, error=exc.message, status=400, anchor="files")
    return _back(token, "files")


def _attachment(file_field, name: str, content_type: str) -> FileResponse:
    response = FileResponse(
        file_field.open("rb"), as_attachment=True, filename=name, content_type=content_type
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@never_cache
@require_GET
def file_open(request, token: str, file_pk: int):
    link, refused = _guard(request, token)
    if refused:
        return refused
    room_file = get_object_or_404(RoomFile, pk=file_pk, deal_id=link.deal_id)
    if room_file.uploaded_by_link_id not in (None, link.pk):
        raise Http404(_("Not found."))
    if room_file.uploaded_by_link_id is None:
        services.room_file_opened(link=link, room_file=room_file)
    return _attachment(room_file.file, room_file.name, room_file.content_type)


@never_cache
@require_GET
def contract_read(request, token: str):
    """The current contract's text (read-only; signing goes through the signer)."""
    link, refused = _guard(request, token)
    if refused:
        return refused
    version = selectors.room_contract(link.deal)
    if version is None:
        raise Http404(_("No contract yet."))
    response = HttpResponse(version.html, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return response


@never_cache
@require_GET
def contract_signed_pdf(request, token: str):
    link, refused = _guard(request, token)
    if refused:
        return refused
    version = selectors.room_contract(link.deal)
    if (
        version is None
        or version.status != ContractVersion.Status.COMPLETED
        or not version.signed_pdf
    ):
        raise Http404(_("No signed contract yet."))
    return _attachment(
        version.signed_pdf,
        f"contract-{version.deal_id}-v{version.number}-signed.pdf",
        "application/pdf",
    )


@never_cache
@require_POST
def outcome_confirm(request, token: str, outcome_pk: int):
    link, refused = _guard(request, token)
    if refused:
        return refused
    outcome = get_object_or_404(PlanOutcome, pk=outcome_pk, deal_id=link.deal_id)
    try:
        services.room_outcome_confirm(
            link=link,
            outcome=outcome,
            status=request.POST.get("status", ""),
            note=request.POST.get("note", ""),
        )
    except DealError as exc:
        return _page(request, token, link, error=exc.message, status=400, anchor="outcomes")
    return _back(token, "outcomes")
