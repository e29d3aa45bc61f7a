from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RoomsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "rooms"
    verbose_name = _("Close plans and buyer rooms")

    def ready(self) -> None:
        from deals.signals import contact_data_collect, contact_data_erase, deal_state_changed

        from . import privacy
        from .receivers import on_deal_state_changed

        deal_state_changed.connect(on_deal_state_changed, dispatch_uid="rooms.on_won")
        contact_data_collect.connect(privacy.collect, dispatch_uid="rooms.privacy.collect")
        contact_data_erase.connect(privacy.erase, dispatch_uid="rooms.privacy.erase")
