"""``python -m bench [scenario ...] [options]``: run the scenarios, write ``bench/results/<scenario>.json``
(or ``--results DIR``) and print the summary table. With no scenario named, all five run in order;
``seed-reference`` (the seed-style reference alone, which the pipeline also runs) only when named."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from .stats import RESULTS, ScenarioResult, table

SCENARIOS = ("webhook-ingest", "pipeline", "status-polling", "isolation", "memory")
EXTRA_SCENARIOS = ("seed-reference",)


_PIPELINE: list[ScenarioResult] = []
"""The pipeline result of this invocation, if it ran: memory is measured during it rather than again."""


def _runner(name: str, args: argparse.Namespace) -> Callable[[], ScenarioResult | list[ScenarioResult]]:
    if name == "webhook-ingest":
        from .scenarios import webhook_ingest

        return lambda: webhook_ingest.run(orders=args.webhooks, concurrency=args.concurrency)
    if name == "pipeline":
        from .scenarios import pipeline

        def run_pipeline() -> ScenarioResult:
            result = pipeline.run(
                orders=args.orders,
                rate=args.rate,
                rated_orders=args.rated_orders,
                light_orders=args.light_orders,
                seed_orders=args.seed_orders,
                panel_latency=args.panel_latency,
            )
            _PIPELINE.append(result)
            return result

        return run_pipeline
    if name == "status-polling":
        from .scenarios import status_polling

        return lambda: status_polling.run(pollers=args.pollers, streams=args.streams, requests=args.poll_requests)
    if name == "isolation":
        from .scenarios import isolation

        return lambda: isolation.run(orders=args.backlog)
    if name == "seed-reference":
        from .scenarios import seed_style

        return lambda: seed_style.run(
            orders=args.orders if args.seed_orders is None else args.seed_orders,
            panel_latency=args.panel_latency,
            paced_orders=args.light_orders,
        )
    if name == "memory":
        from .scenarios import pipeline

        return lambda: pipeline.memory_of(_PIPELINE[0]) if _PIPELINE else pipeline.run_memory(orders=args.orders)
    raise SystemExit(f"unknown scenario {name}; choose from {', '.join(SCENARIOS + EXTRA_SCENARIOS)}")


def main() -> int:
    parser = argparse.ArgumentParser(prog="make bench ARGS=...", description=__doc__)
    parser.add_argument(
        "scenarios", nargs="*", default=list(SCENARIOS), help=f"any of {', '.join(SCENARIOS + EXTRA_SCENARIOS)}"
    )
    parser.add_argument("--orders", type=int, default=2000, help="pipeline: orders end to end (default 2000)")
    parser.add_argument("--rate", type=float, default=20.0, help="pipeline: the fixed moderate rate (orders/s)")
    parser.add_argument("--rated-orders", type=int, default=400, help="pipeline: orders sent at --rate")
    parser.add_argument(
        "--light-orders",
        type=int,
        default=100,
        help="pipeline: orders at half the sustained rate (again with the panel slowed); seed-reference: the same",
    )
    parser.add_argument(
        "--seed-orders",
        type=int,
        default=None,
        help="pipeline, seed-reference: webhooks in the seed-style reference's burst (default: --orders)",
    )
    parser.add_argument(
        "--panel-latency",
        type=float,
        default=0.5,
        help="pipeline, seed-reference: seconds added to the panel's creates for the panel-independence runs",
    )
    parser.add_argument("--webhooks", type=int, default=3000, help="webhook-ingest: distinct orders/events")
    parser.add_argument("--concurrency", type=int, default=16, help="webhook-ingest: connections")
    parser.add_argument("--pollers", type=int, default=1000, help="status-polling: concurrent pollers")
    parser.add_argument("--poll-requests", type=int, default=30000, help="status-polling: requests per run")
    parser.add_argument("--streams", type=int, default=1000, help="status-polling: open event streams")
    parser.add_argument("--backlog", type=int, default=900, help="isolation: orders over the three phases")
    parser.add_argument(
        "--results",
        type=Path,
        default=RESULTS,
        help="directory for the <scenario>.json files (default bench/results, the committed ones)",
    )
    args = parser.parse_args()

    results: list[ScenarioResult] = []
    for name in args.scenarios:
        print(f"== {name}", flush=True)
        outcome = _runner(name, args)()
        for result in outcome if isinstance(outcome, list) else [outcome]:
            path = result.write(args.results)
            results.append(result)
            shown = path.relative_to(RESULTS.parents[1]) if path.is_relative_to(RESULTS.parents[1]) else path
            print(f"   wrote {shown}", flush=True)
    print()
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
