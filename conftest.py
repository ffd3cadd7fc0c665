"""Every test session runs with the URLs the set-up wrote to ``.run/env`` (scripts/setup_infra.py: the
development PostgreSQL role's and RabbitMQ user's), so ``.venv/bin/pytest`` run by hand reaches the same
servers, with the same credentials and vhost, as ``make test``; a variable already set in the environment wins.
Without the file, ``SPAWNPOINT_PG_URL`` falls back to the trust URL everything used before the set-up existed.
"""

from setup_infra import load_env

load_env()
