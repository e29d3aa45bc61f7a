"""Contract pages for reps (generate, preview, send, resend, void, downloads) and the webhook.

Views are thin: they find what the user may see, call one service, and answer in plain words.
"""

from __future__ import annotations

import itertools
import logging
import re

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext as _
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from deals.models import Deal, can_work_deal
from deals.services import DealError, NotPermitted

from . import services
from .esign import MalformedWebhook, ProviderError, get_provider
from .models import ContractVersion

log = logging.getLogger(__name__)


def _deal_url(deal: Deal) -> str:
    return deal.get_absolute_url() + "#contracts-panel"


def _visible_version(request, pk: int) -> ContractVersion:
    visible = Deal.objects.visible_to(request.user)
    return get_object_or_404(
        ContractVersion.objects.select_related("deal", "deal__account", "template", "created_by"),
        pk=pk,
        deal__in=visible,
    )


def _forbidden(request, message: str) -> HttpResponse:
    return render(request, "contracts/error.html", {"message": message}, status=403)


def _act(request, deal: Deal, action) -> HttpResponse:
    """Run one service call for a rep; errors come back as a message on the deal page."""
    if not can_work_deal(deal, request.user):
        return _forbidden(request, can_work_deal.denied_message)
    try:
        text = action()
    except NotPermitted as exc:
        return _forbidden(request, exc.message)
    except DealError as exc:
        messages.error(request, exc.message, extra_tags="contracts")
    else:
        messages.success(request, text, extra_tags="contracts")
    return redirect(_deal_url(deal))


@login_required
@require_POST
def generate(request, deal_pk: int):
    deal = get_object_or_404(Deal.objects.visible_to(request.user), pk=deal_pk)
    signer_pk = request.POST.get("signer", "")
    signer = None
    if signer_pk.isdigit():
        signer = deal.account.contacts.active().filter(pk=int(signer_pk)).first()

    def action():
        if signer_pk and signer is None:
            raise DealError(gettext("Choose the signer from the account's contacts."))
        version = services.contract_generate(
            deal=deal,
            by=request.user,
            signer=signer,
            routing=request.POST.get("routing") or "sequence",
        )
        names = [s.name for s in version.signers.all()]
        if len(names) > 1:
            return _(
                "Contract version %(number)s generated for %(names)s to sign, in this order. "
                "Preview it, then send it."
            ) % {"number": version.number, "names": ", ".join(names)}
        return (
            f"Contract version {version.number} generated for {version.signer_name} to sign. "
            "Preview it, then send it."
        )

    return _act(request, deal, action)


@login_required
@require_POST
def send(request, pk: int):
    version = _visible_version(request, pk)

    def action():
        services.contract_send(
            version=version,
            by=request.user,
            expected_state=request.POST.get("expected_state") or None,
            embedded=request.POST.get("embedded") == "1",
        )
        return f"Version {version.number} is on its way to {version.signer_name}."

    return _act(request, version.deal, action)


@login_required
@require_POST
def resend(request, pk: int):
    version = _visible_version(request, pk)

    def action():
        services.contract_resend(version=version, by=request.user)
        return f"Version {version.number} is being sent again."

    return _act(request, version.deal, action)


@login_required
@require_POST
def void(request, pk: int):
    version = _visible_version(request, pk)

    def action():
        services.contract_void(
            version=version, by=request.user, reason=request.POST.get("reason", "")
        )
        return f"Version {version.number} voided: it can no longer be signed."

    return _act(request, version.deal, action)


@login_required
@require_POST
def late_signature_accept(request, deal_pk: int, pk: int):
    """A manager turns a signature that came after the close into the win (with a reason)."""
    version = _visible_version(request, pk)
    if version.deal_id != deal_pk:
        raise Http404("No such contract version on this deal.")
    deal = version.deal
    try:
        services.contract_late_signature_accept(
            version=version, by=request.user, reason=request.POST.get("reason", "")
        )
    except NotPermitted as exc:
        return _forbidden(request, exc.message)
    except DealError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            gettext("“%(deal)s” is won with the signature on version %(number)s.")
            % {"deal": deal, "number": version.number},
        )
    return redirect(deal.get_absolute_url())


@login_required
@require_POST
def signing_view(request, pk: int):
    """Embedded DocuSign signing (in person): a fresh recipient view URL, then a redirect."""
    version = _visible_version(request, pk)
    if not can_work_deal(version.deal, request.user):
        return _forbidden(request, can_work_deal.denied_message)
    if not (version.provider == "docusign" and version.embedded_signing and version.is_out):
        messages.error(request, gettext("This contract is not set up for signing in person."))
        return redirect(_deal_url(version.deal))
    if not version.envelope_id:
        messages.error(
            request, gettext("DocuSign has not accepted the envelope yet. Try again shortly.")
        )
        return redirect(_deal_url(version.deal))
    # DocuSign appends `?event=…` to the return URL: it must have no `#fragment`, or the
    # query would land after it and never reach the server.
    return_url = request.build_absolute_uri(reverse("contracts:signing_return", args=[version.pk]))
    try:
        url = get_provider("docusign").signing_view_url(version, return_url)
    except ProviderError as exc:
        messages.error(request, exc.message)
        return redirect(_deal_url(version.deal))
    return redirect(url)


#: DocuSign's `event` on the in-person return URL → what the rep is told.
SIGNING_RETURN_EVENTS = {
    "signing_complete": "The buyer signed in DocuSign.",
    "decline": "The buyer declined to sign in DocuSign.",
    "cancel": "The buyer left the signing session without signing; open it again when ready.",
    "session_timeout": "The signing session timed out; open it again to continue.",
    "ttl_expired": "The signing link expired; open the signing session again.",
    "viewing_complete": "The buyer viewed the contract.",
    "exception": "DocuSign reported a problem with the signing session; try again.",
    "id_check_failed": "The buyer's identity check failed in DocuSign.",
}


@login_required
@require_GET
def signing_return(request, pk: int):
    """Where DocuSign sends the in-person signer back (`?event=…`): read the envelope's
    status at once, so the deal page shows the outcome without waiting for the webhook."""
    version = _visible_version(request, pk)
    event = request.GET.get("event", "")
    words = SIGNING_RETURN_EVENTS.get(event, "Back from DocuSign.")
    if version.provider == "docusign" and version.envelope_id:
        try:
            services.contract_envelope_sync(version=version)
        except ProviderError as exc:
            messages.warning(
                request,
                gettext("%(words)s %(message)s The status will update when DocuSign reports.")
                % {"words": words, "message": exc.message},
            )
            return redirect(_deal_url(version.deal))
    version.refresh_from_db()
    messages.info(
        request,
        gettext("%(words)s Version %(number)s: %(status)s.")
        % {"words": words, "number": version.number, "status": version.get_status_display()},
    )
    return redirect(_deal_url(version.deal))


@login_required
@require_GET
def preview(request, pk: int):
    version = _visible_version(request, pk)
    return render(
        request,
        "contracts/preview.html",
        {
            "version": version,
            "deal": version.deal,
            "can_work": can_work_deal(version.deal, request.user),
        },
    )


@login_required
@require_GET
@xframe_options_sameorigin
def document_html(request, pk: int):
    """The rendered contract HTML, shown in a sandboxed frame on the preview page."""
    version = _visible_version(request, pk)
    return HttpResponse(version.html, content_type="text/html; charset=utf-8")


def _pdf_response(file, filename: str, *, inline: bool = True) -> FileResponse:
    if not file:
        raise Http404("No document.")
    return FileResponse(
        file.open("rb"),
        content_type="application/pdf",
        as_attachment=not inline,
        filename=filename,
    )


@login_required
@require_GET
@xframe_options_sameorigin
def document_pdf(request, pk: int):
    version = _visible_version(request, pk)
    return _pdf_response(version.pdf, f"contract-{version.deal_id}-v{version.number}.pdf")


@login_required
@require_GET
def signed_pdf(request, pk: int):
    version = _visible_version(request, pk)
    return _pdf_response(
        version.signed_pdf, f"contract-{version.deal_id}-v{version.number}-signed.pdf"
    )


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_NOT_A_BRACKET = re.compile(rb"[^\[\]{}]")


def _json_nesting(body: bytes) -> int:
    """How deeply arrays and objects nest in a JSON text (brackets inside strings aside),
    counted without parsing it: `json.loads` would recurse once per level."""
    brackets = _NOT_A_BRACKET.sub(b"", _JSON_STRING.sub(b"", body))
    steps = (1 if byte in b"[{" else -1 for byte in brackets)
    return max(itertools.accumulate(steps, initial=0))


def _webhook_size_refusal(request) -> JsonResponse | None:
    """A body over DOCUSIGN_WEBHOOK_MAX_BYTES is refused, by its declared length before it
    is read (a body without one is still capped by DATA_UPLOAD_MAX_MEMORY_SIZE, then here)."""
    limit = settings.DOCUSIGN_WEBHOOK_MAX_BYTES
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if not declared.isdigit() or int(declared) > limit or len(request.body) > limit:
        return JsonResponse({"error": f"The body is larger than {limit} bytes."}, status=400)
    return None


@csrf_exempt
@require_POST
def docusign_webhook(request):
    """DocuSign Connect: verify the HMAC, store the delivery, answer fast; a task processes it.

    Bounded before parsing: a body over DOCUSIGN_WEBHOOK_MAX_BYTES or JSON nested deeper than
    DOCUSIGN_WEBHOOK_MAX_DEPTH is a 400 (never a RecursionError and a 500), even when signed."""
    too_big = _webhook_size_refusal(request)
    if too_big:
        return too_big
    provider = get_provider("docusign")
    body = request.body
    if not provider.verify_webhook(body, request.headers):
        log.warning("DocuSign webhook with a missing or wrong signature refused.")
        return JsonResponse({"error": "The HMAC signature is missing or wrong."}, status=401)
    max_depth = settings.DOCUSIGN_WEBHOOK_MAX_DEPTH
    if _json_nesting(body) > max_depth:
        return JsonResponse(
            {"error": f"The JSON is nested deeper than {max_depth} levels."}, status=400
        )
    try:
        event = provider.parse_webhook(body)
    except MalformedWebhook as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    delivery = services.webhook_receive(
        provider="docusign", event=event.event, envelope_id=event.envelope_id, body=body
    )
    return JsonResponse({"received": delivery.pk})


# --- verify a PDF ---------------------------------------------------------------------


@login_required
def verify(request):
    """Upload a PDF: is it one of our sealed contracts, unmodified, for which deal?

    The deal and its signers are shown only when the user may see the deal."""
    from .verification import UploadRefused, read_upload, verify_pdf

    result, error, status = None, "", 200
    if request.method == "POST":
        try:
            result = verify_pdf(read_upload(request.FILES.get("pdf")))
        except UploadRefused as exc:
            error, status = str(exc), 400
    visible = bool(
        result
        and result.version
        and Deal.objects.visible_to(request.user).filter(pk=result.version.deal_id).exists()
    )
    return render(
        request,
        "contracts/verify.html",
        {"result": result, "error": error, "public": False, "visible": visible},
        status=status,
    )
