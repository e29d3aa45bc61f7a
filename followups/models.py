"""Cadences, reminders and rep tasks (see followups/services.py)."""
