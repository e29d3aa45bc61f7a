"""Measure the main pages on the configured database and print one table.

For each page: server-side time of the whole request through the Django test Client
(median and 95th percentile over repeated requests, after one warm-up), the number of
queries, and the page's SQL floor: every statement the page ran, re-run directly on the
connection one after the other (median of 10 such runs), with the ratio page / floor
(how much the page costs beyond its own SQL: Python, templates, round trips). The deal
page is measured twice: on the team's busiest seeded deal and on a deal with 1,000
events, signals and asks (created once by this script: "Bench heavy deal"). Dashboards and
coaching are measured as users get them (their figures kept as a snapshot for
DASHBOARD_CACHE_SECONDS) and with "Refresh now" (`fresh=1`: computed on every request). The streamed
CSV export of every deal is measured once, with its peak Python memory. Run it on data
from bench/seed.py:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_crm \\
        .venv/bin/python bench/pages.py [--repeat 15] [--markdown]

Pages whose URL does not exist (yet) are listed as missing, not skipped silently.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "closing_crm.settings")
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.db.models import Count  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import NoReverseMatch, reverse  # noqa: E402

from deals.models import Ask, BuyingSignal, Deal, DealEvent, User  # noqa: E402

HEAVY_TITLE = "Bench heavy deal"
HEAVY_SIZE = 1000


def heavy_deal(manager: User) -> Deal:
    """A deal of the manager's team with 1,000 events, signals and asks (made once)."""
    deal = Deal.objects.filter(title=HEAVY_TITLE, team=manager.team).first()
    if deal is not None:
        return deal
    from django.utils import timezone

    from deals import services

    owner = User.objects.filter(team=manager.team, role=User.Role.REP).order_by("pk").first()
    account = Deal.objects.filter(team=manager.team).first().account
    deal = services.deal_create(by=owner, account=account, title=HEAVY_TITLE)
    start = timezone.now() - dt.timedelta(hours=HEAVY_SIZE + 1)
    at = [start + dt.timedelta(hours=i) for i in range(HEAVY_SIZE)]
    DealEvent.objects.bulk_create(
        DealEvent(deal=deal, actor=owner, kind="note", reason=f"Note {i}", created_at=at[i])
        for i in range(HEAVY_SIZE)
    )
    BuyingSignal.objects.bulk_create(
        BuyingSignal(deal=deal, kind="pricing", note=f"Signal {i}", observed_at=at[i])
        for i in range(HEAVY_SIZE)
    )
    Ask.objects.bulk_create(
        Ask(deal=deal, number=i + 1, channel="call", statement="s", answer="no", asked_at=at[i])
        for i in range(HEAVY_SIZE)
    )
    return deal


def pages(manager: User, admin: User, rep: User, deal: Deal, heavy: Deal) -> list:
    """(label, user, url name + query) for every page measured."""
    return [
        ("Board", manager, ("deals:board", [], "")),
        ("Board (admin, all teams)", admin, ("deals:board", [], "")),
        ("Deal list", manager, ("deals:deal_list", [], "")),
        ("Deal list (admin, all teams)", admin, ("deals:deal_list", [], "")),
        ("Deal list (admin), page 2,000", admin, ("deals:deal_list", [], "page=2000")),
        ("Deal page", manager, ("deals:deal_detail", [deal.pk], "")),
        ("Deal page, 1,000 events", manager, ("deals:deal_detail", [heavy.pk], "")),
        ("Dashboard (manager, team)", manager, ("pipeline:dashboard", [], "")),
        ("Dashboard (admin, all teams)", admin, ("pipeline:dashboard", [], "")),
        # "Refresh now": the figures computed on every request (no snapshot).
        ("Dashboard (admin, all teams), fresh", admin, ("pipeline:dashboard", [], "fresh=1")),
        ("Dashboard (manager, team), fresh", manager, ("pipeline:dashboard", [], "fresh=1")),
        ("Dashboard (rep)", rep, ("pipeline:dashboard", [], "")),
        ("Dashboard, this year", manager, ("pipeline:dashboard", [], "period=year")),
        ("Coaching (manager)", manager, ("pipeline:coaching", [], "")),
        ("Coaching (manager), fresh", manager, ("pipeline:coaching", [], "fresh=1")),
        ("Drill-down: stalled", manager, ("pipeline:dashboard_deals", [], "stalled=1")),
        ("CSV: reps (admin)", admin, ("pipeline:dashboard_csv", ["reps"], "")),
        ("CSV: time in state (admin)", admin, ("pipeline:dashboard_csv", ["time-in-state"], "")),
    ]


def sql_floor_ms(statements: list[str], runs: int = 10) -> float:
    """Every read the page ran, re-run directly one after the other: median of `runs`."""
    reads = [sql for sql in statements if sql.lstrip().upper().startswith(("SELECT", "WITH"))]
    timings = []
    with connection.cursor() as cursor:
        for _ in range(runs):
            started = time.perf_counter()
            for sql in reads:
                cursor.execute(sql)
                cursor.fetchall()
            timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def statement_report(statements: list[str], runs: int = 5) -> list[tuple[float, int, str]]:
    """Each read the page ran: median ms of `runs`, shared buffers (hit + read) from
    EXPLAIN (ANALYZE, BUFFERS) on PostgreSQL (plans and buffers do not depend on the
    machine's load, times do), and the statement's first line; slowest first."""
    import json

    report = []
    with connection.cursor() as cursor:
        for sql in statements:
            if not sql.lstrip().upper().startswith(("SELECT", "WITH")):
                continue
            timings = []
            for _ in range(runs):
                started = time.perf_counter()
                cursor.execute(sql)
                cursor.fetchall()
                timings.append((time.perf_counter() - started) * 1000)
            buffers = -1
            if connection.vendor == "postgresql":
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql)
                plan = cursor.fetchone()[0]
                plan = json.loads(plan) if isinstance(plan, str) else plan
                top = plan[0]["Plan"]
                buffers = top.get("Shared Hit Blocks", 0) + top.get("Shared Read Blocks", 0)
            report.append((statistics.median(timings), buffers, " ".join(sql.split())[:160]))
    return sorted(report, reverse=True)


def profile_report(client: Client, url: str, limit: int = 30) -> str:
    """One request under cProfile: the functions with the most time of their own, then the
    costliest call paths (cumulative), as pstats prints them."""
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    response = client.get(url)
    if hasattr(response, "streaming_content"):
        b"".join(response.streaming_content)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(limit)
    stats.sort_stats("cumulative").print_stats(limit)
    return out.getvalue()


def measure(client: Client, url: str, repeat: int) -> dict:
    response = client.get(url)  # warm-up (template and query caches)
    if response.status_code != 200:
        return {"error": f"HTTP {response.status_code}"}
    timings, queries = [], []
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url)
            if hasattr(response, "streaming_content"):
                b"".join(response.streaming_content)
            timings.append((time.perf_counter() - started) * 1000)
        queries = list(captured.captured_queries)
    timings.sort()
    p95 = timings[min(len(timings) - 1, max(0, round(0.95 * len(timings)) - 1))]
    median = statistics.median(timings)
    floor = sql_floor_ms([q["sql"] for q in queries])
    return {
        "queries": len(queries),
        "median": median,
        "p95": p95,
        "floor": floor,
        "ratio": median / floor if floor else float("nan"),
        "statements": [q["sql"] for q in queries],
    }


def export_run(client: Client) -> tuple[float, float, int]:
    """The streamed CSV export of every deal: seconds, peak Python memory (MiB), rows.

    Like the pages: one warm-up run, then the median of 3 runs timed without tracing
    (tracemalloc slows every allocation several times over), then one more run under
    tracemalloc for the peak memory."""

    def run() -> int:
        response = client.get(reverse("deals:deal_list_csv"))
        return sum(chunk.count(b"\n") for chunk in response.streaming_content) - 1

    run()
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        rows = run()
        timings.append(time.perf_counter() - started)
    seconds = statistics.median(timings)
    tracemalloc.start()
    run()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return seconds, peak, rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    parser.add_argument("--skip-export", action="store_true", help="skip the CSV export run")
    parser.add_argument(
        "--only", action="append", default=[], help="measure only pages whose label has this"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="after each page, profile one request (cProfile) and print its costliest functions",
    )
    parser.add_argument(
        "--statements",
        action="store_true",
        help="after each page, list its statements: median ms, shared buffers, SQL",
    )
    args = parser.parse_args()

    manager = User.objects.filter(role=User.Role.MANAGER, team__isnull=False).order_by("pk")
    manager = manager.filter(username__startswith="bench_mgr").first() or manager.first()
    admin = User.objects.filter(is_superuser=True).order_by("pk").first()
    rep = (
        User.objects.filter(role=User.Role.REP, team=manager.team, deals__isnull=False)
        .order_by("pk")
        .first()
    )
    deal = (
        Deal.objects.filter(team=manager.team)
        .exclude(title=HEAVY_TITLE)
        .annotate(n=Count("events"))
        .order_by("-n", "pk")
        .first()
    )
    heavy = heavy_deal(manager)
    counts = (Deal.objects.count(), DealEvent.objects.count(), User.objects.count())
    print(
        f"# {connection.vendor} · {counts[0]:,} deals · {counts[1]:,} events · "
        f"{counts[2]:,} users · {args.repeat} requests per page · "
        f"python {platform.python_version()} · {platform.machine()}, "
        f"{os.cpu_count()} CPUs · load {os.getloadavg()[0]:.1f} · "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    print(
        f"# manager {manager.username} (team {manager.team}), deal page: {deal.pk}, "
        f"heavy deal: {heavy.pk}"
    )
    rows = []
    clients: dict[int, Client] = {}

    def client_for(user: User) -> Client:
        if user.pk not in clients:
            clients[user.pk] = Client()
            clients[user.pk].force_login(user)
        return clients[user.pk]

    for label, user, (name, url_args, query) in pages(manager, admin, rep, deal, heavy):
        if args.only and not any(word.lower() in label.lower() for word in args.only):
            continue
        try:
            url = reverse(name, args=url_args) + (f"?{query}" if query else "")
        except NoReverseMatch:
            rows.append((label, "missing", "", "", "", "", url_args))
            continue
        result = measure(client_for(user), url, args.repeat)
        if "error" in result:
            rows.append((label, result["error"], "", "", "", "", url))
            continue
        rows.append(
            (
                label,
                str(result["queries"]),
                f"{result['median']:.0f}",
                f"{result['p95']:.0f}",
                f"{result['floor']:.1f}",
                f"{result['ratio']:.1f}×",
                url,
            )
        )
        print(f"  measured {label}", file=sys.stderr, flush=True)
        if args.profile:
            print(f"## {label}: profile of one request")
            print(profile_report(client_for(user), url))
        if args.statements:
            print(f"## {label}: {result['queries']} queries, floor {result['floor']:.1f} ms")
            for ms, buffers, sql in statement_report(result["statements"]):
                print(f"  {ms:8.2f} ms {buffers:8d} buf  {sql}")
    header = ("page", "queries", "median ms", "p95 ms", "SQL floor ms", "page/floor", "url")
    if args.markdown:
        print("| " + " | ".join(header[:6]) + " |")
        print("|---|" + "---:|" * 5)
        for row in rows:
            print("| " + " | ".join(row[:6]) + " |")
    else:
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
        for row in [header, *rows]:
            print("  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)))
    print(f"# load average at the end of the page runs: {os.getloadavg()[0]:.1f}")
    if not args.skip_export:
        seconds, peak, lines = export_run(client_for(admin))
        print(
            f"\nCSV export of every deal (admin, streamed): {lines:,} rows in {seconds:.1f} s, "
            f"peak Python memory {peak:.1f} MiB"
        )


if __name__ == "__main__":
    main()
