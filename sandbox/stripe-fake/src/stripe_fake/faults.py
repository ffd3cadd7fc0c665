"""Injected API failures, for testing a client's retry behaviour.

A fault matches requests by method and path prefix and fires a limited number of times. Before
processing (the default) it makes the request fail without doing anything, as when Stripe is
unreachable or errors early. With ``after_commit`` the request IS executed and its result saved under
its idempotency key, but the client gets the failure, as when the network drops the answer: the correct
client reaction (retry with the same key) then yields the saved result and creates nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from stripe_fake.ids import new_id


@dataclass(slots=True)
class Fault:
    """One injected failure rule."""

    id: str
    path_prefix: str
    method: str | None
    status: int | None
    drop_connection: bool
    delay_seconds: float
    after_commit: bool
    remaining: int | None  # None = every matching request
    should_retry: bool | None
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        """Whether this rule applies to the request."""
        if self.method is not None and self.method != method.upper():
            return False
        return path.startswith(self.path_prefix)

    def to_dict(self) -> dict[str, object]:
        """Control-API view."""
        return {
            "id": self.id,
            "path_prefix": self.path_prefix,
            "method": self.method,
            "status": self.status,
            "drop_connection": self.drop_connection,
            "delay_seconds": self.delay_seconds,
            "after_commit": self.after_commit,
            "times": self.remaining,
            "should_retry": self.should_retry,
            "hits": self.hits,
        }


class FaultInjector:
    """The active fault rules, consumed first-registered first."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(
        self,
        *,
        path_prefix: str,
        method: str | None,
        status: int | None,
        drop_connection: bool,
        delay_seconds: float,
        after_commit: bool,
        times: int | None,
        should_retry: bool | None,
    ) -> Fault:
        """Register a rule."""
        fault = Fault(
            id=new_id("fault_", 12),
            path_prefix=path_prefix,
            method=method.upper() if method else None,
            status=status,
            drop_connection=drop_connection,
            delay_seconds=delay_seconds,
            after_commit=after_commit,
            remaining=times,
            should_retry=should_retry,
        )
        self._faults.append(fault)
        return fault

    def take(self, method: str, path: str, *, after_commit: bool) -> Fault | None:
        """The first matching rule for this phase, counted as used (removed when exhausted)."""
        for fault in self._faults:
            if fault.after_commit != after_commit or not fault.matches(method, path):
                continue
            fault.hits += 1
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
            return fault
        return None

    def active(self) -> list[Fault]:
        """Active rules."""
        return list(self._faults)

    def clear(self) -> None:
        """Remove every rule."""
        self._faults.clear()
