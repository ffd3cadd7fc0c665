"""The only place that talks to Stripe, through the official SDK's async calls.

Results are turned into small typed values at this boundary so the rest of the service never handles
``StripeObject``s (which stopped being dicts in stripe-python 15). The SDK retries network errors, 409s
and 5xx with the same idempotency key (``max_network_retries``), which is safe because every POST we make
carries our own stable key. Stripe's errors are classified here too (``is_transient``,
``is_not_found``, ``not_open_status``, ``is_already_refunded``) so callers never parse messages.

The service layer depends on the two protocols below, not on ``StripeGateway``, so its fast tests hand it a
small fake instead of the SDK.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote_plus

import stripe

from ..domain.fulfilment import SessionFacts
from ..domain.rental import InvoiceFacts, SubscriptionFacts
from .stripe_http import StripeHttp11Client


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    status: str | None
    payment_status: str | None
    client_secret: str | None
    amount_total: int | None
    currency: str | None
    expires_at: int | None
    created: int | None
    payment_intent: str | None
    payment_intent_status: str | None
    metadata: dict[str, str]
    client_reference_id: str | None
    mode: str | None = None
    subscription: str | None = None
    customer: str | None = None

    @property
    def order_ref(self) -> str | None:
        """The order id the session was created for (metadata first, then client_reference_id)."""
        return self.metadata.get("serverOrderId") or self.client_reference_id

    @property
    def facts(self) -> SessionFacts:
        return SessionFacts(
            session_id=self.id,
            status=self.status,
            payment_status=self.payment_status,
            amount_total=self.amount_total,
            currency=self.currency,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckoutSession:
        pi = data.get("payment_intent")
        pi_status: str | None = None
        if isinstance(pi, dict):
            pi_status = pi.get("status")
            pi = pi.get("id")
        return cls(
            id=str(data["id"]),
            status=data.get("status"),
            payment_status=data.get("payment_status"),
            client_secret=data.get("client_secret"),
            amount_total=data.get("amount_total"),
            currency=data.get("currency"),
            expires_at=data.get("expires_at"),
            created=data.get("created"),
            payment_intent=pi if isinstance(pi, str) else None,
            payment_intent_status=pi_status,
            metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
            client_reference_id=data.get("client_reference_id"),
            mode=data.get("mode"),
            subscription=_id_of(data.get("subscription")),
            customer=_id_of(data.get("customer")),
        )


def _id_of(value: Any) -> str | None:
    """An id field that may come expanded (an object) or not (its id)."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else None


def _time(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if isinstance(value, int | float) and value else None


@dataclass(frozen=True)
class Subscription:
    """A subscription as Stripe has it now, with the order it was sold for."""

    facts: SubscriptionFacts
    order_ref: str | None
    customer: str | None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Subscription:
        items = ((data.get("items") or {}).get("data")) or []
        period_ends = [int(i["current_period_end"]) for i in items if i.get("current_period_end")]
        latest_item = max(items, key=lambda i: int(i.get("current_period_end") or 0), default=None)
        prices = [_id_of(i.get("price")) for i in items]
        latest = data.get("latest_invoice")
        details = data.get("cancellation_details") or {}
        metadata = data.get("metadata") or {}
        return cls(
            facts=SubscriptionFacts(
                id=str(data["id"]),
                status=str(data.get("status")),
                current_period_end=_time(max(period_ends)) if period_ends else None,
                cancel_at=_time(data.get("cancel_at")),
                cancel_at_period_end=bool(data.get("cancel_at_period_end")),
                ended_at=_time(data.get("ended_at")),
                cancellation_reason=details.get("reason") if isinstance(details, dict) else None,
                latest_invoice=invoice_facts(latest) if isinstance(latest, dict) else None,
                price_id=prices[0] if prices else None,
                current_period_start=_time(latest_item.get("current_period_start")) if latest_item else None,
            ),
            order_ref=metadata.get("serverOrderId") if isinstance(metadata, dict) else None,
            customer=_id_of(data.get("customer")),
        )


def invoice_facts(data: dict[str, Any]) -> InvoiceFacts:
    return InvoiceFacts(
        id=str(data["id"]),
        status=str(data.get("status")),
        billing_reason=data.get("billing_reason"),
        attempt_count=int(data.get("attempt_count") or 0),
        next_payment_attempt=_time(data.get("next_payment_attempt")),
        amount_paid=int(data.get("amount_paid") or 0),
        amount_due=int(data.get("amount_due") or 0),
        currency=str(data.get("currency") or ""),
        created=_time(data.get("created")),
    )


@dataclass(frozen=True)
class Refund:
    id: str
    status: str | None
    amount: int
    currency: str
    payment_intent: str | None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Refund:
        return cls(
            id=str(data["id"]),
            status=data.get("status"),
            amount=int(data.get("amount") or 0),
            currency=str(data.get("currency") or ""),
            payment_intent=data.get("payment_intent"),
        )


def is_transient(exc: Exception) -> bool:
    """Worth retrying later: Stripe unreachable, rate limited, busy or failing on its side."""
    if isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError):
        return True
    if isinstance(exc, stripe.StripeError):
        status = exc.http_status or 0
        return status == 409 or status >= 500
    return False


def is_not_found(exc: Exception) -> bool:
    return isinstance(exc, stripe.InvalidRequestError) and (exc.http_status == 404 or exc.code == "resource_missing")


_NOT_OPEN = re.compile(r"has a status of `(?P<status>\w+)`")


def not_open_status(exc: Exception) -> str | None:
    """The session's status when ``expire`` refused because it is not open (Stripe's 400), else None."""
    if not isinstance(exc, stripe.InvalidRequestError) or exc.http_status != 400:
        return None
    match = _NOT_OPEN.search(str(exc.user_message or ""))
    return match.group("status") if match else None


def is_already_refunded(exc: Exception) -> bool:
    return isinstance(exc, stripe.InvalidRequestError) and exc.code == "charge_already_refunded"


def is_refused_parameters(exc: Exception) -> bool:
    """Stripe refused the request itself (a 400 that is not an idempotency conflict): resending the
    same parameters can never succeed."""
    return isinstance(exc, stripe.InvalidRequestError) and exc.http_status == 400 and exc.code != "resource_missing"


class CheckoutGateway(Protocol):
    """Stripe's Checkout Sessions, as fulfilment, the stored-event runner and checkout use them."""

    async def create_checkout_session(self, params: dict[str, Any], *, idempotency_key: str) -> CheckoutSession: ...
    async def retrieve_checkout_session(self, session_id: str) -> CheckoutSession: ...
    async def expire_checkout_session(self, session_id: str) -> CheckoutSession: ...


class RefundGateway(Protocol):
    """Stripe's refunds, as the refund executor uses them."""

    async def refund(
        self, *, payment_intent: str, idempotency_key: str, reason: str | None, metadata: dict[str, str]
    ) -> Refund: ...
    async def refunds_of(self, payment_intent: str) -> list[Refund]: ...


class BillingGateway(Protocol):
    """Stripe Billing, as rentals use it."""

    async def retrieve_subscription(self, subscription_id: str) -> Subscription: ...
    async def create_customer(
        self, *, email: str, user_id: str, idempotency_key: str, test_clock: str | None = None
    ) -> str: ...
    async def create_test_clock(self, *, name: str, idempotency_key: str) -> str: ...
    async def update_subscription(
        self, subscription_id: str, params: dict[str, Any], *, idempotency_key: str
    ) -> Subscription: ...
    async def subscription_items(self, subscription_id: str) -> list[dict[str, Any]]: ...
    async def create_portal_session(self, *, customer: str, return_url: str, flow: dict[str, Any] | None) -> str: ...
    async def retrieve_object(self, kind: str, object_id: str) -> dict[str, Any]: ...
    async def subscription_of_payment(self, payment_intent: str) -> str | None: ...
    async def cancel_subscription(self, subscription_id: str, *, idempotency_key: str) -> None: ...


class StripeGateway:
    """The SDK's client on the kit's HTTP/1.1 client (``stripe_http.py``), shared by every call. The two
    calls every order makes (creating its session, and retrieving it for every stored event, return page and
    sweep) go through the client's ``raw_request_async``: the same request, authentication, retries,
    idempotency key and error classes as the typed calls, but the JSON answer is read once into the dict
    ``from_dict`` takes, instead of being turned into nested ``StripeObject``s and back (``to_dict``), which
    cost more CPU than the call itself."""

    def __init__(self, api_key: str, *, api_base: str | None, max_network_retries: int, timeout: float = 20.0):
        self._http = StripeHttp11Client(timeout=timeout)
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=max_network_retries,
            http_client=self._http,
        )

    async def aclose(self) -> None:
        """Close the kept-alive connections (at shutdown)."""
        await self._http.close_async()

    async def create_checkout_session(self, params: dict[str, Any], *, idempotency_key: str) -> CheckoutSession:
        response = await self._client.raw_request_async(
            "post", "/v1/checkout/sessions", idempotency_key=idempotency_key, **params
        )
        return CheckoutSession.from_dict(response.data)

    async def retrieve_checkout_session(self, session_id: str) -> CheckoutSession:
        """The session as Stripe has it now, with its line items and PaymentIntent expanded."""
        response = await self._client.raw_request_async(
            "get", f"/v1/checkout/sessions/{quote_plus(session_id)}", expand=["line_items", "payment_intent"]
        )
        return CheckoutSession.from_dict(response.data)

    async def expire_checkout_session(self, session_id: str) -> CheckoutSession:
        session = await self._client.v1.checkout.sessions.expire_async(
            session_id, options={"idempotency_key": f"expire:{session_id}"}
        )
        return CheckoutSession.from_dict(session.to_dict())

    async def refund(
        self, *, payment_intent: str, idempotency_key: str, reason: str | None, metadata: dict[str, str]
    ) -> Refund:
        params: dict[str, Any] = {"payment_intent": payment_intent, "metadata": metadata}
        if reason:
            params["reason"] = reason
        refund = await self._client.v1.refunds.create_async(
            params=params,  # type: ignore[arg-type]
            options={"idempotency_key": idempotency_key},
        )
        return Refund.from_dict(refund.to_dict())

    async def refunds_of(self, payment_intent: str) -> list[Refund]:
        """Refunds already made for a PaymentIntent (to recognise our own after a lost answer)."""
        listed = await self._client.v1.refunds.list_async(params={"payment_intent": payment_intent, "limit": 100})
        return [Refund.from_dict(item.to_dict()) for item in listed.data]

    async def retrieve_subscription(self, subscription_id: str) -> Subscription:
        """The subscription as Stripe has it now, with its latest invoice expanded (what ``assess`` reads)."""
        subscription = await self._client.v1.subscriptions.retrieve_async(
            subscription_id, params={"expand": ["latest_invoice"]}
        )
        return Subscription.from_dict(subscription.to_dict())

    async def create_customer(
        self, *, email: str, user_id: str, idempotency_key: str, test_clock: str | None = None
    ) -> str:
        """A Stripe customer for a shop user (once per user: the key is stored with our row)."""
        params: dict[str, Any] = {"email": email, "metadata": {"user_id": user_id}}
        if test_clock:
            params["test_clock"] = test_clock
        customer = await self._client.v1.customers.create_async(
            params=params,  # type: ignore[arg-type]
            options={"idempotency_key": idempotency_key},
        )
        return str(customer.id)

    async def create_test_clock(self, *, name: str, idempotency_key: str) -> str:
        """A test clock starting now (test mode only: ``STRIPE_TEST_CLOCK_PER_CUSTOMER``)."""
        clock = await self._client.v1.test_helpers.test_clocks.create_async(
            params={"frozen_time": int(datetime.now(UTC).timestamp()), "name": name[:300]},
            options={"idempotency_key": idempotency_key},
        )
        return str(clock.id)

    async def update_subscription(
        self, subscription_id: str, params: dict[str, Any], *, idempotency_key: str
    ) -> Subscription:
        """A change the customer asked for (cancel at period end or undo it, a new price); the answer is the
        subscription as Stripe now has it, with its latest invoice."""
        updated = await self._client.v1.subscriptions.update_async(
            subscription_id,
            params={**params, "expand": ["latest_invoice"]},  # type: ignore[arg-type]
            options={"idempotency_key": idempotency_key},
        )
        return Subscription.from_dict(updated.to_dict())

    async def subscription_items(self, subscription_id: str) -> list[dict[str, Any]]:
        """The subscription's items with their prices (id, price id, product id, currency, recurring)."""
        subscription = (await self._client.v1.subscriptions.retrieve_async(subscription_id)).to_dict()
        return [dict(item) for item in (subscription.get("items") or {}).get("data", [])]

    async def create_portal_session(self, *, customer: str, return_url: str, flow: dict[str, Any] | None) -> str:
        """A Stripe customer-portal session (changing the card, cancelling); its short-lived URL."""
        params: dict[str, Any] = {"customer": customer, "return_url": return_url}
        if flow:
            params["flow_data"] = flow
        session = await self._client.v1.billing_portal.sessions.create_async(params=params)  # type: ignore[arg-type]
        return str(session.url)

    async def retrieve_object(self, kind: str, object_id: str) -> dict[str, Any]:
        """A charge or a dispute as Stripe has it now (their order matters: never the event's snapshot)."""
        if kind == "dispute":
            return (await self._client.v1.disputes.retrieve_async(object_id)).to_dict()
        return (await self._client.v1.charges.retrieve_async(object_id)).to_dict()

    async def subscription_of_payment(self, payment_intent: str) -> str | None:
        """The subscription whose invoice a payment paid (basil removed ``charge.invoice``: the way is the
        invoice's payments), or None for a payment that paid no subscription invoice."""
        listed = await self._client.v1.invoice_payments.list_async(
            params={"payment": {"type": "payment_intent", "payment_intent": payment_intent}, "limit": 1}
        )
        for payment in listed.data:
            invoice = (await self._client.v1.invoices.retrieve_async(str(payment.invoice))).to_dict()
            details = (invoice.get("parent") or {}).get("subscription_details") or {}
            subscription = details.get("subscription")
            return _id_of(subscription)
        return None

    async def cancel_subscription(self, subscription_id: str, *, idempotency_key: str) -> None:
        """End a subscription now (the refund and dispute policy): no more invoices. Already canceled is fine."""
        try:
            await self._client.v1.subscriptions.cancel_async(
                subscription_id, options={"idempotency_key": idempotency_key}
            )
        except stripe.InvalidRequestError as exc:
            if not is_not_found(exc):
                raise

    async def list_invoices(self, subscription_id: str, *, limit: int = 100) -> list[InvoiceFacts]:
        """The subscription's invoices as Stripe has them now, newest first (one page of ``limit`` at most:
        an operator's view, ``spawnctl rental show``)."""
        listed = await self._client.v1.invoices.list_async(params={"subscription": subscription_id, "limit": limit})
        return [invoice_facts(item.to_dict()) for item in listed.data]
