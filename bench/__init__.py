"""``make bench``: throughput, latency and isolation of the whole pipeline, each figure beside a reference
measured in the same run. See docs/performance.md."""

import sys
from pathlib import Path

# The system is started with the same launcher as `make run` (scripts/devstack.py).
_SCRIPTS = str(Path(__file__).resolve().parents[1] / "scripts")
if _SCRIPTS not in sys.path:
    sys.path.insert(0, _SCRIPTS)
