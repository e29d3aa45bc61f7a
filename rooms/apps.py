from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RoomsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "rooms"
    verbose_name = _("Close plans and buyer rooms")

    def ready(self) -> None:
        from deals.signals import deal_state_changed

        from .receivers import on_deal_state_changed

        deal_state_changed.connect(on_deal_state_changed, dispatch_uid="rooms.on_won")
