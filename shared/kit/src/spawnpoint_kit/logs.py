"""Structured JSON logs with the order id and correlation id on every line.

structlog's contextvars carry ``order_id``, ``correlation_id`` and ``event_id`` from the request or
message being handled into every log line written while handling it, including lines from libraries
that log through the standard ``logging`` module. A redaction step masks anything that looks like a
secret, so a token or key pasted into a log call never reaches the output. With tracing on, every line
also carries the ``trace_id`` and ``span_id`` it was written in.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import structlog

from . import tracing

_SECRET_KEYS = re.compile(r"(secret|password|passwd|token|authorization|api_key|apikey|signature)", re.I)
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/@\s]+:)(?P<pw>[^@\s]+)(?P<at>@)", re.I)


def _redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in list(event_dict.items()):
        if _SECRET_KEYS.search(key) and value is not None:
            event_dict[key] = "***"
        elif isinstance(value, str) and "://" in value:
            event_dict[key] = _URL_PASSWORD.sub(r"\g<scheme>***\g<at>", value)
    return event_dict


def _trace_ids(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """With tracing on, each line names the trace and span it was written in (from a log line to its trace)."""
    if tracing.ENABLED:
        ids = tracing.current_ids()
        if ids is not None:
            event_dict.setdefault("trace_id", ids[0])
            event_dict.setdefault("span_id", ids[1])
    return event_dict


def configure_logging(service: str, *, level: str = "INFO", fmt: str = "json") -> None:
    """Route structlog and stdlib logging to one JSON (or console) stream on stdout."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _trace_ids,
        _redact,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    for name in ("uvicorn", "uvicorn.error", "faststream", "aio_pika", "aiormq"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    for quiet in ("aio_pika", "aiormq"):
        logging.getLogger(quiet).setLevel(max(logging.WARNING, root.level))
    structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger


@contextmanager
def log_context(**values: Any) -> Iterator[None]:
    """Bind values (order_id, correlation_id, event_id...) to every log line inside the block."""
    clean = {k: str(v) for k, v in values.items() if v is not None}
    with structlog.contextvars.bound_contextvars(**clean):
        yield
