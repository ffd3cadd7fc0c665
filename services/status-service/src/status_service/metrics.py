"""status-service's Prometheus metrics (served on ``/metrics`` with the shared HTTP ones).

- ``status_projection_lag_seconds``: from an event's ``occurred_at`` to its effect being committed to the
  read model, i.e. visible to a poll (and, a few milliseconds later, to the streams).
- ``status_events_total{event_type,outcome}``: events the projection applied or ignored as duplicates.
- ``status_changes_total{source}``: visible changes of the read model (projection or rebuild).
- ``status_open_streams``: open Server-Sent Events streams in this process.
- ``status_stream_delivery_seconds``: from a change's commit to its frame being handed to a stream.
- ``status_cache_lookups_total{result}``: polls answered from the in-process cache (hit), from the
  database (miss), or from the database because the change feed is down (bypass).
- ``status_change_feed_connected``: 1 while this process listens for changes.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PROJECTION_LAG = Histogram(
    "status_projection_lag_seconds",
    "From an event's occurred_at to its effect being visible in the read model",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
)
EVENTS = Counter("status_events_total", "Events received by the projection", ["event_type", "outcome"])
CHANGES = Counter("status_changes_total", "Visible changes of the read model", ["source"])
OPEN_STREAMS = Gauge("status_open_streams", "Open Server-Sent Events streams")
STREAM_DELIVERY = Histogram(
    "status_stream_delivery_seconds",
    "From a change's commit to its frame being handed to a stream",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5),
)
CACHE_LOOKUPS = Counter("status_cache_lookups_total", "Status lookups by where they were answered", ["result"])
CACHE_HIT = CACHE_LOOKUPS.labels("hit")
CACHE_MISS = CACHE_LOOKUPS.labels("miss")
CACHE_BYPASS = CACHE_LOOKUPS.labels("bypass")
FEED_CONNECTED = Gauge("status_change_feed_connected", "1 while this process listens for read-model changes")
