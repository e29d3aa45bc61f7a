"""`make run`: prepare the embedded setup, then run web + worker + beat under honcho.

Embedded means no outside services: SQLite in var/db.sqlite3, Celery's filesystem broker in
var/broker, email on the console and in var/mail/, the built-in e-signature provider. Every
file written at run time is under var/ (git-ignored), so the checkout stays clean.

Start-up stays quiet (no Celery banners); once the web server, the worker and beat are all
up, the URL and the demo logins are printed last, where they stay visible.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

#: A line of each process's output that says it is up (honcho prefixes it with the name).
READY = {
    "web": ("Starting development server", "Quit the server with"),
    "worker": (" ready.",),
    "beat": ("beat: Starting", "Scheduler: Sending"),
}
#: Give up waiting for the markers after this long and print the banner anyway.
READY_TIMEOUT = 90


def banner(port: str, waited: set[str]) -> str:
    late = sorted(set(READY) - waited)
    note = f"  (still starting: {', '.join(late)})\n" if late else ""
    return (
        "\n"
        "  ──────────────────────────────────────────────────────────────────────\n"
        f"  Closing CRM is running: http://127.0.0.1:{port}/\n"
        "  Demo logins (password: demo): admin · manager1 · manager2 · rep1 · rep2 · rep3 · rep4\n"
        "  Django admin: /admin/   ·   emails: var/mail/   ·   Ctrl-C stops web, worker and beat\n"
        f"{note}"
        "  ──────────────────────────────────────────────────────────────────────\n"
    )


def main() -> int:
    env = os.environ.copy()
    env.setdefault("DEBUG", "1")
    env.setdefault("DEMO_MODE", "1")
    env.setdefault("DJANGO_SETTINGS_MODULE", "closing_crm.settings")
    env.setdefault("EMAIL_BACKEND", "closing_crm.mail.ConsoleAndFileBackend")
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.setdefault("DJANGO_RUNSERVER_HIDE_WARNING", "true")  # we know it is the dev server
    port = env.get("PORT", "8000")
    env["WEB_PORT"] = port
    env.setdefault("SITE_URL", f"http://127.0.0.1:{port}")
    # Procfile.dev runs `python` and `celery`: make them this virtualenv's.
    env["PATH"] = str(Path(PYTHON).parent) + os.pathsep + env.get("PATH", "")
    var_dir = Path(env.get("CLOSING_VAR_DIR", ROOT / "var"))
    for folder in ("broker/out", "broker/processed", "broker/control", "media", "mail"):
        (var_dir / folder).mkdir(parents=True, exist_ok=True)
    env.setdefault("EMAIL_FILE_PATH", str(var_dir / "mail"))

    def manage(*args: str) -> None:
        subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True)

    print("  Preparing the database (migrations, demo data)…", flush=True)
    # The .mo files are build output (git-ignored): without them a German user sees German
    # dates in an English UI. `make run` compiles them too; running this script directly must.
    subprocess.run(
        [PYTHON, "manage.py", "compile_translations"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    manage("migrate", "--noinput", "-v", "0")
    # The certificate that seals signed contracts (self-signed, var/signing/) when missing.
    manage("signing_certificate_create", "--if-missing")
    # seed_demo refuses (and says why) on a database that has users of its own: start anyway.
    seeded = subprocess.run([PYTHON, "manage.py", "seed_demo"], cwd=ROOT, env=env)
    if seeded.returncode != 0:
        print("  No demo data was added (see above); your own logins work as before.", flush=True)
    print("  Starting the web server, the Celery worker and beat…", flush=True)
    honcho = str(Path(PYTHON).parent / "honcho")
    proc = subprocess.Popen(
        [honcho, "-f", "Procfile.dev", "start"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    seen: set[str] = set()
    printed = threading.Event()
    # Lines written since the banner and when the last one came: a burst right after start-up
    # (the worker sending the demo's queued emails) would push the banner off screen, so it is
    # shown again once the output goes quiet.
    state = {"since_banner": 0, "last_line": time.monotonic(), "repeats": 0}
    lock = threading.Lock()

    def write_banner() -> None:
        with lock:
            sys.stdout.write(banner(port, seen))
            sys.stdout.flush()
            state["since_banner"] = 0

    def watch_banner() -> None:
        if not printed.wait(READY_TIMEOUT):
            printed.set()
            write_banner()
        while state["repeats"] < 3:
            time.sleep(0.5)
            quiet = time.monotonic() - state["last_line"] > 2
            if state["since_banner"] > 12 and quiet:
                state["repeats"] += 1
                write_banner()

    threading.Thread(target=watch_banner, daemon=True).start()

    def stop(signum, frame):  # `kill PID` stops everything like Ctrl-C does
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            with lock:
                sys.stdout.write(line)
                state["since_banner"] += 1
                state["last_line"] = time.monotonic()
            # honcho prefixes each line with "HH:MM:SS name.1 |".
            name = line.split("|", 1)[0].split()[-1].split(".")[0] if "|" in line else ""
            if name in READY and any(marker in line for marker in READY[name]):
                seen.add(name)
                if seen == set(READY) and not printed.is_set():
                    printed.set()
                    write_banner()
            sys.stdout.flush()
    except KeyboardInterrupt:
        # Ctrl-C reached honcho too; a SIGTERM sent to this script alone did not: pass it on.
        if proc.poll() is None:
            proc.terminate()
        # Keep reading while honcho stops web, worker and beat: with its output pipe closed
        # honcho fails on its next line ("SIGTERM received") and leaves them running.
        for line in proc.stdout:
            sys.stdout.write(line)
        sys.stdout.flush()
    return proc.wait()


if __name__ == "__main__":
    sys.exit(main())
