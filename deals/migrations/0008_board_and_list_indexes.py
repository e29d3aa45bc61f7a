"""Indexes move into Meta.indexes (issue 13), and the board and lists get theirs.

- ask_asked_at and deal_team_closed were created by raw SQL in 0003 with the same
  definitions: they enter the migration state only (no rebuild).
- event_transition_time and event_state_history served time in state over the audit log;
  it now reads the stays table (0006), so they are dropped.
- deal_board_* / deal_list_*: partial indexes (archived deals are never listed) in the
  board's and the deal list's order: close date, then id; per team, per owner, for all.
"""

from django.db import migrations, models

NOT_ARCHIVED = models.Q(("archived_at__isnull", True))


class Migration(migrations.Migration):
    dependencies = [("deals", "0007_deal_stays_backfill")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(
                    model_name="ask",
                    index=models.Index(fields=["asked_at"], name="ask_asked_at"),
                ),
                migrations.AddIndex(
                    model_name="deal",
                    index=models.Index(fields=["team", "closed_at"], name="deal_team_closed"),
                ),
            ],
        ),
        migrations.RunSQL(
            "DROP INDEX IF EXISTS event_transition_time",
            reverse_sql="CREATE INDEX IF NOT EXISTS event_transition_time ON deals_dealevent "
            "(created_at, deal_id) WHERE kind = 'transition'",
        ),
        migrations.RunSQL(
            "DROP INDEX IF EXISTS event_state_history",
            reverse_sql="CREATE INDEX IF NOT EXISTS event_state_history ON deals_dealevent "
            "(deal_id, created_at, id, kind, to_state) WHERE kind IN ('created', 'transition')",
        ),
        migrations.AddIndex(
            model_name="deal",
            index=models.Index(
                condition=NOT_ARCHIVED,
                fields=["team", "state", "expected_close_date", "id"],
                name="deal_board_team",
            ),
        ),
        migrations.AddIndex(
            model_name="deal",
            index=models.Index(
                condition=NOT_ARCHIVED,
                fields=["owner", "state", "expected_close_date", "id"],
                name="deal_board_owner",
            ),
        ),
        migrations.AddIndex(
            model_name="deal",
            index=models.Index(
                condition=NOT_ARCHIVED,
                fields=["state", "expected_close_date", "id"],
                name="deal_board_all",
            ),
        ),
        migrations.AddIndex(
            model_name="deal",
            index=models.Index(
                condition=NOT_ARCHIVED,
                fields=["team", "expected_close_date", "id"],
                name="deal_list_team",
            ),
        ),
        migrations.AddIndex(
            model_name="deal",
            index=models.Index(
                condition=NOT_ARCHIVED, fields=["expected_close_date", "id"], name="deal_list_all"
            ),
        ),
    ]
