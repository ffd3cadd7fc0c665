"""Error answers: a database that refuses connections is a 503 the client may retry; a database error
that is a bug stays a 500; neither leaks a traceback."""

from __future__ import annotations

import asyncpg.exceptions
import httpx
import pytest
import sqlalchemy.exc
from fastapi import FastAPI

from spawnpoint_kit.http import install_common

pytestmark = pytest.mark.unit


def _app() -> FastAPI:
    app = FastAPI()
    install_common(app, checks={})

    @app.get("/too-many-clients")
    async def too_many() -> None:
        try:
            raise asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already")
        except asyncpg.exceptions.TooManyConnectionsError as exc:
            raise sqlalchemy.exc.DBAPIError("connect", None, Exception("wrapped")) from exc

    @app.get("/pool-timeout")
    async def pool_timeout() -> None:
        raise sqlalchemy.exc.TimeoutError("QueuePool limit reached")

    @app.get("/integrity")
    async def integrity() -> None:
        raise sqlalchemy.exc.IntegrityError("INSERT", None, Exception("duplicate key"))

    return app


def _client() -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_an_unreachable_database_is_a_503_with_retry_after() -> None:
    async with _client() as client:
        responses = {path: await client.get(path) for path in ("/too-many-clients", "/pool-timeout")}
    for path, response in responses.items():
        assert response.status_code == 503, path
        assert response.headers["retry-after"] == "1"
        assert "retry" in response.json()["detail"]


async def test_any_other_database_error_is_a_500_without_details() -> None:
    async with _client() as client:
        response = await client.get("/integrity")
    assert response.status_code == 500
    assert response.json()["detail"] == "internal error"
    assert "duplicate" not in response.text
