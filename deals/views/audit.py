"""Audit export: one deal's history (anyone who may read the deal) and every event in a date
range (admins), as CSV (through the one formula-safe CSV writer) or JSON. Thin views over
deals.selectors.audit."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import path
from django.views.decorators.http import require_GET

from ..csv_export import csv_streaming_response
from ..selectors import (
    AUDIT_COLUMNS,
    audit_deal_for_export,
    audit_event_rows,
    audit_events_for_deal,
    audit_events_in_range,
)

FORMATS = ("csv", "json")


def _csv_rows(rows: Iterable[dict[str, Any]]) -> Iterator[list]:
    yield AUDIT_COLUMNS
    for row in rows:
        data = json.dumps(row["data"], cls=DjangoJSONEncoder, sort_keys=True)
        yield [*(row[name] for name in AUDIT_COLUMNS[:-1]), data]


def _json_chunks(head: dict[str, Any], rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    """{...head, "events": [...]} written event by event, never held whole in memory."""
    opening = json.dumps(head, cls=DjangoJSONEncoder)[:-1]
    yield opening + (", " if head else "") + '"events": ['
    for index, row in enumerate(rows):
        yield ("," if index else "") + json.dumps(row, cls=DjangoJSONEncoder)
    yield "]}"


def _export(fmt: str, *, filename: str, head: dict[str, Any], rows) -> HttpResponse:
    if fmt == "csv":
        return csv_streaming_response(_csv_rows(rows), filename=f"{filename}.csv", bom=True)
    response = StreamingHttpResponse(_json_chunks(head, rows), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{filename}.json"'
    response["Cache-Control"] = "no-store"
    return response


@require_GET
@login_required
def deal_audit_export(request: HttpRequest, pk: int, fmt: str) -> HttpResponse:
    """Every event of one deal, oldest first, for anyone who may read the deal."""
    if fmt not in FORMATS:
        raise Http404("Export as .csv or .json.")
    deal = audit_deal_for_export(request.user, pk)
    head = {"deal": {"id": deal.pk, "title": deal.title, "state": deal.state}}
    rows = audit_event_rows(audit_events_for_deal(deal))
    return _export(fmt, filename=f"deal-{deal.pk}-events", head=head, rows=rows)


def _date(request: HttpRequest, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(request.GET.get(name, ""))
    except ValueError:
        raise ValueError(f"Give {name} as a date (YYYY-MM-DD).") from None


@require_GET
@login_required
def audit_export(request: HttpRequest, fmt: str) -> HttpResponse:
    """Every event of every deal from `start` to `end` (inclusive dates): admins only."""
    if not request.user.is_superuser:
        raise PermissionDenied("Only admins can export the whole audit log.")
    if fmt not in FORMATS:
        raise Http404("Export as .csv or .json.")
    try:
        start, end = _date(request, "start"), _date(request, "end")
    except ValueError as problem:
        return JsonResponse({"detail": str(problem)}, status=400)
    if end < start:
        return JsonResponse({"detail": "end is before start."}, status=400)
    rows = audit_event_rows(audit_events_in_range(start, end))
    head = {"start": start.isoformat(), "end": end.isoformat()}
    return _export(fmt, filename=f"audit-{start:%Y%m%d}-{end:%Y%m%d}", head=head, rows=rows)


urlpatterns = [
    path("deals/<int:pk>/events.<slug:fmt>", deal_audit_export, name="deal_audit_export"),
    path("audit/events.<slug:fmt>", audit_export, name="audit_export"),
]
