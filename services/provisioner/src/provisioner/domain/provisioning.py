"""The provisioning state machine of one order (one row per order, keyed by the order id).

```
requested --server found or created--> installing --panel status null--> ready
    |   ^                                   |--install_failed / deadline--> failed
    |   '--delayed redelivery--- retry_scheduled
    |--transient, retries left--> retry_scheduled
    '--permanent error / retries exhausted--> failed --operator replay--> requested
```

The row is the business-key guard that makes a redelivered or duplicated OrderPaid harmless: once an
order is ``installing`` or ``ready`` nothing creates a server for it again, and the panel's own
``external_id`` uniqueness (the order id) covers the window before the row records the server.

``decide`` says what to do with one delivery of an order's OrderPaid given the row: the first delivery,
a broker redelivery after a crash, a delayed retry (it carries the retry token the row expects), a stale
duplicate (ignored), or an operator's replay (it carries a higher ``x-replay-count`` than the row has seen).
"""

from __future__ import annotations

import uuid
from enum import StrEnum


class ProvisioningStatus(StrEnum):
    REQUESTED = "requested"
    RETRY_SCHEDULED = "retry_scheduled"
    INSTALLING = "installing"
    READY = "ready"
    FAILED = "failed"


DONE_OR_IN_PROGRESS = frozenset({ProvisioningStatus.INSTALLING, ProvisioningStatus.READY})
"""States in which another OrderPaid for the order must not touch the panel."""


class Decision(StrEnum):
    PROCEED = "proceed"
    """Work on the panel (first delivery, redelivery after a crash, the expected delayed retry)."""
    REPLAY = "replay"
    """An operator's replay: record it in the order's history, then work on the panel."""
    NOTE_REPLAY = "note_replay"
    """An operator replayed an order that is already done: record the replay, do nothing else."""
    SKIP_DONE = "skip_done"
    SKIP_FAILED = "skip_failed"
    """Failed before; only an operator's replay starts it again."""
    SKIP_STALE = "skip_stale"
    """A duplicate of a message whose delayed retry is pending: the retry will do the work."""


def decide(
    status: ProvisioningStatus,
    *,
    seen_replays: int,
    expected_retry_token: uuid.UUID | None,
    delivery_replays: int,
    delivery_retry_token: uuid.UUID | None,
) -> Decision:
    if delivery_replays > seen_replays:
        return Decision.NOTE_REPLAY if status in DONE_OR_IN_PROGRESS else Decision.REPLAY
    if status in DONE_OR_IN_PROGRESS:
        return Decision.SKIP_DONE
    if status == ProvisioningStatus.FAILED:
        return Decision.SKIP_FAILED
    if status == ProvisioningStatus.RETRY_SCHEDULED:
        matches = delivery_retry_token is not None and delivery_retry_token == expected_retry_token
        return Decision.PROCEED if matches else Decision.SKIP_STALE
    return Decision.PROCEED
