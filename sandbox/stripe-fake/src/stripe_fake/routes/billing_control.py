"""Billing parts of the ``/_fake`` control API: what customers, cardholders and the Dashboard do.

- ``/_fake/billing/settings``: the dunning knobs at run time (reset by ``DELETE /_fake/data``).
- ``/_fake/customers/{id}/payment_method``: change the card the next charges use, without the portal.
- ``/_fake/billing_portal/sessions/{id}/…``: the customer in the portal (cancel, renew, new card).
- ``/_fake/dashboard/refund``: a Dashboard refund (scenario G).
- ``/_fake/charges/{id}/dispute``: the cardholder disputes a charge (scenario H).
- ``/_fake/test_clocks/{id}``: a clock's state without an API key (for waiting on ``ready``).
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.responses import Response

from stripe_fake.billing.disputes import REASONS
from stripe_fake.billing.settings import INVOICE_ACTIONS, SUBSCRIPTION_ACTIONS
from stripe_fake.errors import StripeError, invalid_request, resource_missing
from stripe_fake.events import AUTOMATIC
from stripe_fake.fake import StripeFake
from stripe_fake.responses import error_response, json_response


class SettingsIn(BaseModel):
    """Dunning settings to change; omitted ones stay."""

    retry_days: list[float] | None = None
    subscription_action: Literal["cancel", "unpaid", "past_due"] | None = None
    invoice_action: Literal["open", "uncollectible"] | None = None
    finalize_delay_seconds: int | None = Field(default=None, ge=0)
    test_clock_advance_seconds: float | None = Field(default=None, ge=0, le=60)


class PaymentMethodIn(BaseModel):
    """A card (magic token such as ``pm_card_chargeCustomerFail``, or an existing ``pm_…``)."""

    payment_method: str = Field(min_length=1)


class PortalCancelIn(BaseModel):
    """The customer cancels in the portal."""

    subscription: str | None = None
    at_period_end: bool = True
    use_cancel_at: bool = False
    feedback: str | None = None
    comment: str | None = None


class PortalRenewIn(BaseModel):
    """The customer keeps a subscription scheduled to cancel."""

    subscription: str | None = None


class PortalPaymentMethodIn(BaseModel):
    """The customer enters a new card in the portal."""

    payment_method: str = "pm_card_visa"
    pay_open_invoices: bool = True


class DashboardRefundIn(BaseModel):
    """A refund issued from the Dashboard."""

    charge: str
    amount: int | None = Field(default=None, ge=1)
    reason: Literal["duplicate", "fraudulent", "requested_by_customer"] | None = None


class DisputeIn(BaseModel):
    """The cardholder disputes a charge; ``inquiry`` opens an inquiry (``warning_*`` statuses)."""

    reason: str = "fraudulent"
    inquiry: bool = False


def add_billing_controls(router: APIRouter, fake: StripeFake) -> None:
    """Register the billing control routes on ``router`` (prefix ``/_fake``)."""
    billing = fake.billing

    @router.get("/billing/settings", summary="Dunning settings in force")
    async def get_settings() -> Response:
        return json_response(billing.settings.to_dict())

    @router.post("/billing/settings", summary="Change the dunning settings (retry days, terminal actions)")
    async def set_settings(body: SettingsIn) -> Response:
        changes: dict[str, object] = {}
        if body.retry_days is not None:
            changes["retry_days"] = tuple(body.retry_days)
        if body.subscription_action is not None:
            changes["subscription_action"] = body.subscription_action
        if body.invoice_action is not None:
            changes["invoice_action"] = body.invoice_action
        if body.finalize_delay_seconds is not None:
            changes["finalize_delay_seconds"] = body.finalize_delay_seconds
        if body.test_clock_advance_seconds is not None:
            changes["test_clock_advance_seconds"] = body.test_clock_advance_seconds
        try:
            billing.settings = billing.settings.with_changes(**changes)
        except ValueError as exc:
            return error_response(invalid_request(str(exc)))
        return json_response(billing.settings.to_dict())

    @router.post("/customers/{customer_id}/payment_method", summary="Make the next charges use this card")
    async def use_payment_method(customer_id: str, body: PaymentMethodIn) -> Response:
        try:
            customer = billing.customers.get(customer_id, "customer")
            at = billing.state.now(customer.test_clock)
            pm = billing.customers.use_payment_method(customer, body.payment_method, at=at, request=AUTOMATIC)
        except StripeError as error:
            return error_response(error)
        return json_response({"customer": customer.to_dict(), "payment_method": pm.to_dict()})

    @router.post("/billing_portal/sessions/{session_id}/cancel_subscription", summary="Customer cancels in the portal")
    async def portal_cancel(session_id: str, body: PortalCancelIn | None = None) -> Response:
        body = body or PortalCancelIn()
        try:
            sub = billing.portal.cancel(
                session_id,
                subscription=body.subscription,
                at_period_end=body.at_period_end,
                use_cancel_at=body.use_cancel_at,
                feedback=body.feedback,
                comment=body.comment,
            )
        except StripeError as error:
            return error_response(error)
        return json_response(sub.to_dict())

    @router.post("/billing_portal/sessions/{session_id}/renew_subscription", summary="Customer undoes a cancellation")
    async def portal_renew(session_id: str, body: PortalRenewIn | None = None) -> Response:
        try:
            sub = billing.portal.renew(session_id, subscription=(body or PortalRenewIn()).subscription)
        except StripeError as error:
            return error_response(error)
        return json_response(sub.to_dict())

    @router.post(
        "/billing_portal/sessions/{session_id}/update_payment_method",
        summary="Customer enters a new card in the portal (and pays what is open)",
    )
    async def portal_payment_method(session_id: str, body: PortalPaymentMethodIn | None = None) -> Response:
        body = body or PortalPaymentMethodIn()
        try:
            result = billing.portal.update_payment_method(
                session_id, payment_method=body.payment_method, pay_open_invoices=body.pay_open_invoices
            )
        except StripeError as error:
            return error_response(error)
        return json_response(result)

    @router.post("/dashboard/refund", summary="Refund from the Dashboard (charge.refunded, refund.created)")
    async def dashboard_refund(body: DashboardRefundIn) -> Response:
        try:
            refund = billing.charges.dashboard_refund(body.charge, body.amount, body.reason)
        except StripeError as error:
            return error_response(error)
        return json_response(refund.to_dict())

    @router.post("/charges/{charge_id}/dispute", summary="The cardholder disputes a charge")
    async def dispute(charge_id: str, body: DisputeIn | None = None) -> Response:
        body = body or DisputeIn()
        if body.reason not in REASONS:
            return error_response(invalid_request(f"Unknown dispute reason `{body.reason}`.", "reason"))
        try:
            charge = billing.charges.get(charge_id)
            at = billing.state.now_for_customer(charge.customer) if charge.customer else billing.state.now(None)
            opened = billing.disputes.open(charge, reason=body.reason, inquiry=body.inquiry, at=at)
        except StripeError as error:
            return error_response(error)
        return json_response(opened.to_dict())

    @router.get("/test_clocks/{clock_id}", summary="A test clock (no API key needed)")
    async def test_clock(clock_id: str) -> Response:
        clock = billing.store.test_clocks.get(clock_id)
        if clock is None:
            return error_response(resource_missing("test_helpers.test_clock", clock_id, "test_clock"))
        return json_response(clock.to_dict())


__all__ = ["INVOICE_ACTIONS", "SUBSCRIPTION_ACTIONS", "add_billing_controls"]
