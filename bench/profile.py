"""``python -m bench.profile [--orders N] [--out DIR]``: where an order's CPU goes, per process.

Starts the same system as ``make bench`` (``running_system``), attaches ``py-spy record`` to every service
and stand-in, drives a burst of orders to CREATED (as the pipeline scenario does) and writes, for each
process, the collapsed stacks (``<name>.txt``, for ``flamegraph.pl`` or speedscope) and a flame graph
(``<name>.svg``). Then it prints the functions with the most samples, inclusive and exclusive, and the CPU
milliseconds per order each process spent (from ``/proc``, unaffected by the sampling).

py-spy samples without stopping the process (``--nonblocking``) at 100 Hz, so the profiled run is a few
percent slower than the measured one; the shares between functions are what it is for.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import subprocess
import sys
import time
from pathlib import Path

from .counters import cpu_seconds
from .scenarios.pipeline import _drive, _make_room
from .system import running_system

BIN = Path(sys.executable).parent


def _top(collapsed: Path, limit: int) -> tuple[list[tuple[str, int]], list[tuple[str, int]], int]:
    inclusive: collections.Counter[str] = collections.Counter()
    exclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        for frame in set(frames):
            inclusive[frame] += count
        exclusive[frames[-1]] += count
    return inclusive.most_common(limit), exclusive.most_common(limit), total


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--orders", type=int, default=600)
    parser.add_argument("--out", type=Path, default=Path(".run/profile"))
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--only", nargs="*", default=None, help="processes to profile (default: all)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with running_system() as stack:
        asyncio.run(_make_room(stack, args.orders + 100))
        names = [n for n in stack.procs if args.only is None or n in args.only]
        spies = {}
        for name in names:
            raw = args.out / f"{name}.txt"
            spies[name] = subprocess.Popen(  # noqa: S603 - py-spy from our venv
                [
                    str(BIN / "py-spy"),
                    "record",
                    "--nonblocking",
                    "--format",
                    "raw",
                    "--rate",
                    "100",
                    "--output",
                    str(raw),
                    "--pid",
                    str(stack.procs[name].pid),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        time.sleep(1.0)  # py-spy attached before the first order
        cpu_before = {n: cpu_seconds(p.pid) for n, p in stack.procs.items()}
        burst = asyncio.run(_drive(stack, args.orders, tag="profile", rate=None, concurrency=64))
        cpu = {n: cpu_seconds(p.pid) - cpu_before[n] for n, p in stack.procs.items()}
        for spy in spies.values():
            spy.send_signal(2)
        for spy in spies.values():
            spy.wait(timeout=60)
    seconds = burst.all_created - burst.started
    print(f"{args.orders} orders in {seconds:.1f} s ({args.orders / seconds:.1f}/s)")
    print("CPU ms per order: " + ", ".join(f"{n} {v * 1000 / args.orders:.1f}" for n, v in cpu.items()))
    print(f"total {sum(cpu.values()) * 1000 / args.orders:.1f} ms")
    for name in names:
        raw = args.out / f"{name}.txt"
        if not raw.exists():
            print(f"\n## {name}: no samples")
            continue
        inclusive, exclusive, total = _top(raw, args.top)
        print(f"\n## {name}: {total} samples ({raw})")
        print("  inclusive:")
        for frame, count in inclusive:
            print(f"    {100 * count / total:5.1f}%  {frame[:150]}")
        print("  exclusive:")
        for frame, count in exclusive:
            print(f"    {100 * count / total:5.1f}%  {frame[:150]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
