"""Project-level checks: demo seed, the generated graph in the README, compose, make run."""

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command

from deals.models import Deal, DealEvent, DealState, User
from deals.selectors import state_graph_mermaid

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_demo_seed_is_idempotent_and_covers_every_state():
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


@pytest.mark.django_db
def test_the_demo_seed_passes_the_close_consistency_check(capsys):
    """Every seeded deal agrees with its contracts: `check_close_consistency` exits 0."""
    call_command("seed_demo")
    call_command("check_close_consistency")
    assert "Deals and contracts agree." in capsys.readouterr().out


@pytest.mark.django_db
def test_demo_seed_leaves_no_backlog_of_follow_ups():
    """Replayed history must not flood buyers: nothing is due the moment the demo starts."""
    from django.utils import timezone

    from followups.models import Reminder

    call_command("seed_demo")
    scheduled = Reminder.objects.filter(status=Reminder.Status.SCHEDULED)
    assert scheduled.exists()
    assert not scheduled.filter(due_at__lte=timezone.now()).exists()
    assert Reminder.objects.filter(status=Reminder.Status.SKIPPED).exists()


def test_readme_embeds_the_generated_state_diagram():
    """The README's diagram is the model's graph: regenerate with `make graph` if this fails."""
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"```mermaid\n(.*?)\n```", readme, re.S)
    assert match, "README has no mermaid block"
    assert match.group(1).strip() == state_graph_mermaid().strip()


def test_docker_compose_defines_the_production_stack():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(services)
    assert "gunicorn closing_crm.wsgi" in services["web"]["command"]
    assert services["worker"]["command"].startswith("celery -A closing_crm worker")
    assert services["beat"]["command"].startswith("celery -A closing_crm beat")
    for name in ("web", "worker", "beat"):
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://")
        assert env["REDIS_URL"].startswith("redis://redis")
        assert services[name]["image"] == services["web"]["image"]
    assert (ROOT / services["web"].get("build", ".") / "Dockerfile").exists()


def test_make_run_serves_the_login_page(tmp_path):
    """Boot the embedded stack like `make run` does and fetch the login page."""
    port = 18000 + os.getpid() % 1000
    env = {
        **os.environ,
        "PORT": str(port),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "CLOSING_VAR_DIR": str(tmp_path / "var"),
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
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            out = proc.communicate(timeout=20)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out = proc.communicate()[0].decode(errors="replace")
    assert "Log in" in body, out[-3000:]
    assert "manager1" in out and "rep4" in out
    assert "worker" in out and "beat" in out


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
