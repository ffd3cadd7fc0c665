"""ASGI entry point: ``uvicorn provisioner.main:app``."""

from .bootstrap import create_app

app = create_app()
