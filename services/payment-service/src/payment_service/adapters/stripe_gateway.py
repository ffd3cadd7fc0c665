"""The only place that talks to Stripe, through the official SDK's async calls.

Results are turned into small typed values at this boundary so the rest of the service never handles
``StripeObject``s (which stopped being dicts in stripe-python 15). The SDK retries network errors, 409s
and 5xx with the same idempotency key (``max_network_retries``), which is safe because every POST we make
carries our own stable key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import stripe


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    status: str | None
    payment_status: str | None
    client_secret: str | None
    amount_total: int | None
    currency: str | None
    expires_at: int | None
    payment_intent: str | None
    metadata: dict[str, str]
    client_reference_id: str | None

    @property
    def order_ref(self) -> str | None:
        """The order id the session was created for (metadata first, then client_reference_id)."""
        return self.metadata.get("serverOrderId") or self.client_reference_id

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckoutSession:
        pi = data.get("payment_intent")
        if isinstance(pi, dict):
            pi = pi.get("id")
        return cls(
            id=str(data["id"]),
            status=data.get("status"),
            payment_status=data.get("payment_status"),
            client_secret=data.get("client_secret"),
            amount_total=data.get("amount_total"),
            currency=data.get("currency"),
            expires_at=data.get("expires_at"),
            payment_intent=pi if isinstance(pi, str) else None,
            metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
            client_reference_id=data.get("client_reference_id"),
        )


@dataclass(frozen=True)
class Refund:
    id: str
    status: str | None
    amount: int
    currency: str


class StripeGateway:
    def __init__(self, api_key: str, *, api_base: str | None, max_network_retries: int, timeout: float = 20.0):
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=max_network_retries,
            http_client=stripe.HTTPXClient(timeout=timeout),
        )

    async def create_checkout_session(self, params: dict[str, Any], *, idempotency_key: str) -> CheckoutSession:
        session = await self._client.v1.checkout.sessions.create_async(
            params=params,  # type: ignore[arg-type]
            options={"idempotency_key": idempotency_key},
        )
        return CheckoutSession.from_dict(session.to_dict())

    async def retrieve_checkout_session(self, session_id: str) -> CheckoutSession:
        session = await self._client.v1.checkout.sessions.retrieve_async(session_id, params={"expand": ["line_items"]})
        return CheckoutSession.from_dict(session.to_dict())

    async def expire_checkout_session(self, session_id: str, *, idempotency_key: str) -> CheckoutSession:
        session = await self._client.v1.checkout.sessions.expire_async(
            session_id, options={"idempotency_key": idempotency_key}
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
        data = refund.to_dict()
        return Refund(
            id=str(data["id"]),
            status=data.get("status"),
            amount=int(data.get("amount") or 0),
            currency=str(data.get("currency") or ""),
        )
