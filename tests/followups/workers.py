"""Start and stop real `celery worker` processes for the follow-up tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import quote

from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    """The URL of the database the test is using (on PostgreSQL, the test_… database)."""
    s = connection.settings_dict
    if connection.vendor == "postgresql":
        auth = quote(s["USER"] or "", safe="")
        if s.get("PASSWORD"):
            auth += ":" + quote(s["PASSWORD"], safe="")
        host = s.get("HOST") or "127.0.0.1"
        port = s.get("PORT") or 5432
        return f"postgres://{auth}@{host}:{port}/{s['NAME']}"
    return f"sqlite:///{s['NAME']}"


class Worker:
    """One worker process (solo pool, embedded beat ticking fast) on its own queue.

    `timeout` is a hard limit enforced by coreutils `timeout -s KILL`, so a stuck worker can
    never outlive the test; `kill()` always SIGKILLs the whole process group.
    """

    def __init__(self, tmp: Path, *, redis_url: str, queue: str, name: str, env: dict[str, str],
                 timeout: int = 60, beat: bool = True):  # fmt: skip
        self.log_path = tmp / f"{name}.log"
        var = tmp / f"var-{name}"
        var.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "REDIS_URL": redis_url,
            "SECRET_KEY": "worker-test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
            "DEBUG": "0",
            "CLOSING_VAR_DIR": str(var),
            "FOLLOWUPS_DISPATCH_QUEUE": queue,
            "FOLLOWUPS_DISPATCH_INTERVAL": "0.5",
            "DB_CONN_MAX_AGE": "0",
            "LOG_LEVEL": "INFO",
            **env,
        }
        self.env.pop("CELERY_TASK_ALWAYS_EAGER", None)
        self.cmd = [
            "timeout", "-s", "KILL", str(timeout),
            sys.executable, "-m", "celery", "-A", "closing_crm", "worker",
            "--pool=solo", "--queues", queue, "--loglevel=INFO",
            "--hostname", f"{name}-{uuid.uuid4().hex[:6]}@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
        if beat:
            self.cmd += ["--beat", "--schedule", str(var / "beat-schedule")]
        self.proc: subprocess.Popen | None = None

    def start(self) -> Worker:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed in kill)
        self.proc = subprocess.Popen(
            self.cmd, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


def purge(redis_url: str, queue: str) -> None:
    """Drop what a test left in its own queue (never other keys of the shared database)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    client.delete(queue)
