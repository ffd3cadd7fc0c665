"""Bearer-token authentication (PyJWT, HS256) for customers and operators.

A customer token carries the user id in ``sub`` and the e-mail in ``email``; an operator token also has
``"operator"`` in its ``roles`` claim. Services only verify tokens; ``mint_token`` exists for
development, tests and ``spawnctl token``. In production the tokens come from the shop's identity
provider with the same claims.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated, Any

import jwt
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

OPERATOR_ROLE = "operator"


@dataclass(frozen=True)
class Principal:
    """Who is calling."""

    user_id: str
    email: str | None = None
    roles: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_operator(self) -> bool:
        return OPERATOR_ROLE in self.roles


class InvalidToken(Exception):
    """The token is missing, malformed, expired or signed with another key."""


@dataclass(frozen=True)
class TokenVerifier:
    secret: str
    audience: str | None = None
    algorithms: tuple[str, ...] = ("HS256",)
    leeway_seconds: int = 30

    def verify(self, token: str) -> Principal:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.secret,
                algorithms=list(self.algorithms),
                audience=self.audience,
                leeway=self.leeway_seconds,
                options={"require": ["sub"], "verify_aud": self.audience is not None},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub.strip():
            raise InvalidToken("sub must be a non-empty string")
        roles = claims.get("roles", [])
        if not isinstance(roles, list):
            raise InvalidToken("roles must be a list")
        email = claims.get("email")
        return Principal(
            user_id=sub,
            email=email if isinstance(email, str) else None,
            roles=frozenset(str(r) for r in roles),
        )


def mint_token(
    secret: str,
    *,
    sub: str,
    email: str | None = None,
    roles: tuple[str, ...] = (),
    ttl_seconds: int = 24 * 3600,
    audience: str | None = None,
) -> str:
    """Sign a development token with the given claims."""
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, "iat": now, "exp": now + ttl_seconds}
    if email:
        claims["email"] = email
    if roles:
        claims["roles"] = list(roles)
    if audience:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm="HS256")


_bearer = HTTPBearer(auto_error=False, description="JWT from the shop's login (HS256 in development)")


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": "Bearer"},
    )


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """FastAPI dependency: the verified caller, or 401. The verifier lives on ``app.state.token_verifier``.

    Async on purpose: FastAPI runs a synchronous dependency in a worker thread, and that hop cost more
    than verifying the token (an HMAC) on every request."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("missing bearer token")
    verifier: TokenVerifier = request.app.state.token_verifier
    try:
        return verifier.verify(credentials.credentials)
    except InvalidToken as exc:
        raise _unauthorized(f"invalid token: {exc}") from exc


async def operator_principal(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """FastAPI dependency: an operator, or 403 for a valid customer token."""
    if not principal.is_operator:
        raise HTTPException(status_code=status.HTTP_403_FORBIDDEN, detail="operator credentials required")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
OperatorPrincipal = Annotated[Principal, Depends(operator_principal)]
