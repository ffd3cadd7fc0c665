"""The provisioning state machine of one order (one row per order, keyed by the order id).

```
requested --server_recorded (found or created)--> installing --installed (panel status null)--> ready
    |   ^                                              '--install_failed (failed, gone, deadline)--> failed
    |   '--attempt (the delayed redelivery)--- retry_scheduled
    |--schedule_retry (transient, retries left)--> retry_scheduled
    '--panel_failed (permanent error / retries exhausted)--> failed --operator_replay--> requested
```

``PROVISIONING`` is that diagram as a table; every change of ``status`` goes through it
(``PROVISIONING.transition(row, trigger)``), and the handlers' guards ask it (``allows``), so what may
happen in which state is written once. A few moves the diagram leaves implicit are in the table because
two provisioner instances (or a late duplicate) can interleave: an operator's replay also restarts an
order that is ``requested`` or ``retry_scheduled``; a server found or created is recorded even when
another instance has meanwhile scheduled a retry or failed the order (the server exists: watching it is
the truth); and a permanent failure may end a ``retry_scheduled`` order.

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

from spawnpoint_kit.state_machine import StateMachine


class ProvisioningStatus(StrEnum):
    REQUESTED = "requested"
    RETRY_SCHEDULED = "retry_scheduled"
    INSTALLING = "installing"
    READY = "ready"
    FAILED = "failed"


class ProvisioningTrigger(StrEnum):
    ATTEMPT = "attempt"
    """A delivery works on the panel: the first, a broker redelivery after a crash, the expected delayed retry."""
    OPERATOR_REPLAY = "operator_replay"
    """An operator replayed the dead-lettered message (``spawnctl dlq replay``): start again."""
    SERVER_RECORDED = "server_recorded"
    """The server was found or created on the panel and recorded: watch its installation."""
    SCHEDULE_RETRY = "schedule_retry"
    """The panel is still failing after the in-process retries; a delayed redelivery is parked in the broker."""
    PANEL_FAILED = "panel_failed"
    """A permanent panel error, or the delayed retries ran out."""
    INSTALLED = "installed"
    """The panel reports the installation finished (``status`` null)."""
    INSTALL_FAILED = "install_failed"
    """The installation failed, the server vanished, or the deadline passed."""


_S = ProvisioningStatus
_T = ProvisioningTrigger

PROVISIONING: StateMachine[ProvisioningStatus, ProvisioningTrigger] = StateMachine(
    "provisioning",
    {
        (_S.REQUESTED, _T.ATTEMPT): _S.REQUESTED,
        (_S.RETRY_SCHEDULED, _T.ATTEMPT): _S.REQUESTED,
        (_S.REQUESTED, _T.OPERATOR_REPLAY): _S.REQUESTED,
        (_S.RETRY_SCHEDULED, _T.OPERATOR_REPLAY): _S.REQUESTED,
        (_S.FAILED, _T.OPERATOR_REPLAY): _S.REQUESTED,
        (_S.REQUESTED, _T.SCHEDULE_RETRY): _S.RETRY_SCHEDULED,
        (_S.REQUESTED, _T.PANEL_FAILED): _S.FAILED,
        (_S.RETRY_SCHEDULED, _T.PANEL_FAILED): _S.FAILED,
        (_S.REQUESTED, _T.SERVER_RECORDED): _S.INSTALLING,
        (_S.RETRY_SCHEDULED, _T.SERVER_RECORDED): _S.INSTALLING,
        (_S.FAILED, _T.SERVER_RECORDED): _S.INSTALLING,
        (_S.INSTALLING, _T.INSTALLED): _S.READY,
        (_S.INSTALLING, _T.INSTALL_FAILED): _S.FAILED,
    },
)


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
    SKIP_REFUNDED = "skip_refunded"
    """The order was refunded: nothing is provisioned for it any more."""
    REFUSE_REFUNDED_REPLAY = "refuse_refunded_replay"
    """An operator replayed a refunded order: refused (dead-lettered again with the reason), nothing made."""


def decide(
    status: ProvisioningStatus,
    *,
    seen_replays: int,
    expected_retry_token: uuid.UUID | None,
    delivery_replays: int,
    delivery_retry_token: uuid.UUID | None,
    refunded: bool = False,
) -> Decision:
    if refunded:
        # The money went back: a server would be one nobody pays for.
        return Decision.REFUSE_REFUNDED_REPLAY if delivery_replays > seen_replays else Decision.SKIP_REFUNDED
    if delivery_replays > seen_replays:
        return Decision.REPLAY if PROVISIONING.allows(status, _T.OPERATOR_REPLAY) else Decision.NOTE_REPLAY
    if status == ProvisioningStatus.FAILED:
        return Decision.SKIP_FAILED
    if not PROVISIONING.allows(status, _T.ATTEMPT):
        return Decision.SKIP_DONE  # installing or ready
    if status == ProvisioningStatus.RETRY_SCHEDULED:
        matches = delivery_retry_token is not None and delivery_retry_token == expected_retry_token
        return Decision.PROCEED if matches else Decision.SKIP_STALE
    return Decision.PROCEED
