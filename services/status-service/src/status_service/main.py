"""ASGI entry point: ``uvicorn status_service.main:app``."""

from .bootstrap import create_app

app = create_app()
