"""The invoice state machine: draft → open → paid (or uncollectible / void), and its events.

``finalize`` numbers the invoice, snapshots the subscription's metadata into
``parent.subscription_details.metadata`` and applies the customer's credit balance; an invoice with
nothing due is paid on the spot (``invoice.paid`` → ``invoice.payment_succeeded``, no payment).
``attempt`` charges the card: on success ``invoice.paid`` → ``invoice.payment_succeeded`` →
``invoice_payment.paid`` and a waiting subscription becomes ``active``; on failure
``invoice.payment_failed`` and, for the first automatic failure of an active subscription,
``past_due``, then the dunning terminal action once the retries run out.
"""

from __future__ import annotations

from collections.abc import Callable

from stripe_fake import ids
from stripe_fake.billing import dunning, lifecycle
from stripe_fake.billing.charging import ChargeResult, charge_invoice, payment_method_for
from stripe_fake.billing.objects import (
    Customer,
    Invoice,
    InvoiceItem,
    InvoiceLine,
    PaymentMethod,
    Price,
    Subscription,
)
from stripe_fake.billing.state import BillingState
from stripe_fake.events import AUTOMATIC, RequestInfo
from stripe_fake.models import Charge
from stripe_fake.payments import format_amount

WAITING_FOR_PAYMENT = frozenset({"incomplete", "past_due", "unpaid"})
ChargeHook = Callable[[Charge, PaymentMethod, int], None]


class Invoicing:
    """Builds invoices and moves them through their states."""

    def __init__(self, state: BillingState) -> None:
        self.state = state
        self.after_successful_charge: list[ChargeHook] = []
        """Called after a charge succeeded and its events went out (the dispute cards hook in here)."""

    # --- building ---------------------------------------------------------------------------------

    def draft(
        self,
        customer: Customer,
        sub: Subscription | None,
        reason: str,
        *,
        at: int,
        period_start: int,
        period_end: int,
        currency: str,
    ) -> Invoice:
        """A new draft invoice (becomes the subscription's ``latest_invoice``)."""
        invoice = Invoice(
            id=ids.new_id("in_1", 23),
            customer=customer.id,
            subscription=sub.id if sub is not None else None,
            billing_reason=reason,
            created=at,
            currency=currency,
            period_start=period_start,
            period_end=period_end,
            test_clock=customer.test_clock,
            customer_email=customer.email,
            customer_name=customer.name,
            subscription_metadata=dict(sub.metadata) if sub is not None else {},
            finalize_at=at + self.state.settings.finalize_delay_seconds,
        )
        self.state.store.invoices[invoice.id] = invoice
        if sub is not None:
            sub.latest_invoice = invoice.id
        return invoice

    def add_period_lines(self, invoice: Invoice, sub: Subscription, start: int, end: int, *, trial: bool) -> None:
        """One line per subscription item for the service period ``[start, end)``."""
        for item in sub.items:
            name = self.product_name(item.price)
            if trial:
                description = f"Trial period for {name}"
            else:
                unit = format_amount(item.price.unit_amount, item.price.currency)
                description = f"{item.quantity} × {name} (at {unit} / {sub.interval})"
            invoice.lines.append(
                InvoiceLine(
                    id=ids.new_id("il_1", 23),
                    invoice=invoice.id,
                    amount=0 if trial else item.amount,
                    currency=invoice.currency,
                    description=description,
                    period_start=start,
                    period_end=end,
                    price=item.price,
                    quantity=item.quantity,
                    subscription=sub.id,
                    subscription_item=item.id,
                )
            )

    def add_one_time_line(self, invoice: Invoice, price: Price, quantity: int, at: int) -> None:
        """A one-time price billed on this invoice only (through an invoice item, as Stripe does)."""
        item = InvoiceItem(
            id=ids.new_id("ii_1", 23),
            customer=invoice.customer,
            amount=price.unit_amount * quantity,
            currency=invoice.currency,
            description=self.product_name(price),
            period_start=at,
            period_end=at,
            price=price,
            quantity=quantity,
            created=at,
            subscription=invoice.subscription,
            subscription_item=None,
            proration=False,
            test_clock=invoice.test_clock,
            invoice=invoice.id,
        )
        self.state.store.invoice_items[item.id] = item
        invoice.lines.append(self._line_from_item(invoice, item))

    def attach_pending_items(self, invoice: Invoice) -> None:
        """Pick up the pending invoice items (prorations) of the invoice's subscription."""
        for item in self.state.store.invoice_items.values():
            if item.invoice is None and item.customer == invoice.customer and item.subscription == invoice.subscription:
                item.invoice = invoice.id
                invoice.lines.append(self._line_from_item(invoice, item))

    def pending_items(self, sub: Subscription) -> list[InvoiceItem]:
        """A subscription's invoice items not yet on an invoice."""
        return [i for i in self.state.store.invoice_items.values() if i.invoice is None and i.subscription == sub.id]

    def product_name(self, price: Price) -> str:
        """The name of a price's product, for line descriptions."""
        product = self.state.store.products.get(price.product)
        return product.name if product is not None else price.product

    def _line_from_item(self, invoice: Invoice, item: InvoiceItem) -> InvoiceLine:
        return InvoiceLine(
            id=ids.new_id("il_1", 23),
            invoice=invoice.id,
            amount=item.amount,
            currency=item.currency,
            description=item.description,
            period_start=item.period_start,
            period_end=item.period_end,
            price=item.price,
            quantity=item.quantity,
            subscription=item.subscription,
            subscription_item=item.subscription_item,
            invoice_item=item.id,
            proration=item.proration,
        )

    # --- state changes ----------------------------------------------------------------------------

    def emit(self, event_type: str, invoice: Invoice, *, at: int, request: RequestInfo = AUTOMATIC) -> None:
        """An ``invoice.*`` event with a snapshot of the invoice."""
        self.state.emit(event_type, invoice.to_dict(), at=at, request=request)

    def finalize(self, invoice: Invoice, *, at: int, request: RequestInfo = AUTOMATIC) -> None:
        """draft → open (``invoice.finalized``); an invoice with nothing due is paid right away."""
        store = self.state.store
        customer = store.customers[invoice.customer]
        sub = store.subscriptions.get(invoice.subscription or "")
        invoice.status = "open"
        invoice.finalized_at = at
        invoice.finalize_at = None
        invoice.number = f"{customer.invoice_prefix}-{customer.next_invoice_sequence:04d}"
        customer.next_invoice_sequence += 1
        if sub is not None:
            invoice.subscription_metadata = dict(sub.metadata)
        self._apply_balance(invoice, customer)
        self.emit("invoice.finalized", invoice, at=at, request=request)
        if invoice.amount_due == 0:
            invoice.status = "paid"
            invoice.paid_at = at
            invoice.attempted = True
            invoice.next_payment_attempt = None
            self.emit("invoice.paid", invoice, at=at, request=request)
            self.emit("invoice.payment_succeeded", invoice, at=at, request=request)
            self._subscription_after_paid(invoice, at=at, request=request)

    def finalize_and_collect(self, invoice: Invoice, *, at: int, request: RequestInfo = AUTOMATIC) -> None:
        """Finalize, then make the first automatic attempt if something is due."""
        self.finalize(invoice, at=at, request=request)
        if invoice.status == "open" and invoice.amount_remaining > 0:
            self.attempt(invoice, at=at, request=request, automatic=True)

    def attempt(
        self,
        invoice: Invoice,
        *,
        at: int,
        request: RequestInfo = AUTOMATIC,
        automatic: bool,
        payment_method: PaymentMethod | None = None,
    ) -> ChargeResult:
        """Charge the invoice once (an automatic attempt or retry, or a manual ``pay``)."""
        store = self.state.store
        pm = payment_method or payment_method_for(self.state, invoice)
        result = charge_invoice(self.state, invoice, pm, at)
        invoice.attempted = True
        customer = store.customers[invoice.customer]
        if result.succeeded:
            dunning.count_success(invoice, automatic=automatic)
            self._mark_paid(invoice, at=at, request=request)
            customer.delinquent = False
            if result.charge is not None and result.payment_method is not None:
                for hook in self.after_successful_charge:
                    hook(result.charge, result.payment_method, at)
            return result
        first_automatic = automatic and invoice.first_failure_at is None
        exhausted = dunning.record_failure(self.state.settings, invoice, at, automatic=automatic)
        if automatic:
            customer.delinquent = True
        self.emit("invoice.payment_failed", invoice, at=at, request=request)
        sub = store.subscriptions.get(invoice.subscription or "")
        if first_automatic and sub is not None and sub.status in ("active", "trialing"):
            lifecycle.set_status(self.state, sub, "past_due", at=at, request=request)
        if exhausted:
            if self.state.settings.invoice_action == "uncollectible":
                self.mark_uncollectible(invoice, at=at, reason="max_payment_attempts")
            dunning.apply_subscription_action(self.state, invoice, at)
        return result

    def mark_uncollectible(self, invoice: Invoice, *, at: int, reason: str, request: RequestInfo = AUTOMATIC) -> None:
        """open → uncollectible (``invoice.marked_uncollectible``); it can still be paid later."""
        invoice.status = "uncollectible"
        invoice.marked_uncollectible_at = at
        invoice.uncollectible_reason = reason
        invoice.next_payment_attempt = None
        self.state.store.customers[invoice.customer].delinquent = False
        self.emit("invoice.marked_uncollectible", invoice, at=at, request=request)

    def mark_paid_out_of_band(self, invoice: Invoice, *, at: int, request: RequestInfo) -> None:
        """``pay`` with ``paid_out_of_band``: paid without any charge (only ``invoice.paid``)."""
        invoice.status = "paid"
        invoice.paid_at = at
        invoice.next_payment_attempt = None
        self.emit("invoice.paid", invoice, at=at, request=request)
        self._subscription_after_paid(invoice, at=at, request=request)

    def _mark_paid(self, invoice: Invoice, *, at: int, request: RequestInfo) -> None:
        store = self.state.store
        invoice.amount_paid = invoice.amount_due
        invoice.status = "paid"
        invoice.paid_at = at
        invoice.next_payment_attempt = None
        payment = store.invoice_payments.get(invoice.invoice_payment or "")
        if payment is not None:
            payment.status = "paid"
            payment.amount_paid = invoice.amount_paid
            payment.paid_at = at
        self.emit("invoice.paid", invoice, at=at, request=request)
        self.emit("invoice.payment_succeeded", invoice, at=at, request=request)
        if payment is not None:
            self.state.emit("invoice_payment.paid", payment.to_dict(), at=at, request=request)
        self._subscription_after_paid(invoice, at=at, request=request)

    def _subscription_after_paid(self, invoice: Invoice, *, at: int, request: RequestInfo) -> None:
        """A subscription waiting on payment becomes active once none of its invoices is unpaid."""
        sub = self.state.store.subscriptions.get(invoice.subscription or "")
        if sub is None or sub.status not in WAITING_FOR_PAYMENT:
            return
        unpaid = [
            i
            for i in self.state.store.invoices_of_subscription(sub.id)
            if i.status in ("open", "uncollectible") and i.attempted and i.amount_remaining > 0
        ]
        if not unpaid:
            lifecycle.set_status(self.state, sub, "active", at=at, request=request)

    def _apply_balance(self, invoice: Invoice, customer: Customer) -> None:
        """Use a credit balance (negative) against the total, or bank a negative total as credit."""
        invoice.starting_balance = customer.balance
        total = invoice.total
        if total < 0:
            invoice.amount_due_override = 0
            customer.balance += total
        elif customer.balance < 0 and total > 0:
            credit = min(-customer.balance, total)
            invoice.amount_due_override = total - credit
            customer.balance += credit
        invoice.ending_balance = customer.balance
