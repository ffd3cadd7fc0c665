"""The billing composition root: builds the billing services over one shared state.

The fake (``fake.StripeFake``) owns one :class:`Billing`; the routes reach the services through it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from stripe_fake.billing.catalog import CatalogService
from stripe_fake.billing.checkout import CheckoutBilling
from stripe_fake.billing.customers import CustomerService
from stripe_fake.billing.disputes import DisputeService
from stripe_fake.billing.invoices import InvoiceService
from stripe_fake.billing.invoicing import Invoicing
from stripe_fake.billing.portal import PortalService
from stripe_fake.billing.refunds import BillingRefundHooks, ChargeService
from stripe_fake.billing.renewals import RenewalProcessor
from stripe_fake.billing.settings import BillingSettings
from stripe_fake.billing.state import BillingState
from stripe_fake.billing.store import BillingStore
from stripe_fake.billing.subscriptions import SubscriptionService
from stripe_fake.billing.test_clocks import Spawn, TestClockService
from stripe_fake.clock import FakeClock
from stripe_fake.events import Emitter
from stripe_fake.payments import PaymentService
from stripe_fake.store import Store


class Billing:
    """Every billing service, wired together."""

    def __init__(
        self,
        payments_store: Store,
        payments: PaymentService,
        clock: FakeClock,
        emitter: Emitter,
        settings: BillingSettings,
        spawn: Spawn,
    ) -> None:
        self.store = BillingStore()
        self.state = BillingState(self.store, payments_store, clock, emitter, settings)
        self.invoicing = Invoicing(self.state)
        self.catalog = CatalogService(self.state)
        self.customers = CustomerService(self.state)
        self.subscriptions = SubscriptionService(self.state, self.invoicing, self.catalog)
        self.renewals = RenewalProcessor(self.state, self.invoicing, self.subscriptions)
        self.test_clocks = TestClockService(self.state, self.renewals, spawn)
        self.invoices = InvoiceService(self.state, self.invoicing, self.customers)
        self.disputes = DisputeService(self.state, self._defer)
        self.invoicing.after_successful_charge.append(self.disputes.after_successful_charge)
        self.refund_hooks = BillingRefundHooks(self.state)
        payments.hooks = self.refund_hooks
        self.charges = ChargeService(self.state, payments, self.refund_hooks)
        self.portal = PortalService(self.state, self.customers, self.subscriptions, self.invoices)
        self.checkout = CheckoutBilling(self.state, self.catalog, self.customers, self.subscriptions)
        self._spawn = spawn

    def _defer(self, action: Callable[[], None]) -> None:
        """Run ``action`` on the event loop once the current operation (request, clock step) is over."""

        async def later() -> None:
            await asyncio.sleep(0)
            action()

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            action()
            return
        self._spawn(later())

    @property
    def settings(self) -> BillingSettings:
        """The dunning settings in force."""
        return self.state.settings

    @settings.setter
    def settings(self, value: BillingSettings) -> None:
        self.state.settings = value

    def run_fake_clock(self) -> int:
        """Process what is due for objects on the fake's own clock (not on a test clock)."""
        return self.renewals.run(None, self.state.clock.now_int())

    def reset(self) -> None:
        """Forget all billing data; settings back to the configuration."""
        self.state.reset()
