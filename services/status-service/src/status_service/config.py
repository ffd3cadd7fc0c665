"""status-service settings (environment variables; the README and docs/status-api.md list them)."""

from __future__ import annotations

from pydantic import Field

from spawnpoint_kit.settings import CommonSettings


class Settings(CommonSettings):
    database_url: str = Field(
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/spawnpoint_status",
        validation_alias="STATUS_DB_URL",
    )
    cache_size: int = Field(
        default=50_000,
        ge=0,
        validation_alias="STATUS_CACHE_SIZE",
        description="Orders whose status each process keeps in memory for polling (0: read the database "
        "on every poll). Entries are replaced by the change feed, never served stale.",
    )
    stream_heartbeat_seconds: float = Field(
        default=15.0,
        gt=0,
        validation_alias="STATUS_STREAM_HEARTBEAT_SECONDS",
        description="Seconds between heartbeat comments on an idle event stream (keeps proxies from "
        "closing it and detects departed clients).",
    )
    stream_retry_ms: int = Field(
        default=3000,
        ge=0,
        validation_alias="STATUS_STREAM_RETRY_MS",
        description="The reconnection delay the event stream suggests to browsers (the SSE retry field).",
    )
    streams_per_user: int = Field(
        default=10,
        ge=1,
        validation_alias="STATUS_STREAMS_PER_USER",
        description="Event streams one user may hold open on one process (more: 429).",
    )
    streams_per_process: int = Field(
        default=5000,
        ge=1,
        validation_alias="STATUS_STREAMS_PER_PROCESS",
        description="Event streams one process holds open at most (more: 503, try another replica).",
    )
    stream_send_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        validation_alias="STATUS_STREAM_SEND_TIMEOUT_SECONDS",
        description="A stream whose client does not take a frame within this time is closed.",
    )
