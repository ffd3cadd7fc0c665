"""``spawnctl``: the operator's command line.

Each command group lives in its own module and is registered here:

- ``spawnctl token``: mint a development bearer token (``tokens.py``);
- ``spawnctl dlq ...``: the dead-letter queues (``dlq.py``);
- ``spawnctl order ...``: an order's event trail (``orders.py``).
"""

from __future__ import annotations

import typer

from . import dlq, orders
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
app.add_typer(dlq.app, name="dlq")
app.add_typer(orders.app, name="order")


def main() -> None:
    app()
