"""``spawnctl token``: mint a development bearer token with the configured ``JWT_SECRET``."""

from __future__ import annotations

from typing import Annotated

import typer

from spawnpoint_kit.settings import CommonSettings


def token(
    sub: Annotated[str, typer.Option(help="User id (the token's sub claim)")] = "dev-user",
    email: Annotated[str | None, typer.Option(help="E-mail claim (needed to place orders)")] = "dev@example.test",
    name: Annotated[
        str | None, typer.Option(help="Display name (the OIDC name claim): what e-mails greet the customer by")
    ] = None,
    operator: Annotated[bool, typer.Option("--operator", help="Add the operator role")] = False,
    ttl_hours: Annotated[int, typer.Option(help="Lifetime in hours")] = 24,
) -> None:
    """Print a signed development bearer token (customer, or operator with --operator)."""
    from spawnpoint_kit.auth import OPERATOR_ROLE, mint_token  # loads FastAPI: only when minting

    settings = CommonSettings()
    typer.echo(
        mint_token(
            settings.jwt_secret.get_secret_value(),
            sub=sub,
            email=email,
            name=name,
            roles=(OPERATOR_ROLE,) if operator else (),
            ttl_seconds=ttl_hours * 3600,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
        )
    )
