"""Queue consumers of payment-service: the provisioner's outcomes, for the refund policy.

One queue, ``payment-service.provision-failed``, bound to ``ProvisionFailed`` and to the events that show
provisioning progressing (``ServerCreated``, ``ServerInstalled``, ``ProvisioningReplayed``): a held
refund must be cancelled when an operator's replay succeeds. Parsing, dead-lettering and redelivery are
the kit's (``spawnpoint_kit.messaging.consumer``).
"""

from __future__ import annotations

from spawnpoint_kit.messaging.queues import PAYMENT_PROVISION_FAILED
from spawnpoint_kit.runtime import ServiceRuntime

from ..service_layer.provisioning import ProvisioningEvents


def register(runtime: ServiceRuntime, handlers: ProvisioningEvents) -> None:
    runtime.consume(PAYMENT_PROVISION_FAILED, handlers.handle)
