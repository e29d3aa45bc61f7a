"""Project-level checks: demo seed, the generated graph in the README, compose, make run."""

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command

from deals.models import Deal, DealEvent, DealState, User
from deals.selectors import state_graph_mermaid

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo_mode(settings):
    """A demo installation: seed_demo is allowed."""
    settings.DEMO_MODE = True


@pytest.mark.django_db
def test_demo_seed_is_idempotent_and_covers_every_state(demo_mode):
    call_command("seed_demo")
    counts = (User.objects.count(), Deal.objects.count(), DealEvent.objects.count())
    call_command("seed_demo")
    assert (User.objects.count(), Deal.objects.count(), DealEvent.objects.count()) == counts
    assert counts[1] >= 40
    assert set(Deal.objects.values_list("state", flat=True)) == set(DealState.values)
    for username in ["admin", "manager1", "manager2", "rep1", "rep2", "rep3", "rep4"]:
        assert User.objects.get(username=username).check_password("demo")
    assert User.objects.get(username="manager1").team != User.objects.get(username="manager2").team
    # Replayed history is in the past, but what reps plan ahead is relative to today.
    from django.utils import timezone

    today = timezone.localdate()
    open_deals = Deal.objects.open()
    assert not open_deals.filter(expected_close_date__lt=today).exists()
    assert not open_deals.filter(next_step_due__lt=today - timezone.timedelta(days=7)).exists()
    # Quota pages, dashboard attainment and My day's "My quota" have figures to show.
    from deals.models import Quota

    for username in ["rep1", "rep2", "rep3", "rep4"]:
        kinds = Quota.objects.filter(rep__username=username).values_list("period_kind", flat=True)
        assert sorted(kinds) == ["month", "quarter"]


@pytest.mark.django_db
def test_the_demo_seed_passes_the_close_consistency_check(demo_mode, capsys):
    """Every seeded deal agrees with its contracts: `check_close_consistency` exits 0."""
    call_command("seed_demo")
    call_command("check_close_consistency")
    assert "Deals and contracts agree." in capsys.readouterr().out


@pytest.mark.django_db
def test_the_demo_has_two_buyer_signers_and_a_countersigning_manager_ready(demo_mode):
    """The demo's Nordlicht deal: Greta signs first, then Jonas, then Maria countersigns."""
    from contracts.models import ContractVersion
    from contracts.selectors import signing_link_for

    call_command("seed_demo")
    version = ContractVersion.objects.get(deal__title__startswith="Nordlicht")
    assert version.is_out and version.provider == "builtin"
    signers = list(version.signers.order_by("routing_order"))
    assert [(s.name, s.role, s.status) for s in signers] == [
        ("Greta Lindqvist", "buyer", "due"),
        ("Jonas Weber", "buyer", "pending"),
        ("Maria Jensen", "countersigner", "pending"),
    ]
    assert signing_link_for(version=version, email="greta.lindqvist@nordlicht.example")
    # Won demo deals were signed by all their signers and sealed.
    won = ContractVersion.objects.filter(status="completed", signed_late=False)
    assert won.exists() and not won.filter(sealed_at__isnull=True).exists()


@pytest.mark.django_db
def test_demo_seed_leaves_no_backlog_of_follow_ups(demo_mode):
    """Replayed history must not flood buyers: nothing is due the moment the demo starts."""
    from django.utils import timezone

    from followups.models import Reminder

    call_command("seed_demo")
    scheduled = Reminder.objects.filter(status=Reminder.Status.SCHEDULED)
    assert scheduled.exists()
    assert not scheduled.filter(due_at__lte=timezone.now()).exists()
    assert Reminder.objects.filter(status=Reminder.Status.SKIPPED).exists()


@pytest.mark.django_db
def test_demo_seed_refuses_in_production(settings):
    """With DEBUG off and DEMO_MODE unset, seed_demo creates nothing and says why."""
    from django.core.management.base import CommandError

    settings.DEBUG, settings.DEMO_MODE = False, False
    with pytest.raises(CommandError) as refused:
        call_command("seed_demo")
    assert "DEBUG and DEMO_MODE are off" in str(refused.value)
    assert "--i-know-this-is-not-production" in str(refused.value)
    assert not User.objects.exists() and not Deal.objects.exists()


@pytest.mark.django_db
def test_demo_seed_runs_with_the_explicit_flag(settings):
    """`--i-know-this-is-not-production` seeds a staging copy with DEBUG and DEMO_MODE off."""
    settings.DEBUG, settings.DEMO_MODE = False, False
    call_command("seed_demo", "--i-know-this-is-not-production")
    assert User.objects.get(username="rep1").check_password("demo")
    assert Deal.objects.count() >= 40


@pytest.mark.django_db
@pytest.mark.parametrize("username", ["alice", "admin"])
def test_demo_seed_never_adds_demo_logins_next_to_real_users(demo_mode, username):
    """A database with a user of its own (any name, or `admin` with a real password) gets
    no demo logins, even in demo mode and with the flag."""
    User.objects.create_user(username=username, password="a real secret 123")
    from django.core.management.base import CommandError

    for args in ([], ["--i-know-this-is-not-production"]):
        with pytest.raises(CommandError) as refused:
            call_command("seed_demo", *args)
        assert f"1 user(s) that are not demo logins (“{username}”)" in str(refused.value)
    assert list(User.objects.values_list("username", flat=True)) == [username]
    assert not Deal.objects.exists()


def test_seed_demo_refusal_is_a_clear_cli_message(tmp_path):
    """Run as a command in a production environment: exit status 1, one plain line, no
    traceback."""
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "DEMO_MODE")}
    env.pop("PYTEST_CURRENT_TEST", None)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env.update(SECRET_KEY="x" * 50, DATABASE_URL=f"sqlite:///{tmp_path / 'prod.sqlite3'}")
    result = subprocess.run(
        [sys.executable, "manage.py", "seed_demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "CommandError: Refusing to seed demo data" in result.stderr
    assert "Traceback" not in result.stderr


def test_readme_embeds_the_generated_state_diagram():
    """The README's diagram is the model's graph: regenerate with `make graph` if this fails."""
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"```mermaid\n(.*?)\n```", readme, re.S)
    assert match, "README has no mermaid block"
    assert match.group(1).strip() == state_graph_mermaid().strip()


APP_SERVICES = ("migrate", "web", "worker", "beat")


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_docker_compose_defines_the_production_stack():
    services = _compose()["services"]
    assert {"postgres", "redis", *APP_SERVICES} <= set(services)
    assert services["web"]["command"].startswith("gunicorn closing_crm.wsgi")
    assert services["worker"]["command"].startswith("celery -A closing_crm worker")
    assert services["beat"]["command"].startswith("celery -A closing_crm beat")
    for name in APP_SERVICES:
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://")
        assert env["REDIS_URL"].startswith("redis://redis")
        assert services[name]["image"] == services["web"]["image"]
    assert (ROOT / services["web"].get("build", ".") / "Dockerfile").exists()


def test_docker_compose_env_file_reaches_every_app_service():
    """.env (documented by .env.example) reaches web, worker, beat and migrate; the file
    sets only where PostgreSQL and Redis are, so EMAIL_*, DOCUSIGN_*, CSRF_TRUSTED_ORIGINS…
    come from .env unchanged."""
    services = _compose()["services"]
    example = (ROOT / ".env.example").read_text()
    for name in APP_SERVICES:
        env_file = services[name]["env_file"]
        files = [env_file] if isinstance(env_file, str) else env_file
        paths = [f if isinstance(f, str) else f["path"] for f in files]
        assert ".env" in paths, name
        assert set(services[name]["environment"]) <= {"DATABASE_URL", "REDIS_URL"}, name
    for variable in ("EMAIL_HOST", "DEFAULT_FROM_EMAIL", "CSRF_TRUSTED_ORIGINS", "SECRET_KEY"):
        assert re.search(rf"^{variable}=", example, re.M), variable
    assert re.search(r"^DOCUSIGN_INTEGRATION_KEY=", example, re.M)


def test_docker_compose_migrates_once_before_web_worker_and_beat():
    """A one-shot migrate service; the others start only after it exited successfully, so
    the worker and beat never race the migrations."""
    services = _compose()["services"]
    migrate = services["migrate"]
    assert "manage.py migrate" in migrate["command"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("web", "worker", "beat"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
        assert "migrate" not in services[name]["command"], name


def test_docker_compose_every_service_has_a_health_check():
    services = _compose()["services"]
    for name, service in services.items():
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), name
    assert "inspect ping" in " ".join(services["worker"]["healthcheck"]["test"])
    beat_check = services["beat"]["healthcheck"]["test"]
    assert (ROOT / beat_check[2]).exists()


def test_beat_health_check_tells_a_fresh_schedule_from_a_stale_one(tmp_path):
    schedule = tmp_path / "celerybeat-schedule"
    script = ROOT / "scripts" / "beat_healthcheck.py"

    def check() -> int:
        return subprocess.run([sys.executable, script, schedule], capture_output=True).returncode

    assert check() == 1  # no file yet
    (tmp_path / "celerybeat-schedule.db").write_bytes(b"x")
    assert check() == 0
    old = time.time() - 3600
    os.utime(tmp_path / "celerybeat-schedule.db", (old, old))
    assert check() == 1


def test_beat_creates_its_schedule_folder(tmp_path):
    """A fresh checkout has no var/: beat's scheduler makes the folder instead of exiting."""
    from closing_crm.celery import Scheduler
    from closing_crm.celery import app as celery_app

    assert celery_app.conf.beat_scheduler == "closing_crm.celery:Scheduler"
    schedule = tmp_path / "fresh" / "var" / "celerybeat-schedule"
    scheduler = Scheduler(app=celery_app, schedule_filename=str(schedule), lazy=False)
    try:
        assert schedule.parent.is_dir()
        assert list(schedule.parent.glob("celerybeat-schedule*"))
    finally:
        scheduler.close()


def test_readme_says_how_to_start_compose_and_create_the_first_admin():
    readme = (ROOT / "README.md").read_text()
    assert "cp .env.example .env" in readme
    assert "createsuperuser" in readme
    assert "docs/docusign.md" in readme


def test_docusign_guide_covers_setup_and_every_docusign_variable():
    guide = (ROOT / "docs" / "docusign.md").read_text()
    settings_text = (ROOT / "closing_crm" / "settings.py").read_text()
    for variable in set(re.findall(r'"(DOCUSIGN_[A-Z_]+)"', settings_text)):
        assert f"`{variable}`" in guide, variable
    for words in ("integration key", "RSA", "consent", "Connect", "HMAC", "go-live"):
        assert words.lower() in guide.lower(), words
    assert "/contracts/webhooks/docusign/" in guide
    assert "docusign_check" in guide


def test_product_code_points_at_no_file_outside_the_repository():
    """Readers of the code are sent to files in the project, never elsewhere on a machine."""
    offenders = []
    for path in ROOT.glob("**/*"):
        if any(part in {".venv", "node_modules", ".git", "var", "tests"} for part in path.parts):
            continue
        if path.suffix not in {".py", ".html", ".md", ".txt", ".yml", ".toml"}:
            continue
        text = path.read_text(errors="replace")
        if re.search(r"shared/[A-Z]+\.md|/work/", text):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_the_brand_is_spelled_docusign():
    """User-facing text says "DocuSign", never "Docusign"."""
    offenders = []
    for folder in ("templates", "contracts", "deals", "followups", "api", "closing_crm", "docs"):
        for path in (ROOT / folder).glob("**/*"):
            if path.suffix in {".py", ".html", ".md", ".txt"} and "Docusign" in path.read_text():
                offenders.append(str(path.relative_to(ROOT)))
    if "Docusign" in (ROOT / "README.md").read_text():
        offenders.append("README.md")
    assert offenders == []
    from contracts.services import provider_name

    assert provider_name("docusign") == "DocuSign"


def test_make_run_serves_the_login_page(tmp_path):
    """Boot the embedded stack like `make run` does and fetch the login page."""
    port = 18000 + os.getpid() % 1000
    env = {
        **os.environ,
        "PORT": str(port),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "CLOSING_VAR_DIR": str(tmp_path / "var"),
        "INBOUND_SMTP_PORT": str(_free_port()),
    }
    env.pop("REDIS_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "scripts/run_embedded.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    body = ""
    lines: list[bytes] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, b"")))
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/accounts/login/", timeout=2
                ) as r:
                    body = r.read().decode()
                    break
            except OSError:
                time.sleep(1)
        # The banner comes once the worker and beat are up too.
        while time.monotonic() < deadline and proc.poll() is None:
            if any(b"Closing CRM is running" in line for line in list(lines)):
                break
            time.sleep(0.5)
        # The SMTP receiver starts beside the web server: wait until it accepts connections.
        smtp_port = int(env["INBOUND_SMTP_PORT"])
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", smtp_port), timeout=2).close()
                break
            except OSError:
                time.sleep(1)
        time.sleep(1)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        reader.join(timeout=10)
        out = b"".join(lines).decode(errors="replace")
    assert "Log in" in body, out[-3000:]
    assert "manager1" in out and "rep4" in out
    assert "worker" in out and "beat" in out
    # The URL and logins come last, once web, worker and beat are all up.
    banner = out.index("Closing CRM is running")
    assert out.index(" ready.") < banner and out.index("beat: Starting") < banner
    assert "still starting" not in out
    # Run-time files stay under the var folder: nothing is written into the checkout.
    assert not (ROOT / "control").exists()
    assert f"Receiving replies by SMTP on 127.0.0.1:{env['INBOUND_SMTP_PORT']}" in out


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_env_example_lists_every_setting_read_from_the_environment():
    """A deployment can rely on .env.example: every variable the settings read is in it."""
    settings_text = (ROOT / "closing_crm" / "settings.py").read_text()
    read = set(
        re.findall(
            r'(?:environ(?:\.get)?\(|environ\[|env_bool\(|env_list\()"([A-Z_]+)"', settings_text
        )
    )
    listed = set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    internal = {"CLOSING_VAR_DIR", "CELERY_TASK_ALWAYS_EAGER", "DEMO_MODE"}
    assert read - listed - internal == set()


def test_make_run_email_goes_to_the_console_and_var_mail(settings, tmp_path, capfd):
    """`make run`'s email backend frames each message on the console, points out the signing
    link, and keeps a copy under var/mail/."""
    from django.core.mail import EmailMessage

    from closing_crm.mail import ConsoleAndFileBackend

    settings.EMAIL_FILE_PATH = str(tmp_path / "mail")
    link = "http://127.0.0.1:8000/sign/abc123:xyz/"
    sent = ConsoleAndFileBackend().send_messages(
        [EmailMessage("Please sign", f"Open it here:\n{link}\n", to=["ann@acme.example"])]
    )
    assert sent == 1
    printed = capfd.readouterr().out
    assert f"➜ SIGNING LINK: {link}" in printed and "ann@acme.example" in printed
    saved = list((tmp_path / "mail").iterdir())
    assert len(saved) == 1 and link in saved[0].read_text()
