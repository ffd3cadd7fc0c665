"""Error answers: a database that refuses connections is a 503 the client may retry; a database error
that is a bug stays a 500; neither leaks a traceback. A client's correlation id is taken only when it can
travel on the wire."""

from __future__ import annotations

import uuid

import asyncpg.exceptions
import httpx
import pytest
import sqlalchemy.exc
from fastapi import FastAPI

from spawnpoint_kit.http import NotReady, current_correlation_id, install_common
from spawnpoint_kit.messaging.wire import is_token

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


def _echo_app() -> FastAPI:
    app = FastAPI()
    install_common(app, checks={})

    @app.get("/echo")
    async def echo() -> dict[str, str]:
        return {"correlation_id": current_correlation_id()}

    return app


@pytest.mark.parametrize(
    "header",
    [
        b"\xe9" * 200,  # finding 1: 200 latin-1 characters, 400 bytes once UTF-8
        b"caf\xe9",  # one non-ASCII byte
        b"a" * 201,  # too long: never cut
        b"two words",
        b"tab\tinside",
    ],
)
async def test_a_correlation_id_that_could_not_go_on_the_wire_is_replaced_not_cut(header: bytes) -> None:
    transport = httpx.ASGITransport(app=_echo_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/echo", headers=[(b"X-Correlation-ID", header)])
    assert response.status_code == 200
    used = response.json()["correlation_id"]
    assert response.headers["x-correlation-id"] == used
    assert str(uuid.UUID(used)) == used, "a fresh id replaces what cannot travel"
    assert is_token(used)


async def test_a_well_formed_correlation_id_is_kept() -> None:
    transport = httpx.ASGITransport(app=_echo_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/echo", headers={"X-Correlation-ID": "shop-checkout:42/a=b"})
    assert response.json()["correlation_id"] == "shop-checkout:42/a=b"


async def test_readyz_names_the_failing_check_but_never_its_exception_text() -> None:
    """Finding 12: /readyz answered anyone with the exception's text (hosts, users, queue names)."""

    async def database() -> None:
        raise OSError("could not connect to db.internal.example:5432 as spawnpoint_admin")

    async def started() -> None:
        raise NotReady("starting: waiting for the broker")

    app = FastAPI()
    install_common(app, checks={"database": database, "started": started})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "failing", "started": "starting: waiting for the broker"}
    assert "db.internal" not in response.text and "spawnpoint_admin" not in response.text


async def test_a_refused_database_connection_that_arrives_unwrapped_is_a_503() -> None:
    """make chaos found it: during a PostgreSQL outage asyncpg's connect raised ConnectionRefusedError itself,
    not wrapped in a DBAPIError, and every request during the outage was a 500."""
    app = FastAPI()
    install_common(app, checks={})

    @app.get("/refused")
    async def refused() -> None:
        raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")

    transport = httpx.ASGITransport(app=app)  # raises if anything escapes the app (uvicorn would log it)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/refused")
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
