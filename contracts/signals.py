"""Signals the contracts app sends, inside the transaction that made the change.

Receivers (the follow-up app) do their database work atomically with it and defer
outside effects with `transaction.on_commit`.
"""

from django.dispatch import Signal

# A contract version reached the buyer (the provider accepted it: the email left, the
# envelope exists); follow-ups start here and never before.
# kwargs: version, by (User or None)
contract_sent = Signal()
# A version stopped being signable (voided, declined, expired, superseded, or sending it
# failed for good; a retry that succeeds sends contract_sent again).
# kwargs: version, reason (optional, plain words for the follow-ups' timeline line,
# e.g. "the deal is lost")
contract_withdrawn = Signal()
# An accepted concession produced the next version (a draft): the rep must send it today.
# kwargs: version, by (User or None)
contract_revision_ready = Signal()
# A signature arrived for a deal no longer open, or for a version already withdrawn: it
# changed nothing by itself and someone must decide. kwargs: version (its deal loaded)
contract_signed_late = Signal()
# The buyer opened a version for the first time (built-in link). kwargs: version
contract_viewed = Signal()
# A version was signed. kwargs: version, closed_before (the deal was already closed, so the
# signature did not win it: someone must look at it)
contract_signed = Signal()
