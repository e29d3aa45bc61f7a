"""WSGI entry point (gunicorn closing_crm.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "closing_crm.settings")

application = get_wsgi_application()
