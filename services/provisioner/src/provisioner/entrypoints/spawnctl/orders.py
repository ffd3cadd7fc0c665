"""``spawnctl order``: an order's full event trail, for operators."""

from __future__ import annotations

import typer

app = typer.Typer(help="Orders: the full event trail of one order.", no_args_is_help=True)
