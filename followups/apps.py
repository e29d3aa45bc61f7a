from django.apps import AppConfig


class FollowupsConfig(AppConfig):
    name = "followups"
    verbose_name = "Follow-ups"

    def ready(self) -> None:
        from contracts.signals import contract_sent, contract_withdrawn
        from deals.signals import contact_data_collect, contact_data_erase, deal_state_changed

        from . import privacy, receivers

        contact_data_collect.connect(privacy.collect, dispatch_uid="followups.privacy.collect")
        contact_data_erase.connect(privacy.erase, dispatch_uid="followups.privacy.erase")

        contract_sent.connect(receivers.start_cadence, dispatch_uid="followups.start_cadence")
        contract_withdrawn.connect(
            receivers.cancel_for_version, dispatch_uid="followups.cancel_for_version"
        )
        deal_state_changed.connect(
            receivers.cancel_when_closed, dispatch_uid="followups.cancel_when_closed"
        )
        # django-anymail's webhooks feed the same inbound handling as the SMTP receiver.
        from anymail.signals import inbound, tracking

        inbound.connect(receivers.anymail_inbound, dispatch_uid="followups.anymail_inbound")
        tracking.connect(receivers.anymail_tracking, dispatch_uid="followups.anymail_tracking")
