"""What the provisioner's events mean for the money: refunds for servers that will never exist.

payment-service consumes ``ProvisionFailed`` and the signs of provisioning progress (``ServerCreated``,
``ServerInstalled``, ``ProvisioningReplayed``) from its queue ``payment-service.provision-failed``. Each
message is handled in one transaction with its inbox row (the event id), so a redelivery does nothing.

- ``ProvisionFailed``: the latest failure is recorded on the payment. If it is one a replay cannot fix
  (``replayable == False``), the order is paid, its server was never installed, and nothing newer has
  happened, a refund of the order's payment is scheduled according to ``REFUND_POLICY``
  (``domain.refunds``). A replayable failure waits for the operator.
- progress: recorded (the newest ``occurred_at`` wins, so arrival order does not matter); a held refund
  caused by an older failure is cancelled. An order whose server was installed is never refunded
  automatically.

The refund worker re-checks the same rule when the refund comes due, so an operator's successful replay
during the hold period means no refund, even if its events are processed late.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from spawnpoint_contracts import Event, ProvisionFailed, ProvisioningReplayed, ServerCreated, ServerInstalled
from spawnpoint_kit.logs import get_logger
from spawnpoint_kit.messaging import inbox
from spawnpoint_kit.messaging.consumer import Delivery

from ..domain.refunds import RefundKind, RefundPolicy, RefundReason, order_refund_key, refund_due_at, refund_warranted
from ..metrics import REFUNDS
from . import refunds
from .fulfilment import lock_payment

log = get_logger(__name__)

CONSUMER = "payment-service:provisioning"

ProgressEvent = ServerCreated | ServerInstalled | ProvisioningReplayed


class ProvisioningEvents:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, policy: RefundPolicy, hold: timedelta) -> None:
        self._sessions = sessions
        self._policy = policy
        self._hold = hold

    async def handle(self, event: Event, delivery: Delivery) -> None:
        """Entry point for the queue consumer (other event types are acknowledged and ignored)."""
        if isinstance(event, ProvisionFailed):
            await self.on_failed(event)
        elif isinstance(event, ServerCreated | ServerInstalled | ProvisioningReplayed):
            await self.on_progress(event)

    async def on_failed(self, event: ProvisionFailed) -> str:
        async with self._sessions() as session:
            if not await inbox.claim(
                session, CONSUMER, str(event.event_id), event_type=event.event_type, order_id=event.order_id
            ):
                await session.commit()
                return "duplicate"
            payment = await lock_payment(session, event.order_id)
            if payment is None:
                await session.commit()
                log.warning("ProvisionFailed for an order this service never saw; ignored")
                return "unknown_order"
            if payment.provision_failed_at is None or event.occurred_at >= payment.provision_failed_at:
                payment.provision_failed_at = event.occurred_at
                payment.provision_failure_reason = event.payload.reason.value
                payment.provision_failure_replayable = event.payload.replayable
                session.add(payment)
            outcome = "not_refunded"
            facts = refunds.provisioning_facts(payment)
            now = datetime.now(UTC)
            due = refund_due_at(self._policy, self._hold, event.occurred_at, now)
            if refund_warranted(facts) and facts.failed_at == event.occurred_at and due is not None:
                scheduled = await refunds.schedule(
                    session,
                    refunds.RefundRequest(
                        order_id=payment.order_id,
                        key=order_refund_key(payment.order_id),
                        kind=RefundKind.ORDER,
                        reason=RefundReason.PROVISIONING_FAILED,
                        session_id=payment.paid_session_id,
                        payment_intent=payment.payment_intent,
                        amount=payment.amount,
                        currency=payment.currency,
                        due_at=due,
                        cause_at=event.occurred_at,
                    ),
                )
                outcome = "scheduled" if scheduled else "already_scheduled"
            else:
                REFUNDS.labels(RefundReason.PROVISIONING_FAILED.value, "not_refunded").inc()
            await session.commit()
        log.info(
            "provisioning failure recorded",
            reason=event.payload.reason.value,
            replayable=event.payload.replayable,
            policy=self._policy.value,
            refund=outcome,
        )
        return outcome

    async def on_progress(self, event: ProgressEvent) -> str:
        async with self._sessions() as session:
            if not await inbox.claim(
                session, CONSUMER, str(event.event_id), event_type=event.event_type, order_id=event.order_id
            ):
                await session.commit()
                return "duplicate"
            payment = await lock_payment(session, event.order_id)
            if payment is None:
                await session.commit()
                return "unknown_order"
            if payment.provision_progress_at is None or event.occurred_at > payment.provision_progress_at:
                payment.provision_progress_at = event.occurred_at
            if isinstance(event, ServerInstalled) and payment.server_installed_at is None:
                payment.server_installed_at = event.occurred_at
            session.add(payment)
            cancelled = await refunds.cancel_provisioning_refund(
                session, payment.order_id, progress_at=payment.provision_progress_at or event.occurred_at
            )
            if payment.server_installed_at is not None:
                cancelled += await refunds.cancel_provisioning_refund(
                    session, payment.order_id, progress_at=datetime.max.replace(tzinfo=UTC)
                )
            await session.commit()
        return "cancelled_refund" if cancelled else "recorded"
