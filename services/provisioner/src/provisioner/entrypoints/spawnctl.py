"""``spawnctl``: the operator's command line.

``spawnctl token`` mints a development bearer token (customer or operator) with the configured
``JWT_SECRET``. Further command groups (the dead-letter queue, order trails) are added beside it.
"""

from __future__ import annotations

from typing import Annotated

import typer

from spawnpoint_kit.auth import OPERATOR_ROLE, mint_token
from spawnpoint_kit.settings import CommonSettings

app = typer.Typer(
    name="spawnctl",
    help="Spawnpoint operator tools. Reads BROKER_URL, JWT_SECRET and SPAWNPOINT_NAMESPACE from the environment.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def token(
    sub: Annotated[str, typer.Option(help="User id (the token's sub claim)")] = "dev-user",
    email: Annotated[str | None, typer.Option(help="E-mail claim (needed to place orders)")] = "dev@example.test",
    operator: Annotated[bool, typer.Option("--operator", help="Add the operator role")] = False,
    ttl_hours: Annotated[int, typer.Option(help="Lifetime in hours")] = 24,
) -> None:
    """Print a signed development bearer token."""
    settings = CommonSettings()
    typer.echo(
        mint_token(
            settings.jwt_secret.get_secret_value(),
            sub=sub,
            email=email,
            roles=(OPERATOR_ROLE,) if operator else (),
            ttl_seconds=ttl_hours * 3600,
            audience=settings.jwt_audience,
        )
    )


def main() -> None:
    app()
