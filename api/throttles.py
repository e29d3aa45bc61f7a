"""API throttles whose rates are read from settings on every request.

DRF's own throttles copy `DEFAULT_THROTTLE_RATES` once at import; reading the setting
each time lets an operator (or a test) change the rates without a restart of the module.
"""

from django.conf import settings
from rest_framework.throttling import AnonRateThrottle, UserRateThrottle


def _rate(scope: str) -> str | None:
    return settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {}).get(scope)


class ApiUserThrottle(UserRateThrottle):
    """Requests per authenticated user (token or session)."""

    def get_rate(self):
        return _rate(self.scope)


class ApiAnonThrottle(AnonRateThrottle):
    """Requests per client address without credentials."""

    def get_rate(self):
        return _rate(self.scope)
