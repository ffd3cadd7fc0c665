"""How a panel failure is classified: retry it, or stop and tell someone.

Decided on HTTP status and the panel's error ``code`` (its exception class), never on message text
(reference: pterodactyl.md section 6):

- transient: timeouts and connection errors, 429 (honouring ``Retry-After``), 409, every 5xx (with or
  without the panel's envelope), any ``DaemonConnectionException`` (Wings could not be reached or
  refused; the panel rolled the row back), and a 422 ``unique`` on ``external_id`` whose server could not
  be found again (deleted in between: create again);
- permanent: 401/403 and 2FA (``panel_auth``), 400 ``NoViableNodeException``/``NoViableAllocationException``
  (``no_capacity``: nothing was written, an operator must add room, then replay), 422 on an
  ``environment.*`` field (``invalid_egg_variables``), other 422 and 400 (``invalid_request``), 404 on
  the egg (``unknown_egg``), and anything that is not a panel answer at all (``internal_error``: a bug or
  a response we do not understand; replay after the fix).

A timeout, a connection error or a 5xx leaves the outcome unknown: the server may exist. Callers
reconcile by looking the server up by ``external_id`` before retrying.

``replayable`` says whether an operator replay of the dead-lettered message can help once the cause
is fixed on the panel's side (room added, key fixed, panel back). It is false when the request itself
is wrong: the replay would send exactly the same request.
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

    @property
    def transient(self) -> bool:
        return self.kind == Kind.TRANSIENT


CAPACITY_CODES = frozenset({"NoViableNodeException", "NoViableAllocationException"})
AUTH_CODES = frozenset({"TwoFactorAuthRequiredException", "AuthenticationException"})


def classify(exc: BaseException) -> Classified:
    if isinstance(exc, PanelUnreachable):
        return Classified(Kind.TRANSIENT, FailureReason.PANEL_UNAVAILABLE, f"the panel did not answer: {exc}")
    if not isinstance(exc, PanelError):
        return Classified(
            Kind.PERMANENT,
            FailureReason.INTERNAL_ERROR,
            f"unexpected error while talking to the panel: {type(exc).__name__}: {exc}",
        )
    return _classify_panel_error(exc)


def _classify_panel_error(exc: PanelError) -> Classified:
    status, code = exc.status, exc.code
    if status == 429:
        return Classified(
            Kind.TRANSIENT,
            FailureReason.PANEL_UNAVAILABLE,
            "the panel's rate limit was reached",
            retry_after=exc.retry_after,
        )
    if code == "DaemonConnectionException" or status >= 500 or status == 409:
        return Classified(Kind.TRANSIENT, FailureReason.PANEL_UNAVAILABLE, f"the panel is unavailable: {exc}")
    if status in (401, 403) or code in AUTH_CODES:
        return Classified(Kind.PERMANENT, FailureReason.PANEL_AUTH, f"the panel refused our API key: {exc.detail}")
    if status == 400 and code in CAPACITY_CODES:
        return Classified(Kind.PERMANENT, FailureReason.NO_CAPACITY, f"no node has room for this server: {exc.detail}")
    if status == 422 and exc.has("external_id", "unique"):
        return Classified(
            Kind.TRANSIENT, FailureReason.PANEL_UNAVAILABLE, "the panel reported the server exists but it was not found"
        )
    if status == 422 and any((e.field or "").startswith("environment.") for e in exc.errors):
        fields = ", ".join(f"{e.field} ({e.rule})" for e in exc.errors if e.field)
        return Classified(
            Kind.PERMANENT,
            FailureReason.INVALID_EGG_VARIABLES,
            f"the panel rejected the game settings: {fields}",
            replayable=False,
        )
    if status == 404:
        return Classified(Kind.PERMANENT, FailureReason.UNKNOWN_EGG, f"the panel does not know the egg: {exc.detail}")
    return Classified(Kind.PERMANENT, FailureReason.INVALID_REQUEST, str(exc), replayable=False)


def field_details(exc: BaseException) -> dict[str, str]:
    """``meta.source_field`` -> ``meta.rule`` pairs of a validation error, for ProvisionFailed.detail."""
    if not isinstance(exc, PanelError):
        return {}
    return {e.field: e.rule or "" for e in exc.errors if e.field}
