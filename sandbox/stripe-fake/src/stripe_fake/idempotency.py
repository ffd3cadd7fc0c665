"""Stripe's idempotent-request layer.

Stripe keys saved results by (account/API key, ``Idempotency-Key``). A repeat with the same method, path
and parameters gets the first result replayed (status and body, even a 500) with
``Idempotent-Replayed: true`` and no repeated side effects; a repeat with different parameters is an
``idempotency_error``. Results are not saved when validation failed (400) or when the request never
started executing (a concurrent request held the key, or a fault was injected before processing), so
those can be retried. Keys may be pruned after 24 hours; the fake prunes on its own clock.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

MAX_KEY_LENGTH = 255
PRUNE_AFTER_SECONDS = 24 * 3600


def fingerprint(method: str, path: str, params: dict[str, Any]) -> str:
    """Stable digest of what makes two requests "the same request"."""
    canonical = json.dumps([method.upper(), path, params], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class SavedResult:
    """The first answer given for a key."""

    fingerprint: str
    status: int
    body: bytes
    request_id: str
    saved_at: float


@dataclass(frozen=True, slots=True)
class Replay:
    """Same key, same request: answer with the saved result."""

    saved: SavedResult


@dataclass(frozen=True, slots=True)
class Mismatch:
    """Same key, different request."""


@dataclass(frozen=True, slots=True)
class InUse:
    """Same key, same request, first one still executing."""


@dataclass(frozen=True, slots=True)
class Proceed:
    """New key: execute, then :meth:`IdempotencyStore.finish` or :meth:`IdempotencyStore.abandon`."""

    scope: tuple[str, str]
    fingerprint: str


Outcome = Replay | Mismatch | InUse | Proceed


class IdempotencyStore:
    """Saved results and in-flight keys, per API key."""

    def __init__(self) -> None:
        self._saved: dict[tuple[str, str], SavedResult] = {}
        self._in_flight: dict[tuple[str, str], str] = {}

    def begin(self, api_key: str, key: str, request_fingerprint: str, now: float) -> Outcome:
        """Decide what to do with a request carrying ``key``."""
        scope = (api_key, key)
        saved = self._saved.get(scope)
        if saved is not None and now - saved.saved_at > PRUNE_AFTER_SECONDS:
            del self._saved[scope]
            saved = None
        if saved is not None:
            if saved.fingerprint != request_fingerprint:
                return Mismatch()
            return Replay(saved)
        running = self._in_flight.get(scope)
        if running is not None:
            return Mismatch() if running != request_fingerprint else InUse()
        self._in_flight[scope] = request_fingerprint
        return Proceed(scope, request_fingerprint)

    def finish(self, token: Proceed, status: int, body: bytes, request_id: str, now: float) -> None:
        """Record the result, except for 400 validation failures (those may be fixed and retried)."""
        self._in_flight.pop(token.scope, None)
        if status == 400:
            return
        self._saved[token.scope] = SavedResult(token.fingerprint, status, body, request_id, now)

    def abandon(self, token: Proceed) -> None:
        """Release the key without saving (the request never executed)."""
        self._in_flight.pop(token.scope, None)

    def clear(self) -> None:
        """Forget every key (in-flight requests finish but are not saved under stale scopes)."""
        self._saved.clear()
        self._in_flight.clear()

    def __len__(self) -> int:
        return len(self._saved)
