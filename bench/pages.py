"""Measure the main pages on the configured database and print one table.

For each page: server-side time of the whole request through the Django test Client
(median and 95th percentile over repeated requests, after one warm-up), the number of
queries, and the raw SQL time of the page's main query (its slowest query, executed
again on its own; median of the repeats). Run it on data from bench/seed.py:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_crm \\
        .venv/bin/python bench/pages.py [--repeat 15] [--markdown]

Pages whose URL does not exist (yet) are listed as missing, not skipped silently.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
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

from deals.models import Deal, DealEvent, User  # noqa: E402


def pages(manager: User, admin: User, rep: User, deal: Deal) -> list[tuple[str, User, str]]:
    """(label, user, url name + query) for every page measured."""
    return [
        ("Board", manager, ("deals:board", [], "")),
        ("Deal list", manager, ("deals:deal_list", [], "")),
        ("Deal list (admin, all teams)", admin, ("deals:deal_list", [], "")),
        ("Deal page", manager, ("deals:deal_detail", [deal.pk], "")),
        ("Dashboard (manager, team)", manager, ("pipeline:dashboard", [], "")),
        ("Dashboard (admin, all teams)", admin, ("pipeline:dashboard", [], "")),
        ("Dashboard (rep)", rep, ("pipeline:dashboard", [], "")),
        ("Dashboard, this year", manager, ("pipeline:dashboard", [], "period=year")),
        ("Coaching (manager)", manager, ("pipeline:coaching", [], "")),
        ("Drill-down: stalled", manager, ("pipeline:dashboard_deals", [], "stalled=1")),
        ("CSV: reps (admin)", admin, ("pipeline:dashboard_csv", ["reps"], "")),
        ("CSV: time in state (admin)", admin, ("pipeline:dashboard_csv", ["time-in-state"], "")),
    ]


def main_query_ms(sql: str, repeat: int) -> float:
    timings = []
    with connection.cursor() as cursor:
        for _ in range(repeat):
            started = time.perf_counter()
            cursor.execute(sql)
            cursor.fetchall()
            timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


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
    slowest = max(queries, key=lambda q: float(q["time"]), default=None)
    timings.sort()
    p95 = timings[min(len(timings) - 1, max(0, round(0.95 * len(timings)) - 1))]
    return {
        "queries": len(queries),
        "median": statistics.median(timings),
        "p95": p95,
        "main_ms": main_query_ms(slowest["sql"], max(3, repeat // 3)) if slowest else 0.0,
        "main_sql": " ".join(slowest["sql"].split())[:70] if slowest else "",
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
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
        .annotate(n=Count("events"))
        .order_by("-n", "pk")
        .first()
    )
    counts = (Deal.objects.count(), DealEvent.objects.count(), User.objects.count())
    print(
        f"# {connection.vendor} · {counts[0]:,} deals · {counts[1]:,} events · "
        f"{counts[2]:,} users · {args.repeat} requests per page · "
        f"python {platform.python_version()} · {platform.machine()}, "
        f"{os.cpu_count()} CPUs · load {os.getloadavg()[0]:.1f} · "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    print(f"# manager {manager.username} (team {manager.team}), deal page: {deal.pk}")
    rows = []
    clients: dict[int, Client] = {}
    for label, user, (name, url_args, query) in pages(manager, admin, rep, deal):
        try:
            url = reverse(name, args=url_args) + (f"?{query}" if query else "")
        except NoReverseMatch:
            rows.append((label, "missing", "", "", "", "", ""))
            continue
        client = clients.get(user.pk)
        if client is None:
            client = clients[user.pk] = Client()
            client.force_login(user)
        result = measure(client, url, args.repeat)
        if "error" in result:
            rows.append((label, result["error"], "", "", "", "", url))
            continue
        rows.append(
            (
                label,
                str(result["queries"]),
                f"{result['median']:.0f}",
                f"{result['p95']:.0f}",
                f"{result['main_ms']:.1f}",
                result["main_sql"],
                url,
            )
        )
        print(f"  measured {label}", file=sys.stderr, flush=True)
    header = ("page", "queries", "median ms", "p95 ms", "main query ms", "main query", "url")
    if args.markdown:
        print("| " + " | ".join(header[:5]) + " |")
        print("|" + "---|" * 5)
        for row in rows:
            print("| " + " | ".join(row[:5]) + " |")
        return
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)))


if __name__ == "__main__":
    main()
