"""Application factory: the panel's API behind a catch-all route, plus the ``/_fake`` control API."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from starlette.routing import Route as StarletteRoute

from panel_fake.config import PanelConfig
from panel_fake.pipeline import DropConnection, PanelApi
from panel_fake.routes import panel_routes
from panel_fake.routes.control import router as control_router
from panel_fake.routes.control_rows import router as control_rows_router
from panel_fake.runtime import PanelRuntime

ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class _DropConnectionFilter(logging.Filter):
    """A deliberately dropped connection is a test scenario, not an error worth a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DropConnection)


def create_app(config: PanelConfig | None = None) -> FastAPI:
    """Build the fake panel. ``app.state.runtime`` holds its state for in-process tests."""
    config = config or PanelConfig()
    runtime = PanelRuntime(config, panel_routes())
    app = FastAPI(
        title=f"panel-fake ({config.flavor})",
        description="Stand-in for the Pterodactyl/Pelican panel API. Control API under /_fake.",
        docs_url="/_fake/docs",
        openapi_url="/_fake/openapi.json",
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.config = config
    app.include_router(control_router)
    app.include_router(control_rows_router)
    # Everything else is the panel: its own router gives Laravel's 404/405 and check order.
    app.router.routes.append(StarletteRoute("/{path:path}", endpoint=PanelApi(runtime), methods=ALL_METHODS))
    for name in ("uvicorn.error", "uvicorn"):
        target = logging.getLogger(name)
        if not any(isinstance(existing, _DropConnectionFilter) for existing in target.filters):
            target.addFilter(_DropConnectionFilter())
    return app
