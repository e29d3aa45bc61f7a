"""Default win probability and stall threshold per state (admin-editable afterwards)."""

from django.db import migrations

DEFAULTS = {
    "intent_spotted": (10, 14),
    "asked": (25, 5),
    "agreement_sent": (60, 4),
    "negotiating": (40, 7),
    "follow_up": (70, 5),
    "closed_won": (100, 0),
    "closed_lost": (0, 0),
}


def create(apps, schema_editor):
    StageSetting = apps.get_model("deals", "StageSetting")
    for state, (probability, stall_after_days) in DEFAULTS.items():
        StageSetting.objects.get_or_create(
            state=state,
            defaults={"probability": probability, "stall_after_days": stall_after_days},
        )


class Migration(migrations.Migration):
    dependencies = [("deals", "0001_initial")]

    operations = [migrations.RunPython(create, migrations.RunPython.noop)]
