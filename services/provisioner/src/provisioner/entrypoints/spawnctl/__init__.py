"""``spawnctl``: the operator's command line.

Each command group lives in its own module and is registered here:

- ``spawnctl token``: mint a development bearer token (``tokens.py``).
"""

from __future__ import annotations

import typer

from .tokens import token

app = typer.Typer(
    name="spawnctl",
    help="Spawnpoint operator tools. Reads BROKER_URL, JWT_SECRET and SPAWNPOINT_NAMESPACE from the environment.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)


@app.callback()
def _root() -> None:
    """Spawnpoint operator tools. Exit codes: 0 done, 1 refused or failed, 2 bad usage, 3 broker unreachable."""


app.command()(token)


def main() -> None:
    app()
