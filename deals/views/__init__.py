"""Deal-app views, one module per area; each module defines its own `urlpatterns`."""
