"""The buyer's signing page for the built-in provider: no account, a signed expiring link.

Every request is throttled per IP and link (Django cache counter; 429 with a message).
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.cache import cache
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET, require_POST

from . import documents
from .esign.builtin import LinkRefused, version_for_token
from .models import ContractVersion
from .services import (
    ContractError,
    contract_decline_builtin,
    contract_sign_builtin,
    contract_view_builtin,
)


def _ip(request) -> str:
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _user_agent(request) -> str:
    return request.headers.get("User-Agent", "")[:300]


def _throttled(request, token: str) -> bool:
    """Count this request; True when the IP used this link too often in the window."""
    digest = hashlib.sha256(token.encode()).hexdigest()[:20]
    key = f"contracts:sign:{_ip(request)}:{digest}"
    window = settings.CONTRACT_LINK_THROTTLE_WINDOW
    cache.add(key, 0, timeout=window)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window)
        count = 1
    return count > settings.CONTRACT_LINK_THROTTLE


def _refused(request, message: str, status: int, title: str = "") -> HttpResponse:
    return render(
        request,
        "contracts/sign_refused.html",
        {"message": message, "title": title or "This link cannot be used"},
        status=status,
    )


def _guard(request, token: str):
    """((version, signer), None) for a good link, or (None, response) for a throttled or
    refused one (expired, withdrawn, or not the signer's turn yet)."""
    if _throttled(request, token):
        return None, _refused(
            request,
            _("Too many requests for this link. Wait a few minutes and try again."),
            429,
        )
    try:
        return version_for_token(token), None
    except LinkRefused as exc:
        return None, _refused(request, exc.message, 403, exc.title)


def _page(
    request,
    token: str,
    version: ContractVersion,
    signer,
    *,
    error: str = "",
    status: int = 200,
):
    signers = list(version.signers.all())
    return render(
        request,
        "contracts/sign.html",
        {
            "token": token,
            "version": version,
            "deal": version.deal,
            "signer": signer,
            "signers": signers,
            "several": len(signers) > 1,
            "signable": version.is_out and (signer is None or signer.is_due),
            "waiting": ", ".join(s.name for s in signers if s.status != "signed"),
            "error": error,
            "form": request.POST if request.method == "POST" else {},
        },
        status=status,
    )


@never_cache
@require_GET
def sign_page(request, token: str):
    found, refused = _guard(request, token)
    if refused:
        return refused
    version, signer = found
    contract_view_builtin(
        version=version, ip=_ip(request), user_agent=_user_agent(request), signer=signer
    )
    version.refresh_from_db()
    if signer is not None:
        signer.refresh_from_db()
    return _page(request, token, version, signer)


@never_cache
@require_GET
@xframe_options_sameorigin
def sign_document(request, token: str):
    found, refused = _guard(request, token)
    if refused:
        return refused
    version, _signer = found
    html = version.html
    audit = version.signature or {}
    if version.status == ContractVersion.Status.COMPLETED and audit.get("name"):
        # After signing the buyer sees the lines filled in, not empty ones.
        html = documents.signed_html(html, name=audit["name"], signed_at=audit.get("signed_at", ""))
    response = HttpResponse(html, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return response


@never_cache
@require_GET
def sign_pdf(request, token: str):
    found, refused = _guard(request, token)
    if refused:
        return refused
    version, _signer = found
    signed = version.status == ContractVersion.Status.COMPLETED and version.signed_pdf
    file = version.signed_pdf if signed else version.pdf
    if not file:
        raise Http404("No document.")
    suffix = "-signed" if signed else ""
    return FileResponse(
        file.open("rb"),
        content_type="application/pdf",
        filename=f"contract-{version.deal_id}-v{version.number}{suffix}.pdf",
    )


@never_cache
@require_POST
def sign_submit(request, token: str):
    found, refused = _guard(request, token)
    if refused:
        return refused
    version, signer = found
    try:
        contract_sign_builtin(
            version=version,
            signer=signer,
            full_name=request.POST.get("full_name", ""),
            consent=request.POST.get("consent") == "on",
            ip=_ip(request),
            user_agent=_user_agent(request),
        )
    except ContractError as exc:
        version.refresh_from_db()
        if signer is not None:
            signer.refresh_from_db()
        return _page(request, token, version, signer, error=exc.message, status=400)
    return redirect("contracts_public:sign", token=token)


@never_cache
@require_POST
def decline_submit(request, token: str):
    found, refused = _guard(request, token)
    if refused:
        return refused
    version, signer = found
    try:
        contract_decline_builtin(
            version=version,
            signer=signer,
            reason=request.POST.get("reason", ""),
            ip=_ip(request),
            user_agent=_user_agent(request),
        )
    except ContractError as exc:
        version.refresh_from_db()
        if signer is not None:
            signer.refresh_from_db()
        return _page(request, token, version, signer, error=exc.message, status=400)
    return redirect("contracts_public:sign", token=token)


def _verify_throttled(request) -> bool:
    key = f"contracts:verify:{_ip(request)}"
    window = settings.VERIFY_THROTTLE_WINDOW
    cache.add(key, 0, timeout=window)
    try:
        count = cache.incr(key)
    except ValueError:
        cache.set(key, 1, timeout=window)
        count = 1
    return count > settings.VERIFY_THROTTLE


@never_cache
def verify_public(request):
    """Anyone may check a PDF: sealed by us and unmodified (how many signers, when), modified,
    or not ours. No deal data is shown. Uploads are throttled per IP."""
    from .verification import UploadRefused, read_upload, verify_pdf

    result, error, status = None, "", 200
    if request.method == "POST":
        if _verify_throttled(request):
            error, status = _("Too many checks from your address. Wait a few minutes."), 429
        else:
            try:
                result = verify_pdf(read_upload(request.FILES.get("pdf")))
            except UploadRefused as exc:
                error, status = str(exc), 400
    return render(
        request,
        "contracts/verify.html",
        {"result": result, "error": error, "public": True, "visible": False},
        status=status,
    )
