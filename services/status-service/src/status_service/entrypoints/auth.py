"""Bearer-token checks for the customer endpoints, cheap enough for thousands of polls a second.

The kit's ``TokenVerifier`` decides whether a token is valid; this module only remembers the answer.
A browser polls with the same token every few seconds, and verifying an HS256 JWT costs about 90 µs,
as much again as the rest of a poll's Python, so each process keeps the principals of the tokens it
verified until they expire (``exp`` plus the verifier's leeway: exactly as long as the verifier would
accept them).
The dependency is ``async`` because a synchronous one costs a thread-pool hop per request.

The answers are the kit's: 401 with ``WWW-Authenticate: Bearer`` for a missing or invalid token.
"""

from __future__ import annotations

import base64
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from spawnpoint_kit.auth import InvalidToken, Principal, TokenVerifier


class PrincipalCache:
    """Verified tokens and their principals, until the tokens expire."""

    def __init__(
        self, verifier: TokenVerifier, *, capacity: int = 50_000, clock: Callable[[], float] = time.time
    ) -> None:
        self._verifier = verifier
        self._capacity = capacity
        self._clock = clock
        self._known: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def verify(self, token: str) -> Principal:
        """The token's principal; raises ``InvalidToken`` like the verifier."""
        known = self._known.get(token)
        if known is not None:
            if self._clock() < known[1]:
                return known[0]
            del self._known[token]
        principal = self._verifier.verify(token)
        if self._capacity > 0:
            self._known[token] = (principal, _accepted_until(token, self._clock()) + self._verifier.leeway_seconds)
            while len(self._known) > self._capacity:
                self._known.popitem(last=False)
        return principal


def _accepted_until(token: str, now: float) -> float:
    """The token's ``exp`` (already verified), or one hour from now for a token without one."""
    try:
        segment = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
        exp = claims.get("exp")
        if isinstance(exp, int | float):
            return float(exp)
    except (IndexError, ValueError):
        pass
    return now + 3600


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


_bearer = HTTPBearer(auto_error=False, description="JWT from the shop's login (HS256 in development)")


async def customer_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """FastAPI dependency: the verified caller (customer or operator), or 401."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise unauthorized("missing bearer token")
    principals: PrincipalCache = request.app.state.principals
    try:
        return principals.verify(credentials.credentials)
    except InvalidToken as exc:
        raise unauthorized(f"invalid token: {exc}") from exc


Caller = Annotated[Principal, Depends(customer_principal)]
