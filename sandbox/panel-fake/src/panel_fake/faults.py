"""Proxy-level faults and the request log.

Faults here act *in front of* the panel, like the nginx or Cloudflare that usually sits
there: the request never reaches the panel, so nothing is written. A fault answers with a
status (with the panel's envelope, or a bare proxy page), adds latency, or takes the whole
API down. The request log records every API request so a test can count the calls made per
order (``external_id``).
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

DownMode = Literal["503", "close"]


@dataclass
class ProxyFault:
    """One fault rule; ``times=None`` means until cleared."""

    id: int
    status: int | None = None
    times: int | None = None
    method: str | None = None
    path_prefix: str = "/api/"
    latency_seconds: float = 0.0
    envelope: bool = False
    code: str | None = None
    detail: str | None = None
    retry_after: int | None = None
    close: bool = False

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return path.startswith(self.path_prefix)

    def describe(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FaultBook:
    """Registered faults, consumed in registration order."""

    faults: list[ProxyFault] = field(default_factory=list)
    down: DownMode | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def add(self, **values: Any) -> ProxyFault:
        fault = ProxyFault(id=next(self._ids), **values)
        self.faults.append(fault)
        return fault

    def clear(self) -> None:
        self.faults.clear()
        self.down = None

    def take(self, method: str, path: str) -> ProxyFault | None:
        """The first fault matching this request; counts one use of it."""
        for fault in self.faults:
            if fault.matches(method, path):
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                return fault
        return None


@dataclass
class LoggedRequest:
    id: int
    method: str
    path: str
    query: str
    status: int
    timestamp: str
    duration_ms: float
    external_id: str | None = None
    user_external_id: str | None = None
    key: str | None = None
    fault: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class RequestLog:
    """Every ``/api`` request received, newest last (bounded so a long benchmark cannot bloat it).

    An entry is written when its response is done, so a request still in flight when the log is cleared
    (a ``commit_then_hang`` create, a slow fault) would land in the next test's log. ``generation``
    changes on every clear; a request records the generation it started in and is dropped if the log
    was cleared since."""

    def __init__(self, limit: int = 200_000) -> None:
        self._entries: deque[LoggedRequest] = deque(maxlen=limit)
        self._ids = itertools.count(1)
        self.generation = 0

    def clear(self) -> None:
        self._entries.clear()
        self.generation += 1

    def record(
        self,
        *,
        method: str,
        path: str,
        query: str,
        status: int,
        started_wall: datetime,
        duration_ms: float,
        external_id: str | None,
        user_external_id: str | None,
        key: str | None,
        fault: str | None,
        generation: int | None = None,
    ) -> LoggedRequest | None:
        if generation is not None and generation != self.generation:
            return None  # started before the log was cleared
        entry = LoggedRequest(
            id=next(self._ids),
            method=method,
            path=path,
            query=query,
            status=status,
            timestamp=started_wall.astimezone(UTC).isoformat(timespec="milliseconds"),
            duration_ms=round(duration_ms, 3),
            external_id=external_id,
            user_external_id=user_external_id,
            key=key,
            fault=fault,
        )
        self._entries.append(entry)
        return entry

    def entries(
        self,
        *,
        external_id: str | None = None,
        method: str | None = None,
        path_prefix: str | None = None,
        path: str | None = None,
        status: int | None = None,
    ) -> list[LoggedRequest]:
        wanted = external_id.casefold() if external_id is not None else None
        result: list[LoggedRequest] = []
        for entry in self._entries:
            if wanted is not None and (entry.external_id is None or entry.external_id.casefold() != wanted):
                continue
            if method is not None and entry.method.upper() != method.upper():
                continue
            if path_prefix is not None and not entry.path.startswith(path_prefix):
                continue
            if path is not None and entry.path.rstrip("/") != path.rstrip("/"):
                continue
            if status is not None and entry.status != status:
                continue
            result.append(entry)
        return result
