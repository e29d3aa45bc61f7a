"""Run the same use case from many database connections at once, to test races for real.

Each attempt runs in its own thread, so Django gives it its own PostgreSQL connection.
Every thread first loads its own copy of the record (as each request would), then all
wait at a barrier and act at the same moment. Use from `transaction=True` tests (the
rows must be committed for other connections to see them) with the `postgres` fixture.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connections

from deals.services import DealConflict


@dataclass
class Outcome:
    result: Any = None
    error: BaseException | None = None

    @property
    def won(self) -> bool:
        return self.error is None


def run_concurrently(
    act: Callable[[Any], Any],
    *,
    load: Callable[[], Any] = lambda: None,
    threads: int = 20,
    timeout: float = 60,
) -> list[Outcome]:
    """`load()` then, all together, `act(loaded)`, in `threads` threads; one Outcome each."""
    barrier = threading.Barrier(threads, timeout=timeout)
    outcomes = [Outcome() for _ in range(threads)]

    def attempt(outcome: Outcome) -> None:
        try:
            loaded = load()
            barrier.wait()
            outcome.result = act(loaded)
        except BaseException as exc:  # noqa: BLE001 - reported to the test, never swallowed
            outcome.error = exc
        finally:
            connections.close_all()

    workers = [threading.Thread(target=attempt, args=(o,)) for o in outcomes]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout)
    assert not any(w.is_alive() for w in workers), "an attempt is still running (deadlock?)"
    return outcomes


def one_winner(
    outcomes: list[Outcome], conflict: type[BaseException] = DealConflict
) -> tuple[Outcome, list[BaseException]]:
    """Exactly one attempt won and every other one was refused with `conflict`."""
    winners = [o for o in outcomes if o.won]
    errors = [o.error for o in outcomes if not o.won]
    unexpected = [e for e in errors if not isinstance(e, conflict)]
    assert not unexpected, f"not a {conflict.__name__}: {unexpected[:3]!r}"
    assert len(winners) == 1, f"{len(winners)} attempts won"
    return winners[0], errors
