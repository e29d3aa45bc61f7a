"""The plan template that ships: the usual close of a B2B deal, and onboarding after the win."""

from django.db import migrations

DEFAULT_NAME = "Standard B2B close"
#: (title, side, phase, days after the plan is built / after the win)
DEFAULT_STEPS = [
    ("Discovery recap agreed", "seller", "close", 3),
    ("Security review", "buyer", "close", 10),
    ("Legal review of the contract", "buyer", "close", 17),
    ("Procurement approval", "buyer", "close", 21),
    ("Signature", "buyer", "close", 28),
    ("Kickoff meeting", "seller", "close", 35),
    ("Onboarding: welcome and access for your team", "seller", "onboarding", 3),
    ("Onboarding: first delivery", "seller", "onboarding", 14),
    ("Onboarding: confirm the outcomes we agreed (value verification)", "buyer", "onboarding", 45),
]


def add_default(apps, schema_editor):
    PlanTemplate = apps.get_model("rooms", "PlanTemplate")
    PlanTemplateStep = apps.get_model("rooms", "PlanTemplateStep")
    if PlanTemplate.objects.filter(team__isnull=True, is_default=True).exists():
        return
    template = PlanTemplate.objects.create(name=DEFAULT_NAME, is_default=True)
    PlanTemplateStep.objects.bulk_create(
        PlanTemplateStep(
            template=template, position=i, title=title, side=side, phase=phase, days_after_start=days
        )
        for i, (title, side, phase, days) in enumerate(DEFAULT_STEPS, start=1)
    )


class Migration(migrations.Migration):
    dependencies = [("rooms", "0001_initial")]

    operations = [migrations.RunPython(add_default, migrations.RunPython.noop)]
