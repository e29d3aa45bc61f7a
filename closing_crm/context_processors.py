"""Template context shared by every page."""

from django.conf import settings


def debug_pages(request) -> dict:
    """`debug_pages`: with DEBUG on, app.js shows Django's error page for a failed htmx request.

    Only for server errors (5xx): 4xx replies are plain-words refusals that every panel
    renders in place, in DEBUG and in production alike.
    """
    return {"debug_pages": settings.DEBUG}
