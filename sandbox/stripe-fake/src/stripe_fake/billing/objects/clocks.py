"""Test clocks and billing-portal sessions."""

from __future__ import annotations

from dataclasses import dataclass

from stripe_fake.models import JSON


@dataclass(slots=True)
class TestClock:
    """``test_helpers.test_clock``: simulated time for the customers attached to it."""

    id: str
    frozen_time: int
    created: int
    deletes_after: int
    name: str | None = None
    status: str = "ready"
    target_frozen_time: int | None = None

    def to_dict(self) -> JSON:
        """Public ``test_helpers.test_clock`` object."""
        details: JSON = {}
        if self.status == "advancing":
            details = {"advancing": {"target_frozen_time": self.target_frozen_time}}
        return {
            "id": self.id,
            "object": "test_helpers.test_clock",
            "created": self.created,
            "deletes_after": self.deletes_after,
            "frozen_time": self.frozen_time,
            "livemode": False,
            "name": self.name,
            "status": self.status,
            "status_details": details,
        }


@dataclass(slots=True)
class PortalSession:
    """``billing_portal.session``: a short-lived link for the customer to manage billing."""

    id: str
    customer: str
    created: int
    url: str
    configuration: str
    return_url: str | None
    flow: JSON | None
    locale: str | None
    on_behalf_of: str | None

    def to_dict(self) -> JSON:
        """Public ``billing_portal.session`` object."""
        return {
            "id": self.id,
            "object": "billing_portal.session",
            "after_expiration": None,
            "configuration": self.configuration,
            "created": self.created,
            "customer": self.customer,
            "customer_account": None,
            "flow": self.flow,
            "livemode": False,
            "locale": self.locale,
            "on_behalf_of": self.on_behalf_of,
            "return_url": self.return_url,
            "url": self.url,
        }
