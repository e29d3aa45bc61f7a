"""Every existing version gets its one signer as a ContractSigner row (from signer_name/email)."""

from django.db import migrations

#: The signer's status for a version's status.
SIGNER_STATUS = {
    "draft": "pending",
    "sending": "pending",
    "sent": "due",
    "delivered": "due",
    "viewed": "viewed",
    "completed": "signed",
    "declined": "declined",
    "failed": "pending",
}


def forwards(apps, schema_editor):
    ContractVersion = apps.get_model("contracts", "ContractVersion")
    ContractSigner = apps.get_model("contracts", "ContractSigner")
    Contact = apps.get_model("deals", "Contact")
    rows = []
    for version in (
        ContractVersion.objects.exclude(signer_email="").select_related("deal").iterator()
    ):
        if ContractSigner.objects.filter(version=version).exists():
            continue
        audit = version.signature or {}
        status = SIGNER_STATUS.get(version.status)
        if status is None:  # voided or expired: where the signer stood when it ended
            status = "viewed" if version.viewed_at else ("due" if version.sent_at else "pending")
        contact = (
            Contact.objects.filter(
                account_id=version.deal.account_id, email__iexact=version.signer_email
            )
            .order_by("pk")
            .first()
        )
        rows.append(
            ContractSigner(
                version=version,
                routing_order=1,
                role="buyer",
                contact=contact,
                name=version.signer_name or version.signer_email,
                email=version.signer_email,
                status=status,
                due_at=version.sent_at,
                viewed_at=version.viewed_at,
                signed_at=version.completed_at if status == "signed" else None,
                declined_at=version.declined_at if status == "declined" else None,
                ip=str(audit.get("ip") or audit.get("declined_ip") or "")[:64],
                user_agent=str(audit.get("user_agent") or audit.get("declined_user_agent") or "")[
                    :300
                ],
                viewed_ip=str(audit.get("viewed_ip", ""))[:64],
                viewed_user_agent=str(audit.get("viewed_user_agent", ""))[:300],
                typed_name=str(audit.get("name", ""))[:200] if status == "signed" else "",
                consent_text=str(audit.get("consent", ""))[:300],
                decline_reason=version.status_reason if status == "declined" else "",
            )
        )
    ContractSigner.objects.bulk_create(rows, batch_size=500)


class Migration(migrations.Migration):
    dependencies = [
        ("contracts", "0004_contract_signers_and_seal"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
