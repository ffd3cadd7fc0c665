"""The system under test, started in a production-like configuration.

Same processes as ``make run`` (four services, two stand-ins), with logs at WARNING, no reload, the panel
stand-in without its rate limit and installing at once, and the provisioner's own panel budget lifted to
match, so that the pipeline's overhead, not the stand-in's simulated delays, is what gets measured. It runs
on free ports with its own databases and queue namespace, so it never touches a developer's `make up`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devstack import Stack, StackConfig, drop_databases, drop_namespace

RUN_LOGS = Path(__file__).resolve().parents[1] / ".run" / "bench-logs"
PANEL_INSTALL_SECONDS = 0.0
"""How long the bench's panel stand-in keeps a new server installing."""
PANEL_ARGS = ("--rate-limit", "0", "--install-seconds", f"{PANEL_INSTALL_SECONDS:g}")
"""The panel stand-in's flags in every bench run (the seed-style reference starts its own panel with them)."""
INSTALL_POLL_SECONDS = 0.2
"""How often the bench's provisioner asks the panel whether an install finished: part of every order's
webhook -> CREATED time by design, so the pipeline scenario subtracts it from its added latency."""


def bench_config(**overrides: object) -> StackConfig:
    run_id = uuid.uuid4().hex[:8]
    config = StackConfig.for_tests(run_id, RUN_LOGS / run_id)
    config.database_prefix = f"sp_bench_{run_id}"
    config.namespace = f"bench{run_id}."
    config.log_level = "WARNING"
    config.panel_args = list(PANEL_ARGS)
    # Production-sized pools (the test default is small so that test stacks can share one PostgreSQL).
    config.extra_env = {**config.extra_env, "DB_POOL_SIZE": os.environ.get("BENCH_DB_POOL_SIZE", "20")}
    config.per_process_env = {
        "provisioner": {
            "PANEL_RATE_LIMIT_PER_MINUTE": "1000000",
            "PANEL_RATE_LIMIT_BURST": "1000",
            "INSTALL_POLL_SECONDS": str(INSTALL_POLL_SECONDS),
        },
        # status-polling watches one order from 1,000 streams of one customer: far past the per-user cap.
        "status-service": {"STATUS_STREAMS_PER_USER": "5000"},
        "payment-service": {"STRIPE_CALLS_PER_CUSTOMER_PER_MINUTE": "1000000"},
    }
    for key, value in overrides.items():
        setattr(config, key, value)
    return config


@contextmanager
def running_system(**overrides: object) -> Iterator[Stack]:
    stack = Stack(bench_config(**overrides))
    try:
        stack.start(timeout=180)
        yield stack
    finally:
        stack.stop()
        drop_databases(stack.config)
        drop_namespace(stack.config)
