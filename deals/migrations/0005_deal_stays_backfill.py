"""Back-fill the stays table from the audit log (created and transition events).

One INSERT … SELECT with LEAD() per deal (runs on SQLite and PostgreSQL); deals that
already have stays are left alone, so it is safe to run on a database written since.
"""

from django.db import migrations

BACKFILL = """
INSERT INTO deals_dealstay (deal_id, state, entered_at, left_at, entered_by_id, left_by_id)
SELECT deal_id, state, created_at, left_at, actor_id, left_by_id
FROM (
    SELECT deal_id, created_at, actor_id,
           CASE WHEN kind = 'created' THEN 'intent_spotted' ELSE to_state END AS state,
           LEAD(created_at) OVER (PARTITION BY deal_id ORDER BY created_at, id) AS left_at,
           LEAD(actor_id) OVER (PARTITION BY deal_id ORDER BY created_at, id) AS left_by_id
    FROM deals_dealevent
    WHERE kind IN ('created', 'transition')
      AND deal_id NOT IN (SELECT deal_id FROM deals_dealstay)
) AS ev
"""


class Migration(migrations.Migration):
    dependencies = [("deals", "0004_deal_stays")]

    operations = [migrations.RunSQL(BACKFILL, reverse_sql="DELETE FROM deals_dealstay")]
