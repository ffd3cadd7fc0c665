"""``storefront --port P``: serve the storefront with uvicorn."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import uvicorn

from storefront.app import create_app
from storefront.config import StorefrontSettings


def main(argv: Sequence[str] | None = None) -> None:
    """Read the settings from the environment, the address from the flags, and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="storefront", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default %(default)s)")
    parser.add_argument("--port", type=int, default=3000, help="port (default %(default)s)")
    parser.add_argument("--log-level", default="warning", help="uvicorn log level (default %(default)s)")
    args = parser.parse_args(argv)
    settings = StorefrontSettings()
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        timeout_graceful_shutdown=3,
    )


if __name__ == "__main__":
    main()
