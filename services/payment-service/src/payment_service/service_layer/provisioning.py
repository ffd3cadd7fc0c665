"""What the provisioner's events mean for the money: refunds for servers that will never exist.

payment-service consumes ``ProvisionFailed`` and the signs of provisioning progress (``ServerCreated``,
``ServerInstalled``, ``ProvisioningReplayed``) from its queue ``payment-service.provision-failed``. The
handler table (``service_layer.handlers.provisioning_handlers``) is registered as a ``Subscription`` with
the inbox consumer ``CONSUMER``: the kit runs each message's handler in one unit of work with its inbox row
(the event id), so a redelivery does nothing.

- ``on_failed``: the latest failure is recorded on the payment. If it is one a replay cannot fix
  (``replayable == False``), the order is paid, its server was never installed, and nothing newer has
  happened, a refund of the order's payment is scheduled according to ``REFUND_POLICY``
  (``domain.refunds``). A replayable failure waits for the operator.
- ``on_progress``: recorded (the newest ``occurred_at`` wins, so arrival order does not matter); a held
  refund caused by an older failure is cancelled. An order whose server was installed is never refunded
  automatically.

The refund worker re-checks the same rule when the refund comes due, so an operator's successful replay
during the hold period means no refund, even if its events are processed late.
"""

from __future__ import annotations

from datetime import UTC, datetime

from spawnpoint_contracts import ProvisionFailed, ProvisioningReplayed, ServerCreated, ServerInstalled
from spawnpoint_kit.logs import get_logger

from ..domain.refunds import (
    RefundKind,
    RefundReason,
    RefundRules,
    order_refund_key,
    refund_due_at,
    refund_warranted,
)
from ..metrics import REFUNDS
from . import refunds
from .unit_of_work import PaymentUnitOfWork

log = get_logger(__name__)

CONSUMER = "payment-service:provisioning"
"""The inbox's consumer name for this queue (kept from before the handler table: the recorded keys stay valid)."""

ProgressEvent = ServerCreated | ServerInstalled | ProvisioningReplayed


async def on_failed(event: ProvisionFailed, uow: PaymentUnitOfWork, *, rules: RefundRules) -> None:
    """Record the failure; schedule the order's refund when the rule and the policy say so."""
    payment = await uow.payments.lock(event.order_id)
    if payment is None:
        log.warning("ProvisionFailed for an order this service never saw; ignored")
        return
    if payment.provision_failed_at is None or event.occurred_at >= payment.provision_failed_at:
        payment.provision_failed_at = event.occurred_at
        payment.provision_failure_reason = event.payload.reason.value
        payment.provision_failure_replayable = event.payload.replayable
    outcome = "not_refunded"
    facts = refunds.provisioning_facts(payment)
    due = refund_due_at(rules.policy, rules.hold, event.occurred_at, datetime.now(UTC))
    if refund_warranted(facts) and facts.failed_at == event.occurred_at and due is not None:
        scheduled = await refunds.schedule(
            uow,
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
    log.info(
        "provisioning failure recorded",
        reason=event.payload.reason.value,
        replayable=event.payload.replayable,
        policy=rules.policy.value,
        refund=outcome,
    )


async def on_progress(event: ProgressEvent, uow: PaymentUnitOfWork) -> None:
    """Record the progress; cancel a held refund that an older failure caused."""
    payment = await uow.payments.lock(event.order_id)
    if payment is None:
        return
    if payment.provision_progress_at is None or event.occurred_at > payment.provision_progress_at:
        payment.provision_progress_at = event.occurred_at
    if isinstance(event, ServerInstalled) and payment.server_installed_at is None:
        payment.server_installed_at = event.occurred_at
    if payment.provision_failed_at is None:
        # No failure recorded: no provisioning refund exists (``on_failed`` records the failure in the
        # transaction that schedules one), so there is none to cancel and nothing to look up. The happy path
        # of every order (ServerCreated, ServerInstalled) stops here.
        return
    # An installed server supersedes every failure, whatever its time: one look at the order's refund either way.
    if payment.server_installed_at is not None:
        progress_at = datetime.max.replace(tzinfo=UTC)
    else:
        progress_at = payment.provision_progress_at or event.occurred_at
    await refunds.cancel_provisioning_refund(uow, payment.order_id, progress_at=progress_at)
