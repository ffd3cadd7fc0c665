"""``spawnctl dlq``: list, inspect, replay, purge and export dead-lettered messages."""

from __future__ import annotations

import typer

app = typer.Typer(help="The dead-letter queues: list, show, replay, purge, export.", no_args_is_help=True)
