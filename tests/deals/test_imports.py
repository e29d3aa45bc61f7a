"""CSV import (preview, all-or-nothing, natural keys, size and type checks) and CSV export."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from closing_crm.celery import app as celery_app
from deals import imports, services
from deals.models import Account, Contact, Deal, DealEvent

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def eager_celery():
    """Run the import task in-process, as a worker would."""
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


def csv_bytes(header: list[str], rows: list[list]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def upload(content: bytes, name: str = "deals.csv", content_type: str = "text/csv"):
    return SimpleUploadedFile(name, content, content_type=content_type)


DEAL_HEADER = ["account", "title", "amount", "currency", "owner", "expected_close_date"]


def test_bad_rows_write_nothing_and_each_is_reported(manager, rep):
    """Every bad row is named with its line and problem; importing the file writes nothing."""
    content = csv_bytes(
        DEAL_HEADER,
        [
            ["Acme", "Rollout", "1000", "EUR", "rita", "2026-12-01"],
            ["Acme", "", "1000", "EUR", "rita", ""],
            ["Globex", "Pilot", "lots", "EUR", "", ""],
            ["Globex", "Renewal", "500", "XYZ", "", ""],
            ["Initech", "Upgrade", "10", "", "nobody", "2026-02-30"],
            ["Acme", "Rollout", "1000", "EUR", "rita", ""],
        ],
    )
    preview = imports.import_preview(
        raw=io.BytesIO(content), kind="deals", team=manager.team, by=manager
    )
    assert not preview.ok
    assert [(e.line, e.message) for e in preview.errors] == [
        (3, "title is empty."),
        (4, "amount “lots” is not a number."),
        (5, "currency “XYZ” is not one of EUR, USD, GBP, CHF."),
        (6, "No active user “nobody” in Team North."),
        (7, "Repeats line 2 (same account and title)."),
    ]
    with pytest.raises(imports.ImportRejected) as rejected:
        imports.import_run(raw=io.BytesIO(content), kind="deals", team=manager.team, by=manager)
    assert rejected.value.result.error_count == 5
    assert "Nothing was imported" in rejected.value.message
    assert not Deal.objects.exists()
    assert not Account.objects.exists()
    assert not DealEvent.objects.exists()


def test_a_good_file_imports_exactly_once(manager, rep):
    """Deals go in through the services (audit event each); the same file again adds nothing."""
    content = csv_bytes(
        DEAL_HEADER,
        [
            ["Acme", "Rollout", "1,250.50", "", "rita", "2026-12-01"],
            ["Acme", "Pilot", "300", "USD", "", ""],
            ["Globex", "Renewal", "", "", "mona", ""],
        ],
    )
    first = imports.import_run(raw=io.BytesIO(content), kind="deals", team=manager.team, by=manager)
    assert (first.total, first.new, first.existing) == (3, 3, 0)
    rollout = Deal.objects.get(title="Rollout")
    assert rollout.owner == rep and rollout.amount == Decimal("1250.50")
    assert rollout.currency == "EUR" and str(rollout.expected_close_date) == "2026-12-01"
    assert Deal.objects.get(title="Pilot").owner == manager  # no owner: the importer
    assert sorted(Account.objects.values_list("name", flat=True)) == ["Acme", "Globex"]
    assert DealEvent.objects.filter(kind="created", actor=manager).count() == 3

    again = imports.import_run(raw=io.BytesIO(content), kind="deals", team=manager.team, by=manager)
    assert (again.new, again.existing) == (0, 3)
    assert Deal.objects.count() == 3 and Account.objects.count() == 2


def test_accounts_and_contacts_use_their_natural_keys(manager):
    """Accounts match by name (any case), contacts by email or by account and name."""
    accounts = csv_bytes(["name", "website"], [["Acme", "acme.example"], ["Globex", ""]])
    result = imports.import_run(
        raw=io.BytesIO(accounts), kind="accounts", team=manager.team, by=manager
    )
    assert result.new == 2
    accounts_again = csv_bytes(["Name"], [["ACME"], ["Initech"]])
    result = imports.import_run(
        raw=io.BytesIO(accounts_again), kind="accounts", team=manager.team, by=manager
    )
    assert (result.new, result.existing) == (1, 1)

    contacts = csv_bytes(
        ["account", "first_name", "last_name", "email"],
        [
            ["Acme", "Ann", "Buyer", "ann@acme.example"],
            ["Acme", "Bob", "Signer", ""],
            ["Globex", "Cy", "Champion", "cy@globex.example"],
        ],
    )
    for expected_new in (3, 0):
        result = imports.import_run(
            raw=io.BytesIO(contacts), kind="contacts", team=manager.team, by=manager
        )
        assert result.new == expected_new
    assert Contact.objects.count() == 3

    unknown = csv_bytes(["account", "first_name", "last_name", "email"], [["Nope", "A", "B", ""]])
    preview = imports.import_preview(
        raw=io.BytesIO(unknown), kind="contacts", team=manager.team, by=manager
    )
    assert preview.errors[0].message == "No account “Nope” in Team North; import accounts first."


def test_whole_file_problems_are_clear(manager):
    """Missing columns, a non-UTF-8 file and a header without rows each get one clear message."""
    cases = [
        (csv_bytes(["account"], [["Acme"]]), "Missing column(s): title."),
        ("account,title\nMünchen,Deal\n".encode("latin-1"), "not UTF-8 text"),
        (b"account,title\n", "no data rows"),
        (b"", "The file is empty."),
    ]
    for content, message in cases:
        with pytest.raises(imports.ImportFileError) as error:
            imports.import_preview(
                raw=io.BytesIO(content), kind="deals", team=manager.team, by=manager
            )
        assert message in error.value.message


class CountingStream(io.RawIOBase):
    """A 10 MB CSV produced on the fly, counting how many bytes the reader pulls."""

    def __init__(self, size: int):
        self.size, self.served = size, 0
        self.header = b"account,title,amount\n"

    def readable(self):
        return True

    def readinto(self, buffer):
        if self.served >= self.size:
            return 0
        if self.served == 0:
            chunk = self.header
        else:
            line = f"Account {self.served},Deal {self.served},100\n".encode()
            chunk = (line * (len(buffer) // len(line) + 1))[: len(buffer)]
        chunk = chunk[: min(len(buffer), self.size - self.served)]
        buffer[: len(chunk)] = chunk
        self.served += len(chunk)
        return len(chunk)


def test_a_10_mb_stream_is_cut_off_at_the_limit_not_read_whole(manager, settings):
    """Reading stops with a clear error once the byte limit is passed: 10 MB are never read."""
    settings.IMPORT_MAX_BYTES = 1024 * 1024
    settings.IMPORT_MAX_ROWS = 10**9
    stream = CountingStream(10 * 1024 * 1024)
    with pytest.raises(imports.ImportFileError) as error:
        imports.import_preview(raw=stream, kind="deals", team=manager.team, by=manager)
    assert "larger than 1 MB" in error.value.message
    assert stream.served <= settings.IMPORT_MAX_BYTES + 128 * 1024
    assert not Deal.objects.exists()


def test_a_10_mb_upload_is_refused_before_reading(client, manager, settings, tmp_path):
    """The upload page refuses a 10 MB file by its size with a clear error and stores nothing."""
    client.force_login(manager)
    big = b"account,title\n" + b"Acme,Deal\n" * (1024 * 1024)
    assert len(big) > 10 * 1024 * 1024
    response = client.post(reverse("deals:import"), {"kind": "deals", "file": upload(big)})
    assert response.status_code == 400
    assert "the limit is 5 MB" in response.content.decode()
    assert not (tmp_path / "media" / "imports").exists()


def test_only_csv_files_are_accepted(client, manager):
    """A file that is not .csv text/csv is refused by name and type."""
    client.force_login(manager)
    for name, content_type, message in [
        ("deals.xlsx", "text/csv", "Upload a .csv file"),
        ("deals.csv", "image/png", "is not a CSV file"),
    ]:
        response = client.post(
            reverse("deals:import"),
            {"kind": "deals", "file": upload(b"account,title\nA,B\n", name, content_type)},
        )
        assert response.status_code == 400
        assert message in response.content.decode()


def test_a_repeated_column_is_refused_with_its_name(client, manager):
    """`account,title,title,amount` is refused naming “title” (no silent pick of one of
    the two), also when the repeat differs in case or spacing; nothing is written."""
    from deals.models import Deal

    for header in ("account,title,title,amount", "account,Title,title ,amount"):
        content = f"{header}\nAcme,First,Second,100\n".encode()
        with pytest.raises(imports.ImportFileError) as error:
            imports.import_preview(
                raw=io.BytesIO(content), kind="deals", team=manager.team, by=manager
            )
        assert "“title” appears more than once" in error.value.message
    client.force_login(manager)
    response = client.post(
        reverse("deals:import"),
        {"kind": "deals", "file": upload(b"account,title,title,amount\nAcme,A,B,1\n")},
    )
    assert response.status_code == 400
    assert "“title” appears more than once" in response.content.decode()
    assert not Deal.objects.exists()


def test_the_error_report_lists_each_refused_row_with_its_values(client, manager):
    """The refused rows download as CSV: line, problem and the row as it was in the file."""
    client.force_login(manager)
    content = csv_bytes(DEAL_HEADER, [["Acme", "Fine", "1", "", "", ""], ["Acme", "", "2"]])
    response = client.post(reverse("deals:import"), {"kind": "deals", "file": upload(content)})
    job_url = response.url
    job_id = job_url.rstrip("/").split("/")[-1]
    report = client.get(reverse("deals:import_errors_csv", args=[job_id]))
    assert report.status_code == 200
    assert report["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(report.content.decode("utf-8-sig"))))
    assert rows[0][:4] == ["line", "problem", "account", "title"]
    assert rows[1][:4] == ["3", "title is empty.", "Acme", ""]
    assert len(rows) == 2
    assert "Download the errors as CSV" in client.get(job_url).content.decode()


def test_reps_cannot_import(client, rep):
    """Importing is for managers and admins."""
    client.force_login(rep)
    assert client.get(reverse("deals:import")).status_code == 403


def test_preview_page_lists_bad_rows_and_offers_no_import(client, manager):
    """The preview shows each bad line and no import button; nothing is written."""
    client.force_login(manager)
    content = csv_bytes(
        DEAL_HEADER, [["Acme", "Good", "1", "", "", ""], ["Acme", "", "", "", "", ""]]
    )
    response = client.post(reverse("deals:import"), {"kind": "deals", "file": upload(content)})
    assert response.status_code == 302
    page = client.get(response["Location"])
    html = page.content.decode()
    assert "1 row with errors" in html and "title is empty." in html
    assert "import_start" not in html and "/start/" not in html
    assert not Deal.objects.exists()


def test_5000_rows_give_exactly_5000_deals(
    client, manager, rep, eager_celery, django_capture_on_commit_callbacks
):
    """Upload → preview → import with progress: a 5,000-row file gives exactly 5,000 deals,
    and running the same job or file again adds none."""
    rows = [
        [f"Account {n % 250}", f"Deal {n}", str(100 + n), "", "rita" if n % 2 else "", ""]
        for n in range(5000)
    ]
    content = csv_bytes(DEAL_HEADER, rows)
    client.force_login(manager)
    response = client.post(reverse("deals:import"), {"kind": "deals", "file": upload(content)})
    assert response.status_code == 302
    job_url = response["Location"]
    preview = client.get(job_url).content.decode()
    assert "5000</strong> rows read" in preview and "Import 5000 new deals" in preview
    job_id = job_url.rstrip("/").split("/")[-1]

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("deals:import_start", args=[job_id]))
    assert response.status_code == 302
    assert Deal.objects.count() == 5000
    assert Account.objects.count() == 250
    job = imports.import_job_get(job_id)
    assert job["status"] == "done" and job["done"] == 5000
    progress = client.get(job_url, HTTP_HX_REQUEST="true").content.decode()
    assert "5000 new deals imported" in progress and "hx-trigger" not in progress

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("deals:import_start", args=[job_id]))
    response = client.post(reverse("deals:import"), {"kind": "deals", "file": upload(content)})
    assert "5000</strong> already there" in client.get(response["Location"]).content.decode()
    assert Deal.objects.count() == 5000


def test_running_import_page_polls_for_progress(client, manager):
    """While the worker runs, the status block re-fetches itself every second with htmx."""
    client.force_login(manager)
    content = csv_bytes(DEAL_HEADER, [["Acme", "Deal", "1", "", "", ""]])
    response = client.post(reverse("deals:import"), {"kind": "deals", "file": upload(content)})
    job_id = response["Location"].rstrip("/").split("/")[-1]
    imports.import_job_start(job_id=job_id, by=manager)  # queued; no worker in this test
    html = client.get(response["Location"], HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 1s"' in html and "<progress" in html


def test_someone_elses_import_job_is_404(client, manager, other_manager):
    """Import jobs are private to who uploaded them."""
    client.force_login(manager)
    content = csv_bytes(DEAL_HEADER, [["Acme", "Deal", "1", "", "", ""]])
    location = client.post(reverse("deals:import"), {"kind": "deals", "file": upload(content)})[
        "Location"
    ]
    client.force_login(other_manager)
    assert client.get(location).status_code == 404


def test_admin_imports_for_a_chosen_team(
    client, admin_user, team, manager, eager_celery, django_capture_on_commit_callbacks
):
    """The admin has the same flow inside the Django admin, choosing the team; rows without
    an owner go to the team's manager."""
    client.force_login(admin_user)
    url = reverse("admin:deals_deal_import")
    page = client.get(url)
    assert page.status_code == 200 and "Import from CSV" in page.content.decode()
    assert url in client.get(reverse("admin:deals_deal_changelist")).content.decode()
    content = csv_bytes(DEAL_HEADER, [["Acme", "Deal", "1", "", "", ""]])
    response = client.post(url, {"kind": "deals", "team": team.pk, "file": upload(content)})
    assert response.status_code == 302 and response["Location"].endswith("?admin=1")
    job_id = response["Location"].split("?")[0].rstrip("/").split("/")[-1]
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("deals:import_start", args=[job_id]), {"admin": "1"})
    deal = Deal.objects.get()
    assert deal.team == team and deal.owner.username == "mona"


# --- export -------------------------------------------------------------------------------


def test_export_streams_the_visible_filtered_deals(client, rep, other_rep, account, make_deal):
    """The CSV holds exactly the deals the list shows for the same filters, streamed."""
    make_deal(title="Open one")
    lost = make_deal(title='=HYPERLINK("http://evil")')
    services.deal_transition(deal=lost, transition="mark_lost", by=rep, loss_reason="price")
    foreign = services.account_create(by=other_rep, team=other_rep.team, name="Foreign")
    services.deal_create(by=other_rep, account=foreign, title="Not yours")
    client.force_login(rep)

    response = client.get(reverse("deals:deal_list_csv"))
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(
        csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig")))
    )
    assert sorted(r["title"] for r in rows) == ['\'=HYPERLINK("http://evil")', "Open one"]

    response = client.get(reverse("deals:deal_list_csv"), {"state": "open"})
    rows = list(
        csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig")))
    )
    assert [r["title"] for r in rows] == ["Open one"]
    assert rows[0]["account"] == "Acme GmbH" and rows[0]["owner"] == "rita"
