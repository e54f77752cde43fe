"""The payments engine: moves one transaction forward, as far as it can go right now.

`Engine.advance(id)` is the only entry point — for the job enqueued by the API, a webhook, the
reconciliation sweep and a redelivered message alike. It is safe to run twice and
concurrently: a lease (a lock with a TTL, renewed before each gateway call) lets one worker
own a payment; the row's status only moves by compare-and-set; identifiers sent to gateways
derive from the transaction id, so a repeat finds the first operation; and money moves only
in the same database transaction as the status change that accounts for it.

Gateway calls never happen inside a database transaction. Before a cash-out or refund call,
the row records which gateway is about to be used (committed first), so whoever resumes the
payment after a crash asks that gateway before doing anything else.

Where things are:

- ``advance.py``   the entry point: lease, a step run again after a deadlock
- ``flows.py``     the flow per type, run from the row a run has read
- ``batch.py``     many payments looked at together; paid deposits credited in one COMMIT
- ``run.py``       one ownership of one transaction: the row, lease renewal, writes, calls
- ``attempts.py``  the attempt rows of a run (written, unwritten, announced, answered)
- ``loop.py``      the one retry loop, asking ``payments/retry.py``'s table what comes next
- ``cash_in.py``   a deposit: the charge created, watched, expired, credited
- ``cash_out.py``  a withdrawal: the Pix sent, settled or failed
- ``refund.py``    a refund: through the deposit's gateway, then the deposit marked
- ``endings.py``   failed, settled, needs review, look again later — shared by the flows
- ``settings.py``  the settings the engine reads
"""

from pixwave.payments.engine.advance import Engine
from pixwave.payments.engine.endings import gateway_account_code
from pixwave.payments.engine.run import BrokenInvariant
from pixwave.payments.engine.settings import EngineSettings

__all__ = ["BrokenInvariant", "Engine", "EngineSettings", "gateway_account_code"]
