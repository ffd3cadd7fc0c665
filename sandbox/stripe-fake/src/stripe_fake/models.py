"""The objects the fake keeps, and their Stripe JSON shapes.

Shapes are trimmed from Stripe's OpenAPI fixtures and the stripe 16.1.0 typings: every field the
payment flow reads is present with the real name and type; fields the flow never uses are left out
rather than invented. ``to_dict`` returns a fresh structure each time, so an event payload built from it
is a snapshot that later changes do not alter.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stripe_fake.billing.objects import Price

JSON = dict[str, Any]


@dataclass(slots=True)
class LineItem:
    """One Checkout line item: inline ``price_data``, or a catalogue Price (``price_obj``)."""

    id: str
    price_id: str
    product_id: str
    description: str
    currency: str
    unit_amount: int
    unit_amount_decimal: str
    quantity: int
    amount: int
    metadata: dict[str, str]
    created: int
    price_obj: Price | None = None

    def to_dict(self) -> JSON:
        """``item`` object as returned by ``expand[]=line_items``."""
        price: JSON
        if self.price_obj is not None:
            price = self.price_obj.to_dict()
        else:
            price = {
                "id": self.price_id,
                "object": "price",
                "active": False,
                "billing_scheme": "per_unit",
                "created": self.created,
                "currency": self.currency,
                "livemode": False,
                "lookup_key": None,
                "metadata": {},
                "nickname": None,
                "product": self.product_id,
                "recurring": None,
                "tax_behavior": "unspecified",
                "type": "one_time",
                "unit_amount": self.unit_amount,
                "unit_amount_decimal": self.unit_amount_decimal,
            }
        return {
            "id": self.id,
            "object": "item",
            "adjustable_quantity": None,
            "amount_discount": 0,
            "amount_subtotal": self.amount,
            "amount_tax": 0,
            "amount_total": self.amount,
            "currency": self.currency,
            "description": self.description,
            "metadata": dict(self.metadata),
            "price": price,
            "quantity": self.quantity,
        }


@dataclass(slots=True)
class CheckoutSession:
    """A Checkout Session plus what Stripe keeps internally (line items, PaymentIntent data)."""

    id: str
    mode: str
    ui_mode: str
    status: str
    payment_status: str
    client_secret: str | None
    currency: str
    amount_subtotal: int
    amount_total: int
    created: int
    expires_at: int
    metadata: dict[str, str]
    client_reference_id: str | None
    customer_email: str | None
    return_url: str | None
    redirect_on_completion: str | None
    success_url: str | None
    cancel_url: str | None
    hosted_url: str | None
    allowed_payment_method_types: list[str] | None
    locale: str | None
    submit_type: str | None
    billing_address_collection: str | None
    customer_creation: str | None
    line_items: list[LineItem]
    payment_intent_metadata: dict[str, str]
    payment_intent_description: str | None
    customer_details: JSON | None = None
    payment_intent_id: str | None = None
    completed_at: int | None = None
    customer_id: str | None = None
    subscription_id: str | None = None
    invoice_id: str | None = None
    subscription_metadata: dict[str, str] = field(default_factory=dict)
    trial_period_days: int | None = None
    trial_end: int | None = None
    subscription_description: str | None = None

    def to_dict(self) -> JSON:
        """Public ``checkout.session`` object (no expansions)."""
        return {
            "id": self.id,
            "object": "checkout.session",
            "adaptive_pricing": None,
            "after_expiration": None,
            "allow_promotion_codes": None,
            "allowed_payment_method_types": (
                list(self.allowed_payment_method_types) if self.allowed_payment_method_types else None
            ),
            "amount_subtotal": self.amount_subtotal,
            "amount_total": self.amount_total,
            "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
            "billing_address_collection": self.billing_address_collection,
            "branding_settings": None,
            "cancel_url": self.cancel_url,
            "client_reference_id": self.client_reference_id,
            "client_secret": self.client_secret,
            "collected_information": None,
            "consent": None,
            "consent_collection": None,
            "created": self.created,
            "currency": self.currency,
            "currency_conversion": None,
            "custom_fields": [],
            "custom_text": {
                "after_submit": None,
                "shipping_address": None,
                "submit": None,
                "terms_of_service_acceptance": None,
            },
            "customer": self.customer_id,
            "customer_account": None,
            "customer_creation": self.customer_creation,
            "customer_details": copy.deepcopy(self.customer_details),
            "customer_email": self.customer_email,
            "discounts": [],
            "excluded_payment_method_types": None,
            "expires_at": self.expires_at,
            "integration_identifier": None,
            "invoice": self.invoice_id,
            "invoice_creation": None,
            "livemode": False,
            "locale": self.locale,
            "managed_payments": None,
            "metadata": dict(self.metadata),
            "mode": self.mode,
            "name_collection": None,
            "optional_items": None,
            "origin_context": None,
            "payment_intent": self.payment_intent_id,
            "payment_link": None,
            "payment_method_collection": "always" if self.mode == "subscription" else "if_required",
            "payment_method_configuration_details": None,
            "payment_method_options": {},
            "payment_method_types": list(self.allowed_payment_method_types or ["card"]),
            "payment_status": self.payment_status,
            "permissions": None,
            "phone_number_collection": {"enabled": False},
            "presentment_details": None,
            "recovered_from": None,
            "redirect_on_completion": self.redirect_on_completion,
            "return_url": self.return_url,
            "saved_payment_method_options": None,
            "setup_intent": None,
            "shipping_address_collection": None,
            "shipping_cost": None,
            "shipping_options": [],
            "status": self.status,
            "submit_type": self.submit_type,
            "subscription": self.subscription_id,
            "success_url": self.success_url,
            "tax_id_collection": {"enabled": False, "required": "never"},
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            "ui_mode": self.ui_mode,
            "url": self.hosted_url if self.status == "open" else None,
            "wallet_options": None,
        }

    def order_id(self) -> str | None:
        """The Spawnpoint order this session belongs to, for the control API's filters."""
        return self.metadata.get("serverOrderId") or self.client_reference_id


@dataclass(slots=True)
class Charge:
    """The charge behind a PaymentIntent (refunds are counted against it)."""

    id: str
    payment_intent: str
    amount: int
    currency: str
    status: str  # succeeded | pending | failed
    created: int
    metadata: dict[str, str]
    amount_refunded: int = 0
    billing_email: str | None = None
    billing_name: str | None = None
    customer: str | None = None
    payment_method: str | None = None
    description: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    decline_code: str | None = None
    disputed: bool = False

    def to_dict(self) -> JSON:
        """``charge`` object (trimmed; ``refunds`` is includable, so absent)."""
        succeeded = self.status == "succeeded"
        return {
            "id": self.id,
            "object": "charge",
            "amount": self.amount,
            "amount_captured": self.amount if succeeded else 0,
            "amount_refunded": self.amount_refunded,
            "application": None,
            "application_fee": None,
            "application_fee_amount": None,
            "authorization_code": None,
            "balance_transaction": None,
            "billing_details": {
                "address": None,
                "email": self.billing_email,
                "name": self.billing_name,
                "phone": None,
            },
            "calculated_statement_descriptor": "SPAWNPOINT",
            "captured": succeeded,
            "created": self.created,
            "currency": self.currency,
            "customer": self.customer,
            "description": self.description,
            "disputed": self.disputed,
            "failure_balance_transaction": None,
            "failure_code": self.failure_code,
            "failure_message": self.failure_message,
            "fraud_details": {},
            "level3": None,
            "livemode": False,
            "metadata": dict(self.metadata),
            "on_behalf_of": None,
            "outcome": {
                "network_status": "approved_by_network" if succeeded else "declined_by_network",
                "reason": self.decline_code,
                "risk_level": "normal",
                "seller_message": "Payment complete." if succeeded else "The bank did not return any further details.",
                "type": "authorized" if succeeded else "issuer_declined",
            },
            "paid": succeeded,
            "payment_intent": self.payment_intent,
            "payment_method": self.payment_method,
            "payment_method_details": None,
            "presentment_details": None,
            "radar_options": None,
            "receipt_email": None,
            "receipt_number": None,
            "receipt_url": None,
            "refunded": self.amount_refunded >= self.amount and self.amount > 0,
            "review": None,
            "shipping": None,
            "source": None,
            "source_transfer": None,
            "statement_descriptor": None,
            "statement_descriptor_suffix": None,
            "status": self.status,
            "transfer": None,
            "transfer_data": None,
            "transfer_group": None,
        }


@dataclass(slots=True)
class PaymentIntent:
    """A PaymentIntent created when a Checkout Session is confirmed (deferred creation)."""

    id: str
    amount: int
    currency: str
    status: str  # succeeded | processing | requires_payment_method
    created: int
    metadata: dict[str, str]
    description: str | None
    client_secret: str
    latest_charge: str | None = None
    last_payment_error: JSON | None = None
    customer: str | None = None
    payment_method: str | None = None

    def to_dict(self) -> JSON:
        """``payment_intent`` object (trimmed)."""
        return {
            "id": self.id,
            "object": "payment_intent",
            "allowed_payment_method_types": None,
            "amount": self.amount,
            "amount_capturable": 0,
            "amount_details": None,
            "amount_received": self.amount if self.status == "succeeded" else 0,
            "application": None,
            "application_fee_amount": None,
            "automatic_payment_methods": None,
            "canceled_at": None,
            "cancellation_reason": None,
            "capture_method": "automatic_async",
            "client_secret": self.client_secret,
            "confirmation_method": "automatic",
            "created": self.created,
            "currency": self.currency,
            "customer": self.customer,
            "customer_account": None,
            "description": self.description,
            "excluded_payment_method_types": None,
            "hooks": None,
            "last_payment_error": copy.deepcopy(self.last_payment_error),
            "latest_charge": self.latest_charge,
            "livemode": False,
            "managed_payments": None,
            "metadata": dict(self.metadata),
            "next_action": None,
            "on_behalf_of": None,
            "payment_details": None,
            "payment_method": self.payment_method,
            "payment_method_configuration_details": None,
            "payment_method_options": None,
            "payment_method_types": ["card"],
            "payment_record": None,
            "presentment_details": None,
            "processing": None,
            "receipt_email": None,
            "review": None,
            "setup_future_usage": None,
            "shipping": None,
            "source": None,
            "statement_descriptor": None,
            "statement_descriptor_suffix": None,
            "status": self.status,
            "transfer_data": None,
            "transfer_group": None,
        }


@dataclass(slots=True)
class Refund:
    """A refund of (part of) a PaymentIntent's charge; always ``succeeded`` in the fake."""

    id: str
    amount: int
    currency: str
    payment_intent: str
    charge: str
    status: str
    reason: str | None
    metadata: dict[str, str]
    created: int
    customer: str | None = None
    payment_method: str | None = None

    def to_dict(self) -> JSON:
        """``refund`` object (trimmed)."""
        return {
            "id": self.id,
            "object": "refund",
            "amount": self.amount,
            "balance_transaction": None,
            "charge": self.charge,
            "created": self.created,
            "currency": self.currency,
            "customer": self.customer,
            "customer_account": None,
            "description": None,
            "destination_details": None,
            "failure_balance_transaction": None,
            "failure_reason": None,
            "instructions_email": None,
            "metadata": dict(self.metadata),
            "next_action": None,
            "payment_intent": self.payment_intent,
            "payment_method": self.payment_method,
            "pending_reason": None,
            "presentment_details": None,
            "reason": self.reason,
            "receipt_number": None,
            "source_transfer_reversal": None,
            "status": self.status,
            "transfer_reversal": None,
        }


@dataclass(slots=True)
class WebhookEndpoint:
    """A registered receiver. Several secrets mean a secret roll is in progress (one ``v1`` each)."""

    id: str
    url: str
    secrets: tuple[str, ...]
    events: frozenset[str] | None
    created: int
    from_config: bool = False

    def wants(self, event_type: str) -> bool:
        """Whether this endpoint subscribed to ``event_type`` (all types when no list was given)."""
        return self.events is None or "*" in self.events or event_type in self.events

    def to_dict(self) -> JSON:
        """Control-API view of the endpoint (secrets included: this is a local test tool)."""
        return {
            "id": self.id,
            "object": "webhook_endpoint",
            "url": self.url,
            "secret": self.secrets[0],
            "secrets": list(self.secrets),
            "enabled_events": sorted(self.events) if self.events is not None else ["*"],
            "created": self.created,
            "configured_at_start": self.from_config,
        }


@dataclass(slots=True)
class Event:
    """An emitted event: its payload and the exact bytes every delivery attempt sends."""

    seq: int
    id: str
    type: str
    created: int
    payload: JSON
    body: bytes
    object_id: str | None
    order_id: str | None
    pending_endpoints: set[str] = field(default_factory=set)

    def to_dict(self) -> JSON:
        """The event as the API shows it now (``pending_webhooks`` is the live count)."""
        data = copy.deepcopy(self.payload)
        data["pending_webhooks"] = len(self.pending_endpoints)
        return data


@dataclass(slots=True)
class DeliveryAttempt:
    """One POST of an event to an endpoint, as recorded for ``GET /_fake/deliveries``."""

    id: str
    event_id: str
    event_type: str
    endpoint_id: str
    endpoint_url: str
    attempt: int
    timestamp: int
    status_code: int | None
    error: str | None
    duration_ms: float
    next_retry_in_seconds: float | None = None

    @property
    def succeeded(self) -> bool:
        """2xx answers end the delivery; anything else is retried."""
        return self.status_code is not None and 200 <= self.status_code < 300

    def to_dict(self) -> JSON:
        """Control-API view of the attempt."""
        return {
            "id": self.id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "endpoint_id": self.endpoint_id,
            "endpoint_url": self.endpoint_url,
            "attempt": self.attempt,
            "timestamp": self.timestamp,
            "status_code": self.status_code,
            "error": self.error,
            "succeeded": self.succeeded,
            "duration_ms": round(self.duration_ms, 2),
            "next_retry_in_seconds": self.next_retry_in_seconds,
        }
