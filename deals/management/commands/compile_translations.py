"""Compile locale/*/LC_MESSAGES/*.po into .mo with pure Python (polib): no GNU gettext needed.

`make` runs it at install, before `make test` and `make run`, and the Dockerfile at build; the
.mo files are build output (git-ignored). Only catalogues whose .mo is missing or older than the
.po are compiled, unless --force.
"""

from __future__ import annotations

from pathlib import Path

import polib
from django.conf import settings
from django.core.management.base import BaseCommand


def compile_catalogues(*, force: bool = False) -> list[Path]:
    """Compile every stale .po under LOCALE_PATHS; return the .mo files written."""
    written = []
    for root in settings.LOCALE_PATHS:
        for po_path in sorted(Path(root).glob("*/LC_MESSAGES/*.po")):
            mo_path = po_path.with_suffix(".mo")
            if (
                not force
                and mo_path.exists()
                and mo_path.stat().st_mtime >= po_path.stat().st_mtime
            ):
                continue
            catalogue = polib.pofile(str(po_path))
            # Fuzzy entries are not translations yet: leave them out, as msgfmt does.
            for entry in catalogue.fuzzy_entries():
                catalogue.remove(entry)
            catalogue.save_as_mofile(str(mo_path))
            written.append(mo_path)
    return written


class Command(BaseCommand):
    help = "Compile the translation catalogues (.po → .mo) without GNU gettext."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="compile even if up to date")

    def handle(self, *args, force=False, **options):
        written = compile_catalogues(force=force)
        for path in written:
            self.stdout.write(f"compiled {path.relative_to(settings.BASE_DIR)}")
        if not written:
            self.stdout.write("translations are up to date")
