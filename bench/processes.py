"""Starting helper servers (the reference endpoints, the seed-style reference and its panel stand-in) as
separate processes, each stopped when its ``with`` block ends."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

from devstack import BIN, ROOT


@contextmanager
def serving(
    argv: Sequence[str],
    ready_url: str,
    *,
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
    timeout: float = 120.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` until the block ends; enter the block once ``ready_url`` answers below 500 (within
    ``timeout``: importing FastAPI and SQLAlchemy takes 20 s on this 2-core machine when it is busy).
    Yields the process (its pid is what the CPU figures read from ``/proc``)."""
    out = log.open("ab") if log is not None else None
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and programs
        list(argv),
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=out if out is not None else subprocess.DEVNULL,
        stderr=subprocess.STDOUT if out is not None else subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=1.0) as client:
            while True:
                try:
                    if client.get(ready_url).status_code < 500:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"{argv[0]} did not start" + (f"; see {log}" if log else ""))
                time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if out is not None:
            out.close()


@contextmanager
def uvicorn_app(
    app: str,
    port: int,
    *,
    ready_path: str = "/docs",
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Serve ``app`` with uvicorn as the services are served (no reload, no access log, warnings only)."""
    argv = [
        str(BIN / "uvicorn"),
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    with serving(argv, f"http://127.0.0.1:{port}{ready_path}", env=env, log=log) as proc:
        yield proc
