"""A refunded order gets no server, and the one it has is suspended (finding 8 of the reliability issue).

payment-service refunds an order whose provisioning cannot succeed (``install_failed``, ``install_timeout``,
a permanent refusal) and one whose money came for a closed order. Before, an operator's replay from the
dead-letter queue could still create a server for such an order, and a refunded order's server (an install
that timed out may simply finish) stayed on the panel, owned and usable by the customer.

- ``on_order_refunded`` (the ``provisioner.order-refunded`` queue): the row records ``refunded_at``. From
  then on ``domain.provisioning.decide`` refuses every OrderPaid of the order; an operator's replay is
  dead-lettered again with the reason ``order_refunded``, so ``spawnctl dlq list`` says why.
- ``SuspendRefunded`` (a periodic job): a refunded order's server is suspended on the panel, and
  ``suspended_at`` is recorded only after the panel confirmed it (a read-back, never on the 204 alone). A
  server still installing is left until it is not (suspending it then would be overwritten by the install's
  end, see the reference); a server gone from the panel needs nothing. Removing it for good is the
  termination of the rental lifecycle.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from prometheus_client import Counter

from spawnpoint_contracts import OrderRefunded
from spawnpoint_kit.logs import get_logger, log_context

from ..domain.panel import Panel
from .unit_of_work import ProvisionerUnitOfWork

log = get_logger(__name__)

REFUNDED_SUSPENSIONS = Counter(
    "provisioner_refunded_servers_total",
    "Servers of refunded orders, by what was done (suspended, gone, waiting: still installing, error)",
    ["outcome"],
)


async def on_order_refunded(event: OrderRefunded, uow: ProvisionerUnitOfWork) -> None:
    row = await uow.provisionings.lock(event.order_id)
    if row is None:
        return  # never paid here (money for a closed order): there is nothing to provision or suspend
    if row.refunded_at is None:
        row.refunded_at = event.occurred_at
        row.next_check_at = datetime.now(UTC)  # the server, if any, is suspended at the next round
        row.updated_at = datetime.now(UTC)
        log.info("order refunded: no server will be made for it, and its server is suspended", server=row.server_id)


class SuspendRefunded:
    """One round suspends the servers of refunded orders that are due (``round`` for ``periodic``)."""

    def __init__(self, unit_of_work: Callable[[], ProvisionerUnitOfWork], panel: Panel, *, poll_seconds: float) -> None:
        self._unit_of_work = unit_of_work
        self._panel = panel
        self._poll = poll_seconds

    async def round(self) -> bool:
        async with self._unit_of_work() as uow:
            due = await uow.provisionings.lease_to_suspend(limit=20, lease_seconds=60)
            await uow.commit()
        for order_id in due:
            await self.suspend(order_id)
        return len(due) == 20

    async def suspend(self, order_id: uuid.UUID) -> None:
        async with self._unit_of_work() as uow:
            row = await uow.provisionings.get(order_id)  # a read: leaving closes it, the row stays readable
        if row is None or row.server_id is None or row.suspended_at is not None:
            return
        with log_context(order_id=order_id, correlation_id=row.correlation_id):
            try:
                server = await self._panel.server(row.server_id)
                if server is not None and server.status == "installing":
                    REFUNDED_SUSPENSIONS.labels("waiting").inc()
                    return await self._later(order_id)  # never suspend an install in progress
                if server is not None and server.status != "suspended":
                    await self._panel.suspend(server.id)
                    server = await self._panel.server(server.id)  # confirmed by the panel, not by the 204
                    if server is not None and server.status != "suspended":
                        REFUNDED_SUSPENSIONS.labels("error").inc()
                        log.warning(
                            "the panel did not keep the refunded order's server suspended", status=server.status
                        )
                        return await self._later(order_id)
            except Exception as exc:
                REFUNDED_SUSPENSIONS.labels("error").inc()
                log.warning("could not suspend a refunded order's server; will retry", error=repr(exc)[:300])
                return await self._later(order_id)
            outcome = "gone" if server is None else "suspended"
            async with self._unit_of_work() as uow:
                locked = await uow.provisionings.lock(order_id)
                if locked is not None and locked.suspended_at is None:
                    locked.suspended_at = datetime.now(UTC)
                await uow.commit()
            REFUNDED_SUSPENSIONS.labels(outcome).inc()
            log.info("refunded order's server suspended on the panel", server_id=row.server_id, outcome=outcome)

    async def _later(self, order_id: uuid.UUID) -> None:
        async with self._unit_of_work() as uow:
            row = await uow.provisionings.lock(order_id)
            if row is not None:
                row.next_check_at = datetime.now(UTC) + timedelta(seconds=self._poll)
            await uow.commit()
