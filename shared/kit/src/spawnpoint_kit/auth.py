"""Bearer-token authentication (PyJWT, HS256) for customers and operators: one dependency for every API.

A customer token carries the user id in ``sub`` and the e-mail in ``email``, optionally the display name
in the standard OIDC ``name`` claim (what e-mails greet the customer by); an operator token also has
``"operator"`` in its ``roles`` claim. Services only verify tokens; ``mint_token`` exists for
development, tests and ``spawnctl token``. In production the tokens come from the shop's identity
provider with the same claims.

Each app calls ``install_auth(app, verifier)`` once in its ``bootstrap.py``; routes then declare
``principal: CurrentPrincipal`` (401 without a valid token), ``OperatorPrincipal`` (403 for a customer) or
``BearerToken`` (the verified token itself, to call another service on the caller's behalf). Verified
tokens are remembered until they expire (``PrincipalCache``): a browser polls with the same token every
few seconds, and verifying an HS256 JWT costs about as much as the rest of a poll.
"""

from __future__ import annotations

import base64
import json
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import jwt
from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

OPERATOR_ROLE = "operator"
NAME_MAX_LENGTH = 100
"""The longest display name kept from a token's ``name`` claim (longer ones are cut, not refused)."""


@dataclass(frozen=True)
class Principal:
    """Who is calling."""

    user_id: str
    email: str | None = None
    roles: frozenset[str] = field(default_factory=frozenset)
    expires_at: float | None = field(default=None, compare=False)
    """The token's ``exp`` (epoch seconds): a long-lived answer (an event stream) ends there."""
    name: str | None = None
    """The display name (OIDC ``name``), cleaned by ``display_name``; None when the token has none."""

    @property
    def is_operator(self) -> bool:
        return OPERATOR_ROLE in self.roles


def _is_control(ch: str) -> bool:
    """Unicode's "other" categories: control, format (bidi overrides, zero-width space), surrogate, private
    use, unassigned; except the zero-width (non-)joiners, which spell names in Persian and Indic scripts."""
    return ch not in _JOINERS and unicodedata.category(ch).startswith("C")


_JOINERS = frozenset("\u200c\u200d")


def display_name(value: object) -> str | None:
    """The token's ``name`` claim as something safe to print: control and format characters (a newline, a
    bidi override) removed, runs of whitespace made one space, at most ``NAME_MAX_LENGTH`` characters.
    Anything that is not a non-empty string is no name: the claim is optional and a bad one must never
    turn a valid token away (the customer is then greeted without a name)."""
    if not isinstance(value, str):
        return None
    kept = "".join(" " if ch.isspace() else ch for ch in value if ch.isspace() or not _is_control(ch))
    cleaned = " ".join(kept.split())[:NAME_MAX_LENGTH].rstrip()
    return cleaned or None


class InvalidToken(Exception):
    """The token is missing, malformed, expired or signed with another key."""


@dataclass(frozen=True)
class TokenVerifier:
    secret: str
    audience: str | None = None
    issuer: str | None = None
    algorithms: tuple[str, ...] = ("HS256",)
    leeway_seconds: int = 30

    def verify(self, token: str) -> Principal:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.secret,
                algorithms=list(self.algorithms),
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_seconds,
                # exp is required: a token that never expires could not be revoked by waiting.
                options={
                    "require": ["sub", "exp"] + (["iss"] if self.issuer else []),
                    "verify_aud": self.audience is not None,
                },
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
        exp = claims.get("exp")
        return Principal(
            user_id=sub,
            email=email if isinstance(email, str) else None,
            roles=frozenset(str(r) for r in roles),
            name=display_name(claims.get("name")),
            expires_at=float(exp) if isinstance(exp, int | float) else None,
        )


def mint_token(
    secret: str,
    *,
    sub: str,
    email: str | None = None,
    name: str | None = None,
    roles: tuple[str, ...] = (),
    ttl_seconds: int = 24 * 3600,
    audience: str | None = None,
    issuer: str | None = None,
) -> str:
    """Sign a development token with the given claims."""
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, "iat": now, "exp": now + ttl_seconds}
    if email:
        claims["email"] = email
    if name:
        claims["name"] = name
    if roles:
        claims["roles"] = list(roles)
    if audience:
        claims["aud"] = audience
    if issuer:
        claims["iss"] = issuer
    return jwt.encode(claims, secret, algorithm="HS256")


class PrincipalCache:
    """Verified tokens and their principals, until the tokens expire (``exp`` plus the verifier's leeway:
    exactly as long as the verifier would accept them). Same interface as ``TokenVerifier``."""

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
    """The token's ``exp`` (verified and required), capped at one hour from now."""
    try:
        segment = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
        exp = claims.get("exp")
        if isinstance(exp, int | float):
            return min(float(exp), now + 3600)
    except (IndexError, ValueError):
        pass
    return now


def verifier_from(settings: Any) -> TokenVerifier:
    """The verifier for a service's ``CommonSettings`` (secret, audience, issuer)."""
    return TokenVerifier(settings.jwt_secret.get_secret_value(), settings.jwt_audience, settings.jwt_issuer)


def install_auth(app: FastAPI, verifier: TokenVerifier, *, cache_size: int = 50_000) -> PrincipalCache:
    """Make ``app``'s bearer dependencies verify with ``verifier`` (remembering up to ``cache_size`` tokens)."""
    principals = PrincipalCache(verifier, capacity=cache_size)
    app.state.principals = principals
    return principals


def principals_of(app: Any) -> PrincipalCache:
    """The token checker ``install_auth`` gave ``app`` (the polling fast path uses it directly)."""
    principals: PrincipalCache = app.state.principals
    return principals


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
    """FastAPI dependency: the verified caller, or 401 (with ``WWW-Authenticate: Bearer``).

    Async on purpose: FastAPI runs a synchronous dependency in a worker thread, and that hop cost more
    than verifying the token (an HMAC) on every request."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("missing bearer token")
    try:
        return principals_of(request.app).verify(credentials.credentials)
    except InvalidToken as exc:
        raise _unauthorized(f"invalid token: {exc}") from exc


async def operator_principal(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """FastAPI dependency: an operator, or 403 for a valid customer token."""
    if not principal.is_operator:
        raise HTTPException(status_code=status.HTTP_403_FORBIDDEN, detail="operator credentials required")
    return principal


async def bearer_token(
    _: Annotated[Principal, Depends(current_principal)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """FastAPI dependency: the caller's verified token, to call another service on the caller's behalf."""
    if credentials is None:  # current_principal has refused it already; kept for the type checker
        raise _unauthorized("missing bearer token")
    return credentials.credentials


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
OperatorPrincipal = Annotated[Principal, Depends(operator_principal)]
BearerToken = Annotated[str, Depends(bearer_token)]
