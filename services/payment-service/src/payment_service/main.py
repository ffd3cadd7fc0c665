"""ASGI entry point: ``uvicorn payment_service.main:app``."""

from .bootstrap import create_app

app = create_app()
