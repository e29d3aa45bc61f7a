"""Benchmark the reminder dispatcher: N due reminders, real Celery workers on Redis.

First measures the one-task-per-item Celery floor in the same run: N tasks that only
INCR a Redis counter (bench/celery_floor.py), one worker with 2 prefork processes,
acks_late. Then creates N due follow-up emails (default 10,000) on PostgreSQL, starts
real `celery worker` processes (solo pool, 2 by default, the first one runs beat ticking
every second) on a queue of their own, and prints one table: reminders per second and
the ratio to the floor, lateness (sent_at - due_at) p50/p95, duplicates (send attempts
beyond one per reminder, and timeline events beyond one) and lost (reminders not sent,
or sent without an email in the mailbox).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_followups_bench \\
    REDIS_URL=redis://127.0.0.1:6379/3 .venv/bin/python bench/dispatch.py [-n 10000] \\
        [--workers 1] [--batch 200]

The database is migrated if needed; the bench's own team and deals are removed first.
Emails go to a temporary folder, one file per Message-ID (followups.mail) plus a log of
every send attempt, so duplicates would show. Not part of the test run.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "closing_crm.settings")
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/crm_followups_bench")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/3")

import django  # noqa: E402

BENCH_TEAM = "Bench dispatch team"


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database of DATABASE_URL when it does not exist."""
    import dj_database_url
    import psycopg2

    cfg = dj_database_url.parse(url)
    if "postgresql" not in cfg["ENGINE"]:
        sys.exit("bench/dispatch.py measures PostgreSQL: set DATABASE_URL=postgres://…")
    conn = psycopg2.connect(
        dbname="postgres",
        user=cfg["USER"],
        password=cfg["PASSWORD"] or None,
        host=cfg["HOST"] or "127.0.0.1",
        port=cfg["PORT"] or 5432,
    )
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [cfg["NAME"]])
        if not cur.fetchone():
            cur.execute(f'CREATE DATABASE "{cfg["NAME"]}"')
    conn.close()


def seed(n: int, per_deal: int) -> list[int]:
    """N due email reminders across N/per_deal deals, written in bulk (bench data only)."""
    from django.utils import timezone

    from contracts.models import ContractVersion
    from deals.models import Account, Contact, Deal, Stakeholder, Team, User
    from followups.models import Reminder

    team = Team.objects.filter(name=BENCH_TEAM).first()
    if team is not None:  # a previous run: remove its rows (children first)
        Reminder.objects.filter(deal__team=team).delete()
        deal_ids = list(Deal.objects.filter(team=team).values_list("pk", flat=True))
        # The audit log refuses deletes through the ORM; bench rows go with raw SQL.
        from django.db import connection

        from deals.models import DealEvent

        with connection.cursor() as cur:
            if deal_ids:
                cur.execute("DELETE FROM deals_dealevent WHERE deal_id = ANY(%s)", [deal_ids])
        del DealEvent
        ContractVersion.objects.filter(deal__team=team).delete()
        Stakeholder.objects.filter(deal__team=team).delete()
        Deal.objects.filter(team=team).delete()
        from deals.models import DealTotal

        DealTotal.objects.filter(team=team).delete()  # the bench's deals went around services
        Contact.objects.filter(account__team=team).delete()
        Account.objects.filter(team=team).delete()
        User.objects.filter(team=team).delete()
        team.delete()
    team = Team.objects.create(name=BENCH_TEAM)
    rep = User.objects.create_user(
        username=f"bench-rep-{uuid.uuid4().hex[:6]}",
        email="bench.rep@example.com",
        first_name="Bench",
        team=team,
        time_zone="UTC",
        working_days="0123456",
        workday_start=dt.time(0, 0),
        workday_end=dt.time(23, 59, 59),
    )
    account = Account.objects.create(name="Bench buyer", team=team, owner=rep)
    contact = Contact.objects.create(
        account=account, first_name="Bea", last_name="Buyer", email="bea@buyer.example"
    )
    now = timezone.now()
    n_deals = -(-n // per_deal)
    deals = Deal.objects.bulk_create(
        [
            Deal(title=f"Bench deal {i}", account=account, team=team, owner=rep)
            for i in range(n_deals)
        ]
    )
    Stakeholder.objects.bulk_create(
        [Stakeholder(deal=d, contact=contact, role=Stakeholder.Role.SIGNER) for d in deals]
    )
    versions = ContractVersion.objects.bulk_create(
        [
            ContractVersion(deal=d, number=1, status=ContractVersion.Status.SENT, sent_at=now)
            for d in deals
        ]
    )
    reminders = []
    for i in range(n):
        version = versions[i // per_deal]
        reminders.append(
            Reminder(
                deal_id=version.deal_id,
                contract_version=version,
                sequence=i % per_deal + 1,
                channel="email",
                subject_template="Any questions on the {{ deal.title }} agreement?",
                body_template="Hi {{ contact.first_name }},\n\nHappy to help on a short call.\n"
                "{{ rep.first_name }}",
                planned_at=now,
                due_at=now,
                message_id=f"<bench-{uuid.uuid4().hex}@closing-crm>",
            )
        )
    Reminder.objects.bulk_create(reminders, batch_size=2000)
    from deals.services import deal_totals_rebuild

    deal_totals_rebuild()  # the bench's deals were bulk-created and deleted around the services
    return [d.pk for d in deals]


def start_worker(i: int, queue: str, env: dict, tmp: Path, beat: bool) -> subprocess.Popen:
    var = tmp / f"var{i}"
    var.mkdir()
    cmd = [
        "timeout", "-s", "KILL", "900",
        sys.executable, "-m", "celery", "-A", "closing_crm", "worker",
        "--pool=solo", "--queues", queue, "--loglevel=WARNING",
        "--hostname", f"bench{i}-{uuid.uuid4().hex[:6]}@%h",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    if beat:
        cmd += ["--beat", "--schedule", str(var / "beat-schedule")]
    log = open(tmp / f"worker{i}.log", "wb")  # noqa: SIM115 (lives as long as the worker)
    return subprocess.Popen(
        cmd,
        cwd=ROOT,
        env={**env, "CLOSING_VAR_DIR": str(var)},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def celery_floor(n: int, env: dict, tmp: Path) -> float:
    """Tasks per second for `n` one-INCR tasks on one prefork worker (2 processes)."""
    import redis

    from closing_crm.celery import app

    queue = f"bench-floor-{uuid.uuid4().hex[:8]}"
    key = f"bench-floor-count-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    with app.producer_or_acquire() as producer:
        for _ in range(n):
            app.send_task("bench.floor_incr", args=[key], queue=queue, producer=producer)
    cmd = [
        "timeout", "-s", "KILL", "600",
        sys.executable, "-m", "celery", "-A", "closing_crm", "worker",
        "--pool=prefork", "--concurrency=2", "--queues", queue, "--loglevel=WARNING",
        "--include", "bench.celery_floor",
        "--hostname", f"floor-{uuid.uuid4().hex[:6]}@%h",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    log = open(tmp / "floor-worker.log", "wb")  # noqa: SIM115 (lives as long as the worker)
    worker = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    first = last = None
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and worker.poll() is None:
            done = int(client.get(key) or 0)
            now = time.monotonic()
            if done and first is None:
                first = (now, done)
            if done >= n:
                last = now
                break
            time.sleep(0.05)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        client.delete(key)
    if first is None or last is None or last <= first[0]:
        sys.exit(f"The Celery floor run did not finish; see {tmp / 'floor-worker.log'}")
    return (n - first[1]) / (last - first[0])


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--reminders", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=200, help="FOLLOWUPS_BATCH_SIZE")
    parser.add_argument("--per-deal", type=int, default=10, help="reminders per deal")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()

    load_at_start = os.getloadavg()[0]
    print(f"Load average at the start: {load_at_start:.1f}", flush=True)
    ensure_database(os.environ["DATABASE_URL"])
    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import Count

    from deals.models import DealEvent
    from followups.models import Reminder

    call_command("migrate", "--noinput", verbosity=0)
    print(f"Seeding {args.reminders:,} due reminders…", flush=True)
    deal_ids = seed(args.reminders, args.per_deal)
    connection.close()

    queue = f"bench-dispatch-{uuid.uuid4().hex[:8]}"
    tmp = Path(tempfile.mkdtemp(prefix="bench-dispatch-"))
    mailbox = tmp / "mail"
    mailbox.mkdir()
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-secret-key-0123456789-abcdefghijklmnop"),
        "EMAIL_BACKEND": "tests.followups.mailboxes.CountingFileBackend",
        "EMAIL_FILE_PATH": str(mailbox),
        "FOLLOWUPS_DISPATCH_QUEUE": queue,
        "FOLLOWUPS_DISPATCH_INTERVAL": "1",
        "FOLLOWUPS_BATCH_SIZE": str(args.batch),
        "LOG_LEVEL": "WARNING",
    }
    print(f"Celery floor: {args.reminders:,} one-INCR tasks, prefork 2…", flush=True)
    floor = celery_floor(args.reminders, env, tmp)
    print(f"Starting {args.workers} worker(s) on Redis queue {queue}…", flush=True)
    started = time.monotonic()
    workers = [start_worker(i, queue, env, tmp, beat=(i == 0)) for i in range(args.workers)]
    total = args.reminders
    first_sent_at = None
    try:
        while time.monotonic() - started < args.timeout:
            sent = Reminder.objects.filter(deal_id__in=deal_ids, status="sent").count()
            if sent and first_sent_at is None:
                first_sent_at = time.monotonic()
            if sent >= total:
                break
            if any(w.poll() is not None for w in workers):
                print("A worker exited early; see", tmp, file=sys.stderr)
                break
            time.sleep(0.25)
        elapsed = time.monotonic() - started
    finally:
        for w in workers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(w.pid, signal.SIGKILL)
            w.wait(timeout=10)

    rows = list(
        Reminder.objects.filter(deal_id__in=deal_ids).values_list(
            "status", "due_at", "sent_at", "message_id"
        )
    )
    sent_rows = [r for r in rows if r[0] == "sent"]
    lateness = [(r[2] - r[1]).total_seconds() for r in sent_rows]
    send_log = mailbox / "sends.log"
    attempts = Counter(send_log.read_text().split()) if send_log.exists() else Counter()
    delivered = {p.name for p in mailbox.glob("*.eml")}
    event_dups = (
        DealEvent.objects.filter(deal_id__in=deal_ids, kind="reminder")
        .values("data__reminder_id")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .count()
    )
    duplicates = sum(c - 1 for c in attempts.values() if c > 1) + event_dups
    lost = (total - len(sent_rows)) + sum(1 for r in sent_rows if r[3] not in attempts)
    sending_time = elapsed - ((first_sent_at or started) - started)
    rate = len(sent_rows) / elapsed if elapsed else 0.0
    sending_rate = len(sent_rows) / sending_time if sending_time > 0 else 0.0

    print()
    print(
        f"Reminder dispatcher on {connection.vendor} + Redis · {platform.node()} · "
        f"{os.cpu_count()} CPUs · {args.workers} solo worker(s) · batch {args.batch} · "
        f"load {load_at_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end · "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    lines = [
        ("reminders due", f"{total:,}"),
        ("sent", f"{len(sent_rows):,}"),
        ("wall time (worker start → last sent)", f"{elapsed:.1f} s"),
        ("reminders / second (incl. worker start)", f"{rate:,.0f}"),
        ("reminders / second (first → last sent)", f"{sending_rate:,.0f}"),
        ("Celery floor: one-INCR tasks / second", f"{floor:,.0f}"),
        ("dispatcher / floor", f"{sending_rate / floor:.2f}×"),
        ("lateness p50", f"{percentile(lateness, 0.50):.1f} s"),
        ("lateness p95", f"{percentile(lateness, 0.95):.1f} s"),
        ("emails in the mailbox", f"{len(delivered):,}"),
        ("duplicates (must be 0)", f"{duplicates}"),
        ("lost (must be 0)", f"{lost}"),
    ]
    width = max(len(k) for k, _ in lines)
    print("-" * (width + 14))
    for key, value in lines:
        print(f"{key:<{width}}  {value:>10}")
    print("-" * (width + 14))
    print(f"(lateness counts from due time = seeding time; logs in {tmp})")
    return 0 if duplicates == 0 and lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
