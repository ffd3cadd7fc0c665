"""payment-service's handler tables: what each stored Stripe event and each provisioning event does.

Both are registered in ``bootstrap.py``: the Stripe table with the stored-event runner
(``service_layer.stored_events``), the provisioning table as a ``Subscription`` on
``payment-service.provision-failed``. They are built by functions only because some handlers carry
configuration (the channel a fulfilment is counted under, the refund policy) bound with ``partial``.
"""

from __future__ import annotations

from functools import partial

from spawnpoint_contracts import ProvisionFailed, ProvisioningReplayed, ServerCreated, ServerInstalled
from spawnpoint_kit.messaging.handlers import HandlerTable

from ..domain.refunds import RefundRules
from ..domain.stripe_events import ASYNC_FAILED, ASYNC_SUCCEEDED, COMPLETED, EXPIRED
from .fulfilment import Fulfilment, expire, fail
from .provisioning import on_failed, on_progress
from .stored_events import StripeHandlers
from .unit_of_work import PaymentUnitOfWork


def stripe_handlers(fulfilment: Fulfilment) -> StripeHandlers:
    """STRIPE_HANDLERS: the stored event's type -> what its freshly retrieved session does. (A session
    Stripe reports paid is fulfilled whatever the type: ``domain.stripe_events.handled_as``.)"""
    fulfil = partial(fulfilment.fulfil, via="webhook")
    return {
        COMPLETED: fulfil,  # complete and paid: OrderPaid; complete and unpaid: PaymentProcessing
        ASYNC_SUCCEEDED: fulfil,
        ASYNC_FAILED: fail,
        EXPIRED: expire,
    }


def provisioning_handlers(rules: RefundRules) -> HandlerTable[PaymentUnitOfWork]:
    """The provisioner's outcomes -> the refund policy (``service_layer.provisioning``)."""
    return {
        ProvisionFailed: [partial(on_failed, rules=rules)],
        ServerCreated: [on_progress],
        ServerInstalled: [on_progress],
        ProvisioningReplayed: [on_progress],
    }
