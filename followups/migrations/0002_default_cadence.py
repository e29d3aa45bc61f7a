"""The default cadence that ships with the product: friendly, helpful, aiming at a conversation."""

from django.db import migrations

STEPS = [
    (
        2,
        "email",
        "Any questions on the {{ deal.title }} agreement?",
        """Hi {{ contact.first_name|default:"there" }},

I hope the agreement for {{ deal.title }} reached you well. Contracts often raise a question or two, and it is usually quicker to talk them through than to write back and forth.

Would a 15-minute call this week help? Just reply with a time that suits you, and I will make it work.

Best regards,
{{ rep.get_full_name|default:rep.username }}""",
    ),
    (
        5,
        "call",
        "Call {{ contact.first_name|default:\"the buyer\" }} about the {{ deal.title }} contract",
        """Ask whether anything in the contract is unclear or needs a change, and who else needs to review it. Offer a short contract review meeting with everyone involved.""",
    ),
    (
        10,
        "email",
        "Happy to walk you through the {{ deal.title }} contract",
        """Hi {{ contact.first_name|default:"there" }},

I know reviewing a contract takes time alongside everything else. If it helps, I can walk you and your colleagues through it in a short meeting: we go over the terms together, I answer questions on the spot, and we can adjust anything that does not fit {{ account.name }}.

Would you like me to send a few times for a review meeting?

Best regards,
{{ rep.get_full_name|default:rep.username }}""",
    ),
    (
        17,
        "email",
        "Checking in on {{ deal.title }}",
        """Hi {{ contact.first_name|default:"there" }},

Just checking in on the agreement for {{ deal.title }}. If the timing has changed or something is holding things up, tell me: I am glad to help, whether that is a quick call, a meeting with your team, or simply a later date.

Best regards,
{{ rep.get_full_name|default:rep.username }}""",
    ),
]


def create_default(apps, schema_editor):
    Cadence = apps.get_model("followups", "Cadence")
    CadenceStep = apps.get_model("followups", "CadenceStep")
    if Cadence.objects.filter(team__isnull=True, is_active=True).exists():
        return
    cadence = Cadence.objects.create(
        name="Friendly follow-up", repeat_every_days=7, repeat_times=2, is_active=True
    )
    for position, (days, channel, subject, body) in enumerate(STEPS):
        CadenceStep.objects.create(
            cadence=cadence,
            position=position,
            offset_days=days,
            channel=channel,
            subject=subject,
            body=body,
        )


def remove_default(apps, schema_editor):
    apps.get_model("followups", "Cadence").objects.filter(
        team__isnull=True, name="Friendly follow-up"
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("followups", "0001_initial")]

    operations = [migrations.RunPython(create_default, remove_default)]
