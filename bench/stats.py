"""Latency summaries and the result files: ``bench/results/<scenario>.json`` plus a summary table."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .machine import describe

RESULTS = Path(__file__).resolve().parent / "results"


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of unsorted values; NaN for none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_ms(samples_seconds: Sequence[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples_seconds]
    return {
        "count": len(ms),
        "p50_ms": round(percentile(ms, 50), 2),
        "p95_ms": round(percentile(ms, 95), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(max(ms), 2) if ms else math.nan,
    }


@dataclass
class Figure:
    """One measured figure, beside its reference from the same run, and its target."""

    name: str
    value: float
    unit: str
    reference: float | None = None
    reference_name: str | None = None
    target: str | None = None
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        if self.reference in (None, 0) or self.reference is None or math.isnan(self.reference):
            return None
        return round(self.value / self.reference, 3)


@dataclass
class ScenarioResult:
    scenario: str
    parameters: dict[str, Any]
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def write(self, directory: Path = RESULTS) -> Path:
        """Write ``<directory>/<scenario>.json`` (the committed results by default; ``--results`` for trial
        runs, so that they never overwrite the committed files)."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.scenario}.json"
        data = {
            "scenario": self.scenario,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started_at)),
            "duration_seconds": round(time.time() - self.started_at, 1),
            "machine": describe(),
            "parameters": self.parameters,
            "figures": [{**asdict(f), "ratio_to_reference": f.ratio} for f in self.figures],
            "details": self.details,
        }
        path.write_text(json.dumps(data, indent=2, default=str) + "\n")
        return path


def table(results: Iterable[ScenarioResult]) -> str:
    rows = [("scenario", "figure", "value", "reference", "ratio", "target", "met")]
    for result in results:
        for f in result.figures:
            ref = "" if f.reference is None else f"{f.reference:,.1f} ({f.reference_name})"
            ratio = "" if f.ratio is None else f"{f.ratio:.2f}x"
            met = "" if f.met is None else ("MET" if f.met else "MISSED")
            rows.append((result.scenario, f.name, f"{f.value:,.1f} {f.unit}", ref, ratio, f.target or "", met))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
