"""ASGI entry point: ``uvicorn order_service.main:app``."""

from .bootstrap import create_app

app = create_app()
