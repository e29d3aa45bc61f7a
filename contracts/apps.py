from django.apps import AppConfig


class ContractsConfig(AppConfig):
    name = "contracts"
    verbose_name = "Contracts and e-signature"

    def ready(self) -> None:
        from deals.signals import (
            concession_accepted,
            contact_data_collect,
            contact_data_erase,
            deal_archived,
            deal_state_changed,
        )

        from . import privacy, receivers
        from .mail import signed_copy_enqueue
        from .signals import contract_signed

        deal_state_changed.connect(
            receivers.settle_when_closed, dispatch_uid="contracts.settle_when_closed"
        )
        deal_archived.connect(
            receivers.settle_when_archived, dispatch_uid="contracts.settle_when_archived"
        )
        concession_accepted.connect(
            receivers.revise_for_concession, dispatch_uid="contracts.revise_for_concession"
        )
        contract_signed.connect(signed_copy_enqueue, dispatch_uid="contracts.signed_copy")

        contact_data_collect.connect(privacy.collect, dispatch_uid="contracts.privacy.collect")
        contact_data_erase.connect(privacy.erase, dispatch_uid="contracts.privacy.erase")
