"""Per-request settings of the deals workspace."""

from __future__ import annotations

import zoneinfo

from django.utils import timezone, translation


class UserTimeZoneMiddleware:
    """Show every time in the signed-in user's own time zone (User.time_zone).

    Stored times stay UTC; only their display changes. Anonymous pages (the buyer's signing
    page) keep the site's zone and say which one they show.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        zone_name = getattr(getattr(request, "user", None), "time_zone", "") or ""
        try:
            zone = zoneinfo.ZoneInfo(zone_name) if zone_name else None
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            zone = None
        if zone is None:
            timezone.deactivate()
        else:
            timezone.activate(zone)
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


class UserLanguageMiddleware:
    """Activate the signed-in user's language (User.language) for the whole request.

    Runs after LocaleMiddleware (which picked the language from the cookie or Accept-Language)
    and after authentication. An empty User.language means "follow the browser", so
    LocaleMiddleware's choice stays.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        language = getattr(getattr(request, "user", None), "language", "") or ""
        if language and translation.check_for_language(language):
            translation.activate(language)
            request.LANGUAGE_CODE = translation.get_language()
        return self.get_response(request)
