"""The provisioning state machine of one order (one row per order, keyed by the order id).

```
requested --server found or created--> installing --panel status null--> ready
    |                                       |--install_failed / deadline--> failed
    '--permanent error / retries exhausted--> failed --operator replay--> requested
```

The row is the business-key guard that makes a redelivered or duplicated OrderPaid harmless: once an
order is ``installing`` or ``ready`` nothing creates a server for it again, and the panel's own
``external_id`` uniqueness (the order id) covers the window before the row records the server.
"""

from __future__ import annotations

from enum import StrEnum


class ProvisioningStatus(StrEnum):
    REQUESTED = "requested"
    INSTALLING = "installing"
    READY = "ready"
    FAILED = "failed"


DONE_OR_IN_PROGRESS = frozenset({ProvisioningStatus.INSTALLING, ProvisioningStatus.READY})
"""States in which another OrderPaid for the order must not touch the panel."""
