"""Health check for Celery beat: its schedule file (any dbm suffix) changed recently.

Usage: python scripts/beat_healthcheck.py SCHEDULE_FILE [MAX_AGE_SECONDS]; exit 0 healthy.
Beat syncs the file at least every few minutes while it sends ticks; a stale file means a
stuck or dead scheduler. Needs no Django (it runs every minute in the container).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


def newest_change(schedule: Path) -> float | None:
    files = [p for p in schedule.parent.glob(schedule.name + "*") if p.is_file()]
    return max((p.stat().st_mtime for p in files), default=None)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    schedule = Path(argv[1])
    max_age = float(argv[2]) if len(argv) > 2 else 600.0
    changed = newest_change(schedule)
    if changed is None:
        print(f"unhealthy: no schedule file {schedule}*", file=sys.stderr)
        return 1
    age = time.time() - changed
    if age > max_age:
        print(f"unhealthy: {schedule} last written {age:.0f} s ago", file=sys.stderr)
        return 1
    print(f"healthy: {schedule} written {age:.0f} s ago")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
