"""The provisioner's consumer: OrderPaid from ``provisioner.order-paid``, as a kit ``Subscription``.

The table names only OrderPaid, so anything else on the queue (a wrong binding) is dead-lettered by the
kit with the reason ``unexpected_event``. The handler owns its transactions (it calls the panel between
two of them, see ``service_layer/provision.py``), so the kit hands it the unit of work unopened, with
the delivery on ``uow.delivery``; the message is acknowledged after the handler's last commit.
"""

from __future__ import annotations

from collections.abc import Callable

from spawnpoint_contracts import DesiredServerStateChanged, OrderPaid, OrderRefunded
from spawnpoint_kit.messaging.handlers import Subscription

from ..queues import PROVISIONER_DESIRED_STATE, PROVISIONER_ORDER_PAID, PROVISIONER_ORDER_REFUNDED
from ..service_layer.converge import ConvergeServer
from ..service_layer.provision import CONSUMER, ProvisionOrderPaid
from ..service_layer.refunded import on_order_refunded
from ..service_layer.unit_of_work import ProvisionerUnitOfWork


def order_refunded_subscription(
    unit_of_work: Callable[[], ProvisionerUnitOfWork],
) -> Subscription[ProvisionerUnitOfWork]:
    """``provisioner.order-refunded``: a refunded order is never provisioned again (``service_layer/refunded.py``)."""
    return Subscription(PROVISIONER_ORDER_REFUNDED, {OrderRefunded: [on_order_refunded]}, unit_of_work=unit_of_work)


def order_paid_subscription(
    provision: ProvisionOrderPaid, unit_of_work: Callable[[], ProvisionerUnitOfWork]
) -> Subscription[ProvisionerUnitOfWork]:
    return Subscription(
        PROVISIONER_ORDER_PAID,
        {OrderPaid: [provision]},
        unit_of_work=unit_of_work,
        consumer=CONSUMER,
        own_transactions=True,
    )


def desired_state_subscription(
    converge: ConvergeServer, unit_of_work: Callable[[], ProvisionerUnitOfWork]
) -> Subscription[ProvisionerUnitOfWork]:
    """``provisioner.desired-state``: the panel made to match the rental (``service_layer/converge.py``).
    No inbox: the same event sent again (an install ended, a replay) must converge again."""
    return Subscription(
        PROVISIONER_DESIRED_STATE,
        {DesiredServerStateChanged: [converge]},
        unit_of_work=unit_of_work,
        own_transactions=True,
    )
