"""Signals the contracts app sends, inside the transaction that made the change.

Receivers (the follow-up app) do their database work atomically with it and defer
outside effects with `transaction.on_commit`.
"""

from django.dispatch import Signal

# A contract version went out for signature. kwargs: version, by (User or None)
contract_sent = Signal()
# A version stopped being signable (voided, declined, expired, superseded, or sending it
# failed for good; a retry sends contract_sent again). kwargs: version
contract_withdrawn = Signal()
# The buyer opened a version for the first time (built-in link). kwargs: version
contract_viewed = Signal()
# A version was signed. kwargs: version, closed_before (the deal was already closed, so the
# signature did not win it: someone must look at it)
contract_signed = Signal()
