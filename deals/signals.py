"""Signals the deals app sends for other apps to react to.

`deal_state_changed` is sent inside the transaction that changed the state, so
receivers can make their own database writes atomically with it (the follow-up
app cancels reminders of a closed deal). Receivers with outside effects must
defer them with `transaction.on_commit`.
"""

from django.dispatch import Signal

# kwargs: deal, event (DealEvent), by (User or None)
deal_state_changed = Signal()

# The deal got a new owner. kwargs: deal, previous_owner (User), by (User or None).
# Sent by the service that reassigns deals (the notifications app tells the new owner).
deal_reassigned = Signal()
