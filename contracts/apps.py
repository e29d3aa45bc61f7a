from django.apps import AppConfig


class ContractsConfig(AppConfig):
    name = "contracts"
    verbose_name = "Contracts and e-signature"

    def ready(self) -> None:
        from deals.signals import contact_data_collect, contact_data_erase

        from . import privacy
        from .mail import signed_copy_enqueue
        from .signals import contract_signed

        contract_signed.connect(signed_copy_enqueue, dispatch_uid="contracts.signed_copy")

        contact_data_collect.connect(privacy.collect, dispatch_uid="contracts.privacy.collect")
        contact_data_erase.connect(privacy.erase, dispatch_uid="contracts.privacy.erase")
