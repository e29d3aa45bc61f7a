"""Every error under /api/ is one JSON shape, the `Error` component of the OpenAPI schema.

    {"detail": "Plain message.", "code": "invalid", "fields": {"amount": ["…"]}}

`detail` is always there; `code` names the kind of error; `fields` is present on
validation errors only, with one list of messages per field (nested fields are
dotted: `objection.category`). The status says who should act:

- 400: the request does not match the schema (field messages in `fields`);
- 401: no or bad credentials; 403: not allowed; 404: not found, or not yours to see
  (also an id in the body that names something you cannot see);
- 409: well-formed, but the deal's rules refuse it in its current state;
- 415: the body is not JSON; 429: too many requests (see `Retry-After`).

DRF views get this from `api_exception_handler`; Django's own 400/403/404/500 pages
(a URL that matches nothing, such as `/api/v1/deals/abc/`) get it from the
`handler*` functions wired in closing_crm.urls, for paths under /api/ only.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from deals.services import DealConflict, DealError, NotPermitted, TransitionBlocked

API_PREFIX = "/api/"


def error_body(detail: str, code: str, fields: dict[str, list[str]] | None = None) -> dict:
    body = {"detail": detail, "code": code}
    if fields:
        body["fields"] = fields
    return body


def flatten_field_errors(errors, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as {"field": [...], "nested.field": [...]}."""
    if isinstance(errors, dict):
        flat: dict[str, list[str]] = {}
        for name, value in errors.items():
            key = f"{prefix}.{name}" if prefix else str(name)
            for path, messages in flatten_field_errors(value, key).items():
                flat.setdefault(path, []).extend(messages)
        return flat
    if isinstance(errors, list):
        if any(isinstance(item, (dict, list)) for item in errors):
            flat = {}
            for index, item in enumerate(errors):
                key = f"{prefix}.{index}" if prefix else str(index)
                for path, messages in flatten_field_errors(item, key).items():
                    flat.setdefault(path, []).extend(messages)
            return flat
        return {prefix or "non_field_errors": [str(item) for item in errors]}
    return {prefix or "non_field_errors": [str(errors)]}


def _validation_summary(fields: dict[str, list[str]]) -> str:
    parts = []
    for name, messages in fields.items():
        text = " ".join(messages)
        parts.append(text if name == "non_field_errors" else f"{name}: {text}")
    return " ".join(parts) or "Invalid input."


def _all_codes(codes) -> set[str]:
    if isinstance(codes, dict):
        return set().union(*(_all_codes(value) for value in codes.values()))
    if isinstance(codes, list):
        return set().union(*(_all_codes(value) for value in codes)) if codes else set()
    return {str(codes)}


def validation_error_response(exc: exceptions.ValidationError) -> Response:
    fields = flatten_field_errors(exc.detail)
    codes = _all_codes(exc.get_codes())
    # An id in the body that names nothing you can see is the same 404 as in the path.
    if codes == {"does_not_exist"}:
        return Response(
            error_body("Not found: " + _validation_summary(fields), "not_found", fields),
            status=status.HTTP_404_NOT_FOUND,
        )
    return Response(
        error_body(_validation_summary(fields), "invalid", fields),
        status=status.HTTP_400_BAD_REQUEST,
    )


def api_exception_handler(exc, context):
    """DRF's handler, plus the services' errors, all as the one `Error` shape.

    NotPermitted → 403; any other refusal by a business rule (DealError, including
    conflicts and blocked transitions) → 409; model validation errors → 400.
    """
    if isinstance(exc, NotPermitted):
        return Response(error_body(exc.message, "permission_denied"), status=403)
    if isinstance(exc, DealConflict):
        return Response(error_body(exc.message, "conflict"), status=409)
    if isinstance(exc, TransitionBlocked):
        return Response(error_body(exc.message, "transition_blocked"), status=409)
    if isinstance(exc, DealError):
        return Response(error_body(exc.message, "refused"), status=409)
    if isinstance(exc, DjangoValidationError):
        fields = (
            {name: list(messages) for name, messages in exc.message_dict.items()}
            if hasattr(exc, "error_dict")
            else None
        )
        return Response(
            error_body(" ".join(exc.messages), "invalid", fields),
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, exceptions.ValidationError):
        response = validation_error_response(exc)
        return response
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, Http404):
        code = "not_found"
    elif isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
    else:
        code = "error"
    detail = response.data.get("detail", "") if isinstance(response.data, dict) else ""
    response.data = error_body(str(detail) or "Error.", code)
    return response


# --- Django's own error pages, as JSON under /api/ ---------------------------------------


def _is_api(request) -> bool:
    return request.path.startswith(API_PREFIX)


def _json_error(detail: str, code: str, status_code: int) -> JsonResponse:
    return JsonResponse(error_body(detail, code), status=status_code)


def bad_request(request, exception, template_name=defaults.ERROR_400_TEMPLATE_NAME):
    if _is_api(request):
        return _json_error("Bad request.", "bad_request", 400)
    return defaults.bad_request(request, exception, template_name)


def permission_denied(request, exception, template_name=defaults.ERROR_403_TEMPLATE_NAME):
    if _is_api(request):
        return _json_error("You do not have permission to do this.", "permission_denied", 403)
    return defaults.permission_denied(request, exception, template_name)


def page_not_found(request, exception, template_name=defaults.ERROR_404_TEMPLATE_NAME):
    if _is_api(request):
        return _json_error("Not found.", "not_found", 404)
    return defaults.page_not_found(request, exception, template_name)


def server_error(request, template_name=defaults.ERROR_500_TEMPLATE_NAME):
    if _is_api(request):
        return _json_error("Server error; it has been logged.", "server_error", 500)
    return defaults.server_error(request, template_name)
