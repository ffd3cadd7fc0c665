"""``mail-fake --port P --smtp-port S``."""

from __future__ import annotations


def main() -> None:
    from .app import run

    run()
