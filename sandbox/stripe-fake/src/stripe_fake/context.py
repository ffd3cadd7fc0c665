"""What a `/v1` handler knows about the request it serves."""

from __future__ import annotations

from dataclasses import dataclass

from stripe_fake.events import RequestInfo
from stripe_fake.forms import Params


@dataclass(frozen=True, slots=True)
class ApiContext:
    """One authenticated, decoded API request."""

    request_id: str
    method: str
    path: str
    api_key: str
    params: Params
    idempotency_key: str | None
    now: float

    @property
    def now_int(self) -> int:
        """Request time on the fake clock, in whole seconds."""
        return int(self.now)

    def cause(self) -> RequestInfo:
        """``event.request`` for events this request causes."""
        return RequestInfo(self.request_id, self.idempotency_key)
