"""Inbound email over HTTP (mounted at /inbound/): the raw-MIME endpoint and django-anymail's
ESP webhooks. Both are off until their secret is configured."""

from __future__ import annotations

import functools

from anymail import urls as anymail_urls
from django.conf import settings
from django.http import Http404, JsonResponse
from django.urls import URLPattern, include, path
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import inbound


def _error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


@csrf_exempt
@require_POST
def inbound_email(request):
    """POST the raw message: `message/rfc822` body, or a multipart form field/file `email`.

    Authenticated by the `X-Inbound-Secret` header (constant-time compare with
    INBOUND_EMAIL_SECRET); the endpoint does not exist while that setting is empty.
    """
    secret = settings.INBOUND_EMAIL_SECRET
    if not secret:
        raise Http404("Inbound email over HTTP is not configured.")
    if not constant_time_compare(request.headers.get("X-Inbound-Secret", ""), secret):
        return _error("Wrong or missing X-Inbound-Secret.", 401)
    limit = settings.INBOUND_EMAIL_MAX_BYTES
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > limit + 64 * 1024:
        return _error(f"The message is larger than {limit} bytes.", 413)
    if request.content_type == "message/rfc822":
        raw = request.read(limit + 1)
    elif request.content_type == "multipart/form-data":
        upload = request.FILES.get("email")
        if upload is not None:
            raw = upload.read(limit + 1)
        else:
            raw = request.POST.get("email", "").encode("utf-8", "surrogateescape")
    else:
        return _error("Send the message as message/rfc822, or as the form field “email”.", 400)
    try:
        record = inbound.inbound_email_receive(raw=raw, source="http")
    except inbound.InboundRefused as exc:
        return _error(exc.message, exc.status)
    return JsonResponse(
        {
            "id": record.pk,
            "kind": record.kind,
            "status": record.status,
            "deal": record.deal_id,
        }
    )


def _guarded(view):
    """An anymail webhook that answers 404 until ANYMAIL_WEBHOOK_SECRET is set: without it
    anymail accepts unauthenticated posts, and forged mail could pause follow-ups."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if not settings.ANYMAIL.get("WEBHOOK_SECRET"):
            raise Http404("ESP webhooks are not configured.")
        return view(request, *args, **kwargs)

    return wrapper


def _anymail_patterns() -> list[URLPattern]:
    patterns = []
    for pattern in anymail_urls.urlpatterns:
        pattern = URLPattern(
            pattern.pattern, _guarded(pattern.callback), pattern.default_args, pattern.name
        )
        patterns.append(pattern)
    return patterns


urlpatterns = [
    path("email/", inbound_email, name="inbound_email"),
    path("anymail/", include((_anymail_patterns(), "anymail"), namespace="anymail")),
]
