"""``python -m panel_fake`` / ``panel-fake``: run the fake panel with uvicorn."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import uvicorn

from panel_fake.app import create_app
from panel_fake.config import FLAVORS, PanelConfig, env_defaults, parse_flavor


def parse_args(argv: Sequence[str] | None = None) -> PanelConfig:
    """Flags override ``PANEL_FAKE_*`` environment variables, which override defaults."""
    base = PanelConfig(**env_defaults())  # type: ignore[arg-type]
    parser = argparse.ArgumentParser(
        prog="panel-fake", description="Stand-in for the Pterodactyl / Pelican panel API (real HTTP)."
    )
    parser.add_argument("--host", default=base.host, help="bind address (default %(default)s)")
    parser.add_argument("--port", type=int, default=base.port, help="port (env PANEL_FAKE_PORT, default 8081)")
    parser.add_argument(
        "--flavor", type=parse_flavor, default=base.flavor, help=f"one of {', '.join(FLAVORS)} (env PANEL_FAKE_FLAVOR)"
    )
    parser.add_argument("--app-key", default=base.app_key, help="token of the seeded admin application key")
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=base.rate_limit,
        help="application API requests per minute per key owner; 0 = unlimited (240 Pterodactyl, 256 Pelican)",
    )
    parser.add_argument(
        "--client-rate-limit", type=int, default=base.client_rate_limit, help="client API requests per minute"
    )
    parser.add_argument(
        "--install-seconds", type=float, default=base.install_seconds, help="seconds a new server stays installing"
    )
    parser.add_argument(
        "--hang-seconds", type=float, default=base.hang_seconds, help="how long commit_then_hang holds a response"
    )
    parser.add_argument("--seed", default=base.seed_path, help="JSON seed file replacing the default seed")
    parser.add_argument("--log-level", default=base.log_level, help="uvicorn log level (default warning)")
    args = parser.parse_args(argv)
    return PanelConfig(
        flavor=args.flavor,
        host=args.host,
        port=args.port,
        app_key=args.app_key,
        rate_limit=args.rate_limit,
        client_rate_limit=args.client_rate_limit,
        install_seconds=args.install_seconds,
        hang_seconds=args.hang_seconds,
        seed_path=args.seed,
        log_level=args.log_level,
    )


def main(argv: Sequence[str] | None = None) -> None:
    config = parse_args(argv)
    logging.basicConfig(level=config.log_level.upper(), stream=sys.stderr)
    app = create_app(config)
    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        log_level=config.log_level,
        access_log=config.log_level.lower() in ("debug", "info"),
        timeout_graceful_shutdown=2,
    )


if __name__ == "__main__":
    main()
