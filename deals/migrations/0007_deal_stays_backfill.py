"""Back-fill the stays table from the audit log (created and transition events).

One INSERT … SELECT with window functions (runs on SQLite and PostgreSQL): LEAD() finds
when each stay ended, a running SUM() per deal and state the seconds spent in the state
so far. Deals that already have stays are left alone, so it is safe on a database that
was written to since.
"""

from django.db import migrations

BACKFILL = """
INSERT INTO deals_dealstay
    (deal_id, state, entered_at, left_at, entered_by_id, left_by_id, state_seconds)
SELECT deal_id, state, entered_at, left_at, entered_by_id, left_by_id,
       CASE WHEN left_at IS NULL THEN NULL ELSE SUM(secs) OVER (
           PARTITION BY deal_id, state ORDER BY entered_at, event_id ROWS UNBOUNDED PRECEDING
       ) END
FROM (
    SELECT ev.*, {seconds} AS secs
    FROM (
        SELECT id AS event_id, deal_id, created_at AS entered_at, actor_id AS entered_by_id,
               CASE WHEN kind = 'created' THEN 'intent_spotted' ELSE to_state END AS state,
               LEAD(created_at) OVER (PARTITION BY deal_id ORDER BY created_at, id) AS left_at,
               LEAD(actor_id) OVER (PARTITION BY deal_id ORDER BY created_at, id) AS left_by_id
        FROM deals_dealevent
        WHERE kind IN ('created', 'transition')
          AND deal_id NOT IN (SELECT deal_id FROM deals_dealstay)
    ) AS ev
) AS timed
"""

SECONDS = {
    "postgresql": "EXTRACT(EPOCH FROM (left_at - entered_at))",
    "sqlite": "((julianday(left_at) - julianday(entered_at)) * 86400.0)",
}


def backfill(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        cursor.execute(BACKFILL.format(seconds=SECONDS[connection.vendor]))


def forget(apps, schema_editor):
    apps.get_model("deals", "DealStay").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("deals", "0006_deal_stays")]

    operations = [migrations.RunPython(backfill, forget)]
