"""The rep's plan and room actions, mounted at /rooms/."""

from .views import urlpatterns  # noqa: F401

app_name = "rooms"
