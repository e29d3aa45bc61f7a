"""The Celery application; configuration comes from Django settings (CELERY_*)."""

import os
from pathlib import Path

from celery import Celery
from celery.beat import PersistentScheduler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "closing_crm.settings")

app = Celery("closing_crm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class Scheduler(PersistentScheduler):
    """Beat's file-backed schedule, creating its folder first (a fresh checkout has no var/).

    With the embedded filesystem broker, the broker's folders are made too, so the first
    tick can be sent. Chosen by CELERY_BEAT_SCHEDULER.
    """

    def setup_schedule(self):
        Path(self.schedule_filename).parent.mkdir(parents=True, exist_ok=True)
        options = self.app.conf.broker_transport_options or {}
        for key in ("data_folder_in", "data_folder_out", "processed_folder"):
            if options.get(key):
                Path(options[key]).mkdir(parents=True, exist_ok=True)
        super().setup_schedule()
