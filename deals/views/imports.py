"""CSV import (upload → preview → import with progress) and CSV export of deal lists.

Thin views over deals.imports (checks and writes) and deals.selectors (reads). The same views
serve managers in the app and admins inside the Django admin (`admin=True`).
"""

from __future__ import annotations

from collections.abc import Iterator

from django import forms
from django.contrib.admin import site
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import connections
from django.db.models import CharField, Func
from django.db.models.functions import Cast
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from closing_crm.replica import reads_from_replica

from .. import imports
from ..csv_export import csv_response, csv_streaming_response
from ..models import Team
from ..selectors import deals_filtered
from ..services import DealError


def _may_import(user) -> bool:
    return user.is_superuser or (user.is_manager and user.team_id is not None)


class ImportForm(forms.Form):
    kind = forms.ChoiceField(
        label=gettext_lazy("The file contains"),
        choices=list(imports.KINDS.items()),
        widget=forms.RadioSelect,
        initial="deals",
    )
    file = forms.FileField(
        label=gettext_lazy("CSV file"),
        help_text=gettext_lazy("UTF-8, comma-separated, the first row names the columns."),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )
    team = forms.ModelChoiceField(
        queryset=Team.objects.all(),
        required=False,
        help_text=gettext_lazy("The team the rows belong to."),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        if not user.is_superuser:
            del self.fields["team"]
        else:
            self.fields["team"].required = True
            if user.team_id:
                self.fields["team"].initial = user.team_id

    def clean_file(self):
        upload = self.cleaned_data["file"]
        try:
            imports.check_upload(
                name=upload.name, size=upload.size, content_type=upload.content_type or ""
            )
        except imports.ImportFileError as error:
            raise forms.ValidationError(error.message) from None
        return upload

    def chosen_team(self) -> Team:
        return self.cleaned_data.get("team") or self.user.team


def _context(request: HttpRequest, admin: bool, **extra) -> dict:
    admin_context = site.each_context(request) if admin else {}
    return {
        **admin_context,
        "title": "Import from CSV",
        "base_template": "imports/admin_base.html" if admin else "base.html",
        "admin_mode": admin,
        "columns": {
            kind: {"required": cols[0], "optional": cols[1]}
            for kind, cols in imports.COLUMNS.items()
        },
        "kinds": imports.KINDS,
        "max_mb": imports._megabytes(imports.settings.IMPORT_MAX_BYTES),
        **extra,
    }


def _job_url(job_id: str, admin: bool) -> str:
    return reverse("deals:import_job", args=[job_id]) + ("?admin=1" if admin else "")


@require_http_methods(["GET", "POST"])
@login_required
def import_upload(request: HttpRequest, admin: bool = False) -> HttpResponse:
    if not _may_import(request.user):
        raise PermissionDenied("Only managers and admins can import.")
    initial = {"kind": request.GET["kind"]} if request.GET.get("kind") in imports.KINDS else {}
    form = ImportForm(
        request.POST or None, request.FILES or None, user=request.user, initial=initial
    )
    error = ""
    if request.method == "POST" and form.is_valid():
        try:
            job = imports.import_job_create(
                upload=form.cleaned_data["file"],
                kind=form.cleaned_data["kind"],
                team=form.chosen_team(),
                by=request.user,
            )
        except DealError as problem:
            error = problem.message
        else:
            return redirect(_job_url(job["id"], admin))
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "imports/upload.html",
        _context(request, admin, form=form, error=error),
        status=status,
    )


def _own_job(request: HttpRequest, job_id: str) -> dict:
    job = imports.import_job_get(job_id)
    if job is None or job["by_id"] != request.user.pk:
        raise Http404("This import is unknown or has expired.")
    return job


@require_GET
@login_required
def import_job(request: HttpRequest, job_id: str) -> HttpResponse:
    job = _own_job(request, job_id)
    admin = request.GET.get("admin") == "1" and request.user.is_staff
    context = _context(
        request,
        admin,
        job=job,
        team=Team.objects.filter(pk=job["team_id"]).first(),
        kind_label=imports.KINDS[job["kind"]],
        job_url=_job_url(job["id"], admin),
    )
    if request.htmx:
        return render(request, "imports/_progress.html", context)
    return render(request, "imports/job.html", context)


@require_POST
@login_required
def import_start(request: HttpRequest, job_id: str) -> HttpResponse:
    _own_job(request, job_id)
    admin = request.POST.get("admin") == "1" and request.user.is_staff
    try:
        imports.import_job_start(job_id=job_id, by=request.user)
    except DealError as problem:
        return render(
            request,
            "imports/upload.html",
            _context(request, admin, form=ImportForm(user=request.user), error=problem.message),
            status=400,
        )
    return redirect(_job_url(job_id, admin))


@require_GET
@login_required
def import_errors_csv(request: HttpRequest, job_id: str) -> HttpResponse:
    """The rows an import refused, with the problem of each, to fix in a spreadsheet."""
    job = _own_job(request, job_id)
    rows = imports.import_error_report_rows(job)
    return csv_response(rows, filename=f"import-errors-{job_id[:8]}.csv", bom=True)


# --- export ----------------------------------------------------------------------------------

#: CSV column -> the field it reads (plain values, no model instances: 100,000 deals stream
#: in flat memory).
EXPORT_COLUMNS = [
    ("id", "pk"),
    ("title", "title"),
    ("account", "account__name"),
    ("owner", "owner__username"),
    ("state", "state"),
    ("amount", "amount"),
    ("currency", "currency"),
    ("expected_close_date", "expected_close_date"),
    ("next_step", "next_step"),
    ("next_step_due", "next_step_due"),
    ("term_months", "term_months"),
    ("billing", "billing"),
    ("loss_reason", "loss_reason"),
    ("last_activity_at", "last_activity_at"),
    ("created_at", "created_at"),
    ("closed_at", "closed_at"),
]


#: The export's date-time columns (written as ISO 8601, not `str()`).
_EXPORT_TIMES = {"last_activity_at", "created_at", "closed_at"}
#: Columns PostgreSQL turns into text for the export (numeric and date: the same text as
#: Python's `str()`).
_EXPORT_AS_TEXT = {"amount", "expected_close_date", "next_step_due"}
#: The columns that can hold text someone typed (checked for formulas); the others are
#: numbers, dates, times or fixed choice values.
EXPORT_TEXT_COLUMNS = [
    i
    for i, (_name, field) in enumerate(EXPORT_COLUMNS)
    if field in {"title", "account__name", "owner__username", "next_step"}
]


class _IsoUtc(Func):
    """A date-time as ISO 8601 text in UTC, written by PostgreSQL (always with microseconds:
    `2026-11-30T09:15:00.000000+00:00`): building 300,000 time-zone-aware datetimes in
    psycopg2 and calling `isoformat()` on each was ~40% of a 100,000-deal export."""

    template = (
        "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"
    )
    output_field = CharField()


def _export_rows(deals) -> Iterator[list]:
    """The header, then one row per deal: plain values read through a server-side cursor
    (no model instances: 100,000 deals stream in flat memory); times in ISO 8601."""
    yield [name for name, _ in EXPORT_COLUMNS]
    fields = [field for _, field in EXPORT_COLUMNS]
    if connections[deals.db].vendor == "postgresql":
        # PostgreSQL writes the times, amounts and dates as text (the same text Python
        # would write): no datetime, Decimal or date objects are built for 100,000 rows.
        text = {f"{f}_text": _IsoUtc(f) for f in fields if f in _EXPORT_TIMES}
        text |= {f"{f}_text": Cast(f, CharField()) for f in fields if f in _EXPORT_AS_TEXT}
        fields = [f"{f}_text" if f"{f}_text" in text else f for f in fields]
        rows = deals.annotate(**text).values_list(*fields).iterator(chunk_size=2000)
        yield from (list(row) for row in rows)
        return
    times = [i for i, field in enumerate(fields) if field in _EXPORT_TIMES]
    for row in deals.values_list(*fields).iterator(chunk_size=2000):
        row = list(row)
        for i in times:
            if row[i] is not None:
                row[i] = row[i].isoformat()
        yield row


@require_GET
@login_required
@reads_from_replica
def deal_list_csv(request: HttpRequest) -> StreamingHttpResponse:
    """The deal list the user sees (same filters and order), streamed as CSV."""
    deals = deals_filtered(request.user, request.GET)
    filename = f"deals-{timezone.localdate():%Y-%m-%d}.csv"
    return csv_streaming_response(
        _export_rows(deals), filename=filename, bom=True, text_columns=EXPORT_TEXT_COLUMNS
    )


urlpatterns = [
    path("deals/export.csv", deal_list_csv, name="deal_list_csv"),
    path("import/", import_upload, name="import"),
    path("import/<str:job_id>/", import_job, name="import_job"),
    path("import/<str:job_id>/start/", import_start, name="import_start"),
    path("import/<str:job_id>/errors.csv", import_errors_csv, name="import_errors_csv"),
]
