from django.apps import AppConfig


class FollowupsConfig(AppConfig):
    name = "followups"
    verbose_name = "Follow-ups"

    def ready(self) -> None:
        from contracts.signals import (
            contract_revision_ready,
            contract_sent,
            contract_signed_late,
            contract_withdrawn,
        )
        from deals.signals import (
            contact_data_collect,
            contact_data_erase,
            deal_archived,
            deal_reassigned,
            deal_state_changed,
        )

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
        contract_sent.connect(receivers.close_send_tasks, dispatch_uid="followups.close_send_tasks")
        contract_revision_ready.connect(
            receivers.task_send_revision, dispatch_uid="followups.task_send_revision"
        )
        contract_signed_late.connect(
            receivers.tasks_late_signature, dispatch_uid="followups.tasks_late_signature"
        )
        deal_archived.connect(
            receivers.cancel_when_archived, dispatch_uid="followups.cancel_when_archived"
        )
        deal_reassigned.connect(
            receivers.move_to_new_owner, dispatch_uid="followups.move_to_new_owner"
        )
        # django-anymail's webhooks feed the same inbound handling as the SMTP receiver.
        from anymail.signals import inbound, tracking

        inbound.connect(receivers.anymail_inbound, dispatch_uid="followups.anymail_inbound")
        tracking.connect(receivers.anymail_tracking, dispatch_uid="followups.anymail_tracking")
