"""``python -m chaos [--orders N] [--quick] [--deadline S]``: run one campaign, write
``bench/results/chaos.json`` and print the summary table. Exit 1 unless every figure is zero."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from .campaign import campaign, table, write_results

RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results" / "chaos.json"


def main() -> int:
    parser = argparse.ArgumentParser(prog="make chaos ARGS=...", description=__doc__)
    parser.add_argument("--orders", type=int, default=200, help="paid orders driven (default 200)")
    parser.add_argument("--quick", action="store_true", help="the subset of faults make test runs")
    parser.add_argument(
        "--deadline",
        type=float,
        default=240.0,
        help="seconds after the last fault for every order to be terminal (default 240)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the campaign's databases and queues")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where the JSON result goes")
    args = parser.parse_args()
    print(f"chaos: {args.orders} orders, {'quick' if args.quick else 'every'} fault", flush=True)
    report = asyncio.run(campaign(orders=args.orders, quick=args.quick, deadline_seconds=args.deadline, keep=args.keep))
    write_results(report, args.output)
    print(table(report))
    for title, items in (
        ("lost", report.lost),
        ("doubled", report.doubled),
        ("wrong refunds", report.wrong_refunds),
        ("not terminal", report.not_terminal),
        ("customer errors", report.customer_errors),
    ):
        for item in items[:10]:
            print(f"  {title}: {item}")
    print(f"written: {args.output}")
    return 0 if report.clean else 1


if __name__ == "__main__":
    sys.exit(main())
