"""`make run`: prepare the embedded setup, then run web + worker + beat under honcho.

Embedded means no outside services: SQLite in ./db.sqlite3, Celery's filesystem
broker in ./var/broker, console email, the built-in e-signature provider.
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def main() -> int:
    env = os.environ.copy()
    env.setdefault("DEBUG", "1")
    env.setdefault("DEMO_MODE", "1")
    env.setdefault("DJANGO_SETTINGS_MODULE", "closing_crm.settings")
    port = env.get("PORT", "8000")
    env["WEB_PORT"] = port
    env.setdefault("SITE_URL", f"http://127.0.0.1:{port}")
    # Procfile.dev runs `python` and `celery`: make them this virtualenv's.
    env["PATH"] = str(Path(PYTHON).parent) + os.pathsep + env.get("PATH", "")
    var_dir = Path(env.get("CLOSING_VAR_DIR", ROOT / "var"))
    for folder in ("broker/out", "broker/processed", "media", "mail"):
        (var_dir / folder).mkdir(parents=True, exist_ok=True)

    def manage(*args: str) -> None:
        subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True)

    manage("migrate", "--noinput", "-v", "0")
    # seed_demo refuses (and says why) on a database that has users of its own: start anyway.
    seeded = subprocess.run([PYTHON, "manage.py", "seed_demo"], cwd=ROOT, env=env)
    if seeded.returncode != 0:
        print("  No demo data was added (see above); your own logins work as before.", flush=True)
    print(
        f"\n  Closing CRM is starting on http://127.0.0.1:{port}/\n"
        "  Demo logins (password: demo): admin · manager1 · manager2 · rep1 · rep2 · rep3 · rep4\n"
        "  Django admin: /admin/   ·   Ctrl-C stops web, worker and beat.\n",
        flush=True,
    )
    honcho = str(Path(PYTHON).parent / "honcho")
    return subprocess.call([honcho, "-f", "Procfile.dev", "start"], cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main())
