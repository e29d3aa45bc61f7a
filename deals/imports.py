"""CSV import of accounts, contacts and deals: check every row first, then write all or nothing.

A file is read as a stream (a text wrapper over the uploaded file, a byte budget enforced while
reading), never loaded whole. The same code checks rows for the preview and imports them: the
preview writes nothing; the import runs in one transaction through the deals services and rolls
back entirely if any row fails. Rows whose natural key already exists are skipped, so importing
the same file twice creates nothing the second time:

- accounts: the account name within the team (case-insensitive);
- contacts: the email within the team's accounts, or account + first and last name without one;
- deals: account + title within the team (case-insensitive).

Large imports run in a Celery task (`import_job_run`) that reports progress into a cache shared
with the web process; the import page polls it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, BinaryIO

from celery import shared_task
from django.conf import settings
from django.core.cache import caches
from django.core.files.storage import default_storage
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from . import services
from .models import (
    Account,
    BillingFrequency,
    Contact,
    Currency,
    Deal,
    Quota,
    QuotaChange,
    Team,
    User,
)
from .services import DealError

KINDS = {
    "accounts": "Accounts",
    "contacts": "Contacts",
    "deals": "Deals",
    "quotas": gettext_lazy("Quotas"),
}

#: Columns per kind: (required, optional). Headers are matched case-insensitively.
COLUMNS: dict[str, tuple[list[str], list[str]]] = {
    "accounts": (["name"], ["website", "industry", "owner"]),
    "contacts": (["account", "first_name", "last_name"], ["email", "phone", "job_title"]),
    "deals": (
        ["account", "title"],
        [
            "amount",
            "currency",
            "owner",
            "expected_close_date",
            "next_step",
            "next_step_due",
            "term_months",
            "billing",
        ],
    ),
    # period: a quarter (2026-Q1) or a month (2026-03); rep: a username in the team.
    "quotas": (["rep", "period", "currency", "amount"], ["reason"]),
}

ALLOWED_CONTENT_TYPES = {
    "text/csv",
    "application/csv",
    "text/plain",
    # What browsers on Windows send for .csv when a spreadsheet program is installed.
    "application/vnd.ms-excel",
}
#: Errors shown per file; the count covers all of them.
MAX_ERRORS_SHOWN = 200
PROGRESS_EVERY = 100


class ImportFileError(DealError):
    """The file as a whole cannot be imported (too big, not CSV text, missing columns)."""


@dataclass(frozen=True)
class RowError:
    line: int
    message: str
    values: dict[str, str] = field(default_factory=dict)


@dataclass
class ImportResult:
    """What a preview found, or what an import did."""

    kind: str
    total: int = 0
    new: int = 0
    updated: int = 0  # quotas whose amount the file changes
    existing: int = 0
    error_count: int = 0
    errors: list[RowError] = field(default_factory=list)
    sample: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    def add_error(self, line: int, message: str, values: dict[str, str] | None = None) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS_SHOWN:
            self.errors.append(RowError(line, message, values or {}))

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "total": self.total,
            "new": self.new,
            "updated": self.updated,
            "existing": self.existing,
            "error_count": self.error_count,
            "errors": [[e.line, e.message] for e in self.errors],
            # The rows behind the errors, for the downloadable error report.
            "error_values": [e.values for e in self.errors],
            "sample": self.sample,
        }


class ImportRejected(DealError):
    """At least one row is invalid: nothing was written."""

    def __init__(self, result: ImportResult):
        super().__init__(
            f"Nothing was imported: {result.error_count} row(s) have errors. "
            "Fix them and upload the file again."
        )
        self.result = result


# --- reading files ------------------------------------------------------------------------


class _ByteBudget(io.RawIOBase):
    """A binary stream that refuses to deliver more than `limit` bytes."""

    def __init__(self, raw: BinaryIO, limit: int):
        self.raw, self.limit, self.consumed = raw, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self.raw.read(min(len(buffer), 64 * 1024))
        if not chunk:
            return 0
        self.consumed += len(chunk)
        if self.consumed > self.limit:
            raise ImportFileError(
                gettext("The file is larger than %(limit)s. Split it into smaller files.")
                % {"limit": _megabytes(self.limit)}
            )
        buffer[: len(chunk)] = chunk
        return len(chunk)


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MB"


def check_upload(*, name: str, size: int | None, content_type: str) -> None:
    """Refuse an upload by its name, declared type and size, before reading any of it."""
    limit = settings.IMPORT_MAX_BYTES
    if not name.lower().endswith(".csv"):
        raise ImportFileError(gettext("Upload a .csv file (comma-separated values, UTF-8)."))
    if content_type.split(";")[0].strip().lower() not in ALLOWED_CONTENT_TYPES:
        raise ImportFileError(
            gettext("“%(content_type)s” is not a CSV file. Upload a .csv file.")
            % {"content_type": content_type}
        )
    if size is not None and size > limit:
        raise ImportFileError(
            gettext("The file is %(size)s MB; the limit is %(limit)s. Split it into smaller files.")
            % {"size": format(size / (1024 * 1024), ".1f"), "limit": _megabytes(limit)}
        )


def read_rows(raw: BinaryIO, kind: str) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) for each data row, streamed; file-level problems raise ImportFileError."""
    if kind not in COLUMNS:
        raise ImportFileError(
            gettext("Choose what the file contains: accounts, contacts, deals or quotas.")
        )
    budget = _ByteBudget(raw, settings.IMPORT_MAX_BYTES)
    text = io.TextIOWrapper(
        io.BufferedReader(budget), encoding="utf-8-sig", errors="strict", newline=""
    )
    reader = csv.reader(text)
    try:
        try:
            header = next(reader)
        except StopIteration:
            raise ImportFileError(gettext("The file is empty.")) from None
        names = [h.strip().lower().replace(" ", "_") for h in header]
        repeated = sorted({n for n in names if n and names.count(n) > 1}, key=names.index)
        if repeated:
            # Which of two "title" columns is meant? Guessing would import the wrong one.
            raise ImportFileError(
                gettext(
                    "The column %(repeated)s appears more than once in the first row. Keep "
                    "one column of each name and upload the file again."
                )
                % {"repeated": ", ".join(f"“{n}”" for n in repeated)}
            )
        required, optional = COLUMNS[kind]
        missing = [c for c in required if c not in names]
        if missing:
            raise ImportFileError(
                gettext(
                    "Missing column(s): %(missing)s. Expected: %(optional)s (the first row "
                    "names the columns)."
                )
                % {"missing": ", ".join(missing), "optional": ", ".join(required + optional)}
            )
        known = set(required + optional)
        max_rows = settings.IMPORT_MAX_ROWS
        count = 0
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            count += 1
            if count > max_rows:
                raise ImportFileError(
                    gettext(
                        "The file has more than %(max_rows)s rows. Split it into smaller files."
                    )
                    % {"max_rows": format(max_rows, ",")}
                )
            if "\x00" in "".join(row):
                raise ImportFileError(
                    gettext("Line %(line_num)s contains a NUL byte: not a text file.")
                    % {"line_num": reader.line_num}
                )
            values = {
                name: cell.strip() for name, cell in zip(names, row, strict=False) if name in known
            }
            yield reader.line_num, values
    except UnicodeDecodeError:
        raise ImportFileError(
            gettext("The file is not UTF-8 text. Save it as “CSV UTF-8” and upload it again.")
        ) from None
    except csv.Error as error:
        raise ImportFileError(
            gettext("Line %(line_num)s: not valid CSV (%(error)s).")
            % {"line_num": reader.line_num, "error": error}
        ) from None


# --- checking and writing rows -----------------------------------------------------------------


def _key(*parts: str) -> tuple[str, ...]:
    return tuple(p.strip().casefold() for p in parts)


class _Plan:
    """Natural keys and lookups for one team, kept current as rows are checked or written."""

    def __init__(self, *, team: Team, by: User, write: bool, kind: str = ""):
        self.team, self.by, self.write = team, by, write
        self.users = {
            u.username.casefold(): u for u in User.objects.filter(team=team, is_active=True)
        }
        self.seen: dict[tuple, int] = {}
        self.default_owner = self._default_owner()
        self.accounts: dict[tuple, Account | None] = {}
        self.contacts: set = set()
        self.deals: set = set()
        self.quotas: dict[tuple, Any] = {}
        if kind == "quotas":
            # Only the team's quotas are needed (not its accounts, contacts or deals).
            for q in Quota.objects.filter(team=team).select_related("rep"):
                key = (q.rep.username.casefold(), q.period_kind, q.period_start, q.currency)
                self.quotas[key] = q.amount
            return
        self.accounts = {_key(a.name): a for a in Account.objects.filter(team=team)}
        for c in Contact.objects.filter(account__team=team).select_related("account"):
            self.contacts.add(self._contact_key(c.account.name, c.email, c.first_name, c.last_name))
        self.deals = {
            _key(account, title)
            for account, title in Deal.objects.filter(team=team).values_list(
                "account__name", "title"
            )
        }

    def _default_owner(self) -> User | None:
        if self.by.team_id == self.team.pk:
            return self.by
        return (
            self.team.members.filter(role=User.Role.MANAGER, is_active=True).order_by("pk").first()
        )

    @staticmethod
    def _contact_key(account: str, email: str, first: str, last: str) -> tuple:
        if email:
            return ("email", email.strip().casefold())
        return ("name", *_key(account, first, last))

    def owner(self, username: str) -> User:
        if not username:
            if self.default_owner is None:
                raise DealError(gettext("Name an owner (a username in the team)."))
            return self.default_owner
        user = self.users.get(username.casefold())
        if user is None:
            raise DealError(
                gettext("No active user “%(username)s” in %(team)s.")
                % {"username": username, "team": self.team}
            )
        return user

    def once(self, key: tuple, line: int, what: str) -> None:
        if key in self.seen:
            raise DealError(
                gettext("Repeats line %(key)s (same %(what)s).")
                % {"key": self.seen[key], "what": what}
            )
        self.seen[key] = line

    def account(self, name: str, *, owner: User) -> Account | None:
        """The team's account by name; created (or planned) if it does not exist yet."""
        key = _key(name)
        if key in self.accounts:
            return self.accounts[key]
        account = (
            services.account_create(by=owner, team=self.team, name=name) if self.write else None
        )
        self.accounts[key] = account
        return account


def _text(row: dict, name: str, max_length: int) -> str:
    value = row.get(name, "")
    if len(value) > max_length:
        raise DealError(
            gettext("%(name)s is longer than %(max_length)s characters.")
            % {"name": name, "max_length": max_length}
        )
    return value


def _date(row: dict, name: str) -> dt.date | None:
    value = row.get(name, "")
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise DealError(
            gettext("%(name)s “%(value)s” is not a date (YYYY-MM-DD).")
            % {"name": name, "value": value}
        ) from None


def _amount(value: str) -> Decimal:
    if not value:
        return Decimal("0")
    try:
        amount = Decimal(value.replace(",", "").replace(" ", ""))
    except InvalidOperation:
        raise DealError(gettext("amount “%(value)s” is not a number.") % {"value": value}) from None
    if not amount.is_finite() or amount < 0 or amount >= Decimal("1e12"):
        raise DealError(
            gettext("amount “%(value)s” must be between 0 and 999,999,999,999.") % {"value": value}
        )
    return amount.quantize(Decimal("0.01"))


def _account_row(plan: _Plan, line: int, row: dict) -> str:
    name = _text(row, "name", 200)
    if not name:
        raise DealError(gettext("name is empty."))
    plan.once(_key(name), line, "account name")
    owner = plan.owner(row.get("owner", ""))
    fields = {"website": _text(row, "website", 200), "industry": _text(row, "industry", 100)}
    if _key(name) in plan.accounts:
        return "existing"
    if plan.write:
        plan.accounts[_key(name)] = services.account_create(
            by=owner, team=plan.team, name=name, **fields
        )
    else:
        plan.accounts[_key(name)] = None
    return "new"


def _contact_row(plan: _Plan, line: int, row: dict) -> str:
    account_name = _text(row, "account", 200)
    first, last = _text(row, "first_name", 100), _text(row, "last_name", 100)
    email = _text(row, "email", 254)
    if not account_name:
        raise DealError(gettext("account is empty."))
    if not (first or last):
        raise DealError(gettext("A contact needs a first or last name."))
    if email:
        try:
            validate_email(email)
        except Exception:
            raise DealError(
                gettext("email “%(email)s” is not an email address.") % {"email": email}
            ) from None
    key = plan._contact_key(account_name, email, first, last)
    plan.once(key, line, "email" if email else "account and name")
    fields = {"phone": _text(row, "phone", 50), "job_title": _text(row, "job_title", 120)}
    if key in plan.contacts:
        return "existing"
    if _key(account_name) not in plan.accounts:
        raise DealError(
            gettext("No account “%(account_name)s” in %(team)s; import accounts first.")
            % {"account_name": account_name, "team": plan.team}
        )
    if plan.write:
        services.contact_create(
            by=plan.by,
            account=plan.accounts[_key(account_name)],
            first_name=first,
            last_name=last,
            email=email,
            **fields,
        )
    plan.contacts.add(key)
    return "new"


def _deal_row(plan: _Plan, line: int, row: dict) -> str:
    account_name, title = _text(row, "account", 200), _text(row, "title", 200)
    if not account_name:
        raise DealError(gettext("account is empty."))
    if not title:
        raise DealError(gettext("title is empty."))
    key = _key(account_name, title)
    plan.once(key, line, "account and title")
    owner = plan.owner(row.get("owner", ""))
    currency = row.get("currency", "").upper()
    if currency and currency not in Currency.values:
        raise DealError(
            gettext("currency “%(currency)s” is not one of %(values)s.")
            % {"currency": currency, "values": ", ".join(Currency.values)}
        )
    billing = row.get("billing", "").lower()
    if billing and billing not in BillingFrequency.values:
        raise DealError(
            gettext("billing “%(billing)s” is not one of %(values)s.")
            % {"billing": billing, "values": ", ".join(BillingFrequency.values)}
        )
    term = row.get("term_months", "")
    if term and not (term.isdigit() and 1 <= int(term) <= 600):
        raise DealError(
            gettext("term_months “%(term)s” must be a whole number from 1 to 600.") % {"term": term}
        )
    fields: dict[str, Any] = {
        "amount": _amount(row.get("amount", "")),
        "currency": currency,
        "expected_close_date": _date(row, "expected_close_date"),
        "next_step": _text(row, "next_step", 200),
        "next_step_due": _date(row, "next_step_due"),
    }
    if term:
        fields["term_months"] = int(term)
    if billing:
        fields["billing"] = billing
    if key in plan.deals:
        return "existing"
    account = plan.account(account_name, owner=owner)
    if plan.write:
        services.deal_create(by=plan.by, owner=owner, account=account, title=title, **fields)
    plan.deals.add(key)
    return "new"


def _quota_row(plan: _Plan, line: int, row: dict) -> str:
    """A rep's quota for a month or quarter: new, changed (a history line), or unchanged."""
    username = row.get("rep", "")
    if not username:
        raise DealError(gettext("rep is empty: name the rep by username."))
    rep = plan.users.get(username.casefold())
    if rep is None:
        raise DealError(
            gettext("No active user “%(rep)s” in %(team)s.") % {"rep": username, "team": plan.team}
        )
    kind, start = services.quota_period_from_text(row.get("period", ""))
    currency = row.get("currency", "").upper()
    if currency not in Currency.values:
        raise DealError(
            gettext("currency “%(value)s” is not one of %(choices)s.")
            % {"value": row.get("currency", ""), "choices": ", ".join(Currency.values)}
        )
    if not row.get("amount", ""):
        raise DealError(gettext("amount is empty."))
    amount = services.quota_amount_parse(row["amount"])
    reason = _text(row, "reason", 500)
    key = (rep.username.casefold(), kind, start, currency)
    plan.once(key, line, gettext("rep, period and currency"))
    before = plan.quotas.get(key)
    if before is not None and before == amount:
        return "existing"
    if plan.write:
        services.quota_set(
            by=plan.by,
            rep=rep,
            period_kind=kind,
            period_start=start,
            currency=currency,
            amount=amount,
            source=QuotaChange.Source.IMPORT,
            reason=reason,
        )
    plan.quotas[key] = amount
    return "new" if before is None else "updated"


_ROW_HANDLERS: dict[str, Callable[[_Plan, int, dict], str]] = {
    "accounts": _account_row,
    "contacts": _contact_row,
    "deals": _deal_row,
    "quotas": _quota_row,
}


def _process(
    raw: BinaryIO,
    *,
    kind: str,
    team: Team,
    by: User,
    write: bool,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    result = ImportResult(kind=kind)
    plan = _Plan(team=team, by=by, write=write, kind=kind)
    handler = _ROW_HANDLERS[kind]
    for line, row in read_rows(raw, kind):
        result.total += 1
        try:
            # Once a row has failed, later rows are still checked but no longer written.
            plan.write = write and result.ok
            action = handler(plan, line, row)
        except DealError as error:
            result.add_error(line, error.message, row)
            continue
        if action == "new":
            result.new += 1
        elif action == "updated":
            result.updated += 1
        else:
            result.existing += 1
        if len(result.sample) < 10:
            result.sample.append({"line": line, "action": action, **row})
        if progress and result.total % PROGRESS_EVERY == 0:
            progress(result.total)
    if result.total == 0:
        raise ImportFileError(gettext("The file has a header row but no data rows."))
    return result


def _require_importer(by: User, team: Team) -> None:
    if not (by.is_superuser or (by.is_manager and by.team_id == team.pk)):
        raise services.NotPermitted(gettext("Only the team's manager or an admin can import."))


def import_preview(*, raw: BinaryIO, kind: str, team: Team, by: User) -> ImportResult:
    """Check every row and say what importing would do. Writes nothing."""
    _require_importer(by, team)
    return _process(raw, kind=kind, team=team, by=by, write=False)


def import_run(
    *,
    raw: BinaryIO,
    kind: str,
    team: Team,
    by: User,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import the file in one transaction; any bad row raises ImportRejected and writes nothing."""
    _require_importer(by, team)
    with transaction.atomic():
        result = _process(raw, kind=kind, team=team, by=by, write=True, progress=progress)
        if not result.ok:
            raise ImportRejected(result)
    return result


def import_error_report_rows(job: dict[str, Any]) -> Iterator[list[str]]:
    """The rows of a job's error report: line, problem and the row's own values."""
    outcome = job.get("result") or job["preview"]
    required, optional = COLUMNS[job["kind"]]
    columns = required + optional
    yield ["line", "problem", *columns]
    values = outcome.get("error_values") or [{} for _ in outcome["errors"]]
    for (line, message), row in zip(outcome["errors"], values, strict=False):
        yield [line, message, *(row.get(name, "") for name in columns)]


# --- import jobs: the uploaded file, its preview and the progress of the run -----------------

JOB_TTL_SECONDS = 24 * 3600


def _jobs():
    return caches[settings.IMPORT_PROGRESS_CACHE]


def import_job_get(job_id: str) -> dict[str, Any] | None:
    try:
        uuid.UUID(job_id)
    except ValueError:
        return None
    return _jobs().get(f"import-job:{job_id}")


def _job_save(job: dict[str, Any]) -> None:
    job["updated_at"] = timezone.now().isoformat()
    _jobs().set(f"import-job:{job['id']}", job, JOB_TTL_SECONDS)


def import_job_create(*, upload, kind: str, team: Team, by: User) -> dict[str, Any]:
    """Check the upload, store the file and preview it. Raises ImportFileError for bad files."""
    _require_importer(by, team)
    check_upload(name=upload.name, size=upload.size, content_type=upload.content_type or "")
    if kind not in KINDS:
        raise ImportFileError(
            gettext("Choose what the file contains: accounts, contacts, deals or quotas.")
        )
    job_id = str(uuid.uuid4())
    path = default_storage.save(f"imports/{job_id}.csv", upload)
    try:
        with default_storage.open(path, "rb") as raw:
            result = import_preview(raw=raw, kind=kind, team=team, by=by)
    except DealError:
        default_storage.delete(path)
        raise
    job = {
        "id": job_id,
        "kind": kind,
        "team_id": team.pk,
        "by_id": by.pk,
        "path": path,
        "filename": upload.name[:200],
        "status": "previewed",
        "done": 0,
        "preview": result.as_dict(),
        "result": None,
        "message": "",
    }
    _job_save(job)
    return job


def import_job_start(*, job_id: str, by: User) -> dict[str, Any]:
    """Queue the import of a previewed, error-free file."""
    job = import_job_get(job_id)
    if job is None or job["by_id"] != by.pk:
        raise DealError(gettext("This import is unknown or has expired. Upload the file again."))
    if job["status"] != "previewed":
        return job
    if job["preview"]["error_count"]:
        raise DealError(gettext("Fix the rows with errors and upload the file again."))
    job["status"] = "queued"
    _job_save(job)
    transaction.on_commit(lambda: import_job_run.delay(job_id))
    return job


@shared_task(name="deals.import_job_run", acks_late=False)
def import_job_run(job_id: str) -> None:
    """Run a queued import, reporting progress; the file is deleted afterwards."""
    job = import_job_get(job_id)
    if job is None or job["status"] != "queued":
        return
    job["status"] = "running"
    _job_save(job)

    def progress(done: int) -> None:
        job["done"] = done
        _job_save(job)

    try:
        team = Team.objects.get(pk=job["team_id"])
        by = User.objects.get(pk=job["by_id"])
        with default_storage.open(job["path"], "rb") as raw:
            result = import_run(raw=raw, kind=job["kind"], team=team, by=by, progress=progress)
    except ImportRejected as rejected:
        job.update(status="failed", message=rejected.message, result=rejected.result.as_dict())
    except DealError as error:
        job.update(status="failed", message=error.message)
    except Exception:
        job.update(
            status="failed", message=gettext("The import failed unexpectedly; nothing was written.")
        )
        _job_save(job)
        raise
    else:
        job.update(status="done", done=result.total, result=result.as_dict())
    finally:
        default_storage.delete(job["path"])
    _job_save(job)
