"""ASGI entry point: ``uvicorn notification_service.main:app``."""

from .bootstrap import create_app

app = create_app()
