from django.apps import AppConfig


class ContractsConfig(AppConfig):
    name = "contracts"
    verbose_name = "Contracts and e-signature"

    def ready(self) -> None:
        from .mail import signed_copy_enqueue
        from .signals import contract_signed

        contract_signed.connect(signed_copy_enqueue, dispatch_uid="contracts.signed_copy")
