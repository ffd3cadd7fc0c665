"""How a panel failure is classified: retry it, or stop and tell someone.

Decided on HTTP status and the panel's error ``code`` (its exception class), never on message text:

- transient: timeouts and connection errors, 429 (honouring ``Retry-After``), 409, 5xx, and any
  ``DaemonConnectionException`` (Wings could not be reached; the panel rolled the row back);
- permanent: 401/403 and 2FA (``panel_auth``), 400 ``NoViableNodeException``/``NoViableAllocationException``
  (``no_capacity``: nothing was written, an operator must add room, then replay), 422 on an
  ``environment.*`` field (``invalid_egg_variables``), other 422 and 400 (``invalid_request``), 404 on
  the egg (``unknown_egg``).

A timeout, a connection error or a 5xx leaves the outcome unknown: the server may exist. Callers
reconcile by looking the server up by ``external_id`` before retrying.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from spawnpoint_contracts import FailureReason

from .panel import PanelError, PanelUnreachable


class Kind(StrEnum):
    TRANSIENT = "transient"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class Classified:
    kind: Kind
    reason: FailureReason
    message: str
    retry_after: float | None = None
    replayable: bool = True


CAPACITY_CODES = frozenset({"NoViableNodeException", "NoViableAllocationException"})


def classify(exc: BaseException) -> Classified:
    if isinstance(exc, PanelUnreachable):
        return Classified(Kind.TRANSIENT, FailureReason.PANEL_UNAVAILABLE, f"panel unreachable: {exc}")
    if not isinstance(exc, PanelError):
        return Classified(Kind.TRANSIENT, FailureReason.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
    status, code = exc.status, exc.code
    if status == 429:
        return Classified(
            Kind.TRANSIENT, FailureReason.PANEL_UNAVAILABLE, "panel rate limit reached", retry_after=exc.retry_after
        )
    if code == "DaemonConnectionException" or status >= 500 or status == 409:
        return Classified(Kind.TRANSIENT, FailureReason.PANEL_UNAVAILABLE, str(exc))
    if status in (401, 403) or code == "TwoFactorAuthRequiredException":
        return Classified(
            Kind.PERMANENT, FailureReason.PANEL_AUTH, f"the panel refused our API key: {exc.detail}", replayable=True
        )
    if status == 400 and code in CAPACITY_CODES:
        return Classified(Kind.PERMANENT, FailureReason.NO_CAPACITY, f"no node has room for this server: {exc.detail}")
    if status == 422 and any((e.field or "").startswith("environment.") for e in exc.errors):
        fields = ", ".join(f"{e.field} ({e.rule})" for e in exc.errors if e.field)
        return Classified(
            Kind.PERMANENT,
            FailureReason.INVALID_EGG_VARIABLES,
            f"the panel rejected the game settings: {fields}",
            replayable=False,
        )
    if status == 404:
        return Classified(Kind.PERMANENT, FailureReason.UNKNOWN_EGG, f"the panel does not know it: {exc.detail}")
    return Classified(Kind.PERMANENT, FailureReason.INVALID_REQUEST, str(exc), replayable=False)
