"""Billing settings: the Dashboard's "Revenue recovery" choices, and test-clock timing, as knobs.

Stripe's Smart Retries pick retry times with a model; the fake uses a fixed schedule (days after the
first failed attempt), which makes tests deterministic. What happens once the retries are exhausted is
the Dashboard's "subscription status" (cancel, mark unpaid, leave past due) and "invoice status" (leave
open, mark uncollectible) choice. The start values come from the configuration; the control API can
change them at run time, and a data reset restores them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

SUBSCRIPTION_ACTIONS = ("cancel", "unpaid", "past_due")
INVOICE_ACTIONS = ("open", "uncollectible")
DEFAULT_RETRY_DAYS: tuple[float, ...] = (1.0, 3.0, 5.0)


@dataclass(frozen=True, slots=True)
class BillingSettings:
    """Dunning policy and invoice timing."""

    retry_days: tuple[float, ...] = DEFAULT_RETRY_DAYS
    subscription_action: str = "cancel"
    invoice_action: str = "open"
    finalize_delay_seconds: int = 3600
    test_clock_advance_seconds: float = 0.0

    def __post_init__(self) -> None:
        if any(day <= 0 for day in self.retry_days):
            raise ValueError("retry days must be > 0")
        if list(self.retry_days) != sorted(self.retry_days):
            raise ValueError("retry days must be in increasing order")
        if self.subscription_action not in SUBSCRIPTION_ACTIONS:
            raise ValueError(f"subscription action must be one of {', '.join(SUBSCRIPTION_ACTIONS)}")
        if self.invoice_action not in INVOICE_ACTIONS:
            raise ValueError(f"invoice action must be one of {', '.join(INVOICE_ACTIONS)}")
        if self.finalize_delay_seconds < 0:
            raise ValueError("finalize delay must be >= 0")
        if self.test_clock_advance_seconds < 0:
            raise ValueError("test clock advance time must be >= 0")

    def with_changes(self, **changes: object) -> BillingSettings:
        """A copy with some settings changed (validated)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, object]:
        """Control-API view."""
        return {
            "retry_days": list(self.retry_days),
            "subscription_action": self.subscription_action,
            "invoice_action": self.invoice_action,
            "finalize_delay_seconds": self.finalize_delay_seconds,
            "test_clock_advance_seconds": self.test_clock_advance_seconds,
        }


def parse_retry_days(raw: str) -> tuple[float, ...]:
    """``"1,3,5"`` -> ``(1.0, 3.0, 5.0)``; an empty string means no retries at all."""
    return tuple(float(part) for part in raw.split(",") if part.strip())
