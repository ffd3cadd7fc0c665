"""``python -m stripe_fake`` / ``stripe-fake``: serve the fake with uvicorn (no access log)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

import uvicorn

from stripe_fake.app import create_app
from stripe_fake.config import config_from_args


def main(argv: Sequence[str] | None = None) -> None:
    """Parse flags/environment and run the server until interrupted."""
    config = config_from_args(argv)
    level = "debug" if config.log_level == "trace" else config.log_level
    logging.basicConfig(
        level=level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("stripe_fake").info(
        "stripe-fake on http://%s:%d (webhook endpoint: %s)",
        config.host,
        config.port,
        config.webhook_url or "none",
    )
    uvicorn.run(
        create_app(config),
        host=config.host,
        port=config.port,
        log_level=config.log_level,
        access_log=False,
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
