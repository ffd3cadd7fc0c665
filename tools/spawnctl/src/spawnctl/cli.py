"""``spawnctl``: the operator's command line, for every service.

Its own package (``tools/spawnctl``): it talks to the broker and to the services' HTTP APIs, never to a
service's database, and imports no service code but each service's queue names (``system.py``). Each
command group lives in its own module and is registered here:

- ``spawnctl token``: mint a development bearer token (``tokens.py``);
- ``spawnctl dlq ...``: any service's dead-letter queue (``dlq.py``);
- ``spawnctl order ...``: an order's event trail (``orders.py``);
- ``spawnctl outbox ...``: outbox rows a relay parked, on any service (``outbox.py``);
- ``spawnctl drift``: every server Spawnpoint and the panel disagree about, via the provisioner (``drift.py``);
- ``spawnctl rental ...``: one order's rental, and the rental reconciler on demand (``rentals.py``).
"""

from __future__ import annotations

import typer

from . import dlq, orders, outbox, rentals
from .drift import drift
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
app.command()(drift)
app.add_typer(dlq.app, name="dlq")
app.add_typer(orders.app, name="order")
app.add_typer(outbox.app, name="outbox")
app.add_typer(rentals.app, name="rental")


def main() -> None:
    app()
