"""Indexes the dashboard benchmarks called for (see README, Benchmarks).

Raw SQL because two are partial indexes over the audit log that only the dashboards
read; the statements run unchanged on SQLite and PostgreSQL.

- event_transition_time: transitions by time (which deals moved in a period).
- event_state_history: each deal's created/transition events in order, with the columns
  the time-in-state window function reads (index-only on PostgreSQL).
- deal_team_closed: deals closed in a period, per team (close rate, loss reasons, reps).
- ask_asked_at: asks recorded in a period (reps side by side).
"""

from django.db import migrations

INDEXES = {
    "event_transition_time": ("deals_dealevent (created_at, deal_id) WHERE kind = 'transition'"),
    "event_state_history": (
        "deals_dealevent (deal_id, created_at, id, kind, to_state) "
        "WHERE kind IN ('created', 'transition')"
    ),
    "deal_team_closed": "deals_deal (team_id, closed_at)",
    "ask_asked_at": "deals_ask (asked_at)",
}


class Migration(migrations.Migration):
    dependencies = [("deals", "0002_stage_settings")]

    operations = [
        migrations.RunSQL(
            sql=f"CREATE INDEX IF NOT EXISTS {name} ON {definition}",
            reverse_sql=f"DROP INDEX IF EXISTS {name}",
        )
        for name, definition in INDEXES.items()
    ]
