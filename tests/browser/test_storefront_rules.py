"""The storefront's rules that need no stack or browser (unit tests beside the browser tests): every text
in both languages, what production refuses, the development sign-in's tokens, the redirects, and which
headers the gateway passes on."""

from __future__ import annotations

import httpx
import pytest
from starlette.requests import Request

from spawnpoint_kit.auth import TokenVerifier
from storefront.app import create_app
from storefront.config import StorefrontSettings
from storefront.i18n import MESSAGES_DE, TEXTS
from storefront.proxy import request_headers, response_headers

pytestmark = pytest.mark.unit

SECRET = "storefront-unit-test-secret-0123456789"


def settings(**values: object) -> StorefrontSettings:
    return StorefrontSettings.model_validate({"JWT_SECRET": SECRET, **values})


def test_every_text_exists_in_english_and_german() -> None:
    assert set(TEXTS["en"]) == set(TEXTS["de"])
    untranslated = [
        k
        for k in TEXTS["en"]
        if TEXTS["en"][k] == TEXTS["de"][k]
        and k not in {"shop_name", "col_server", "col_status", "signin_name", "state_ready"}
    ]
    assert untranslated == []
    for state in ("state_waiting", "state_creating", "state_ready", "state_error", "state_not_found"):
        assert TEXTS["de"][state]
    assert all(MESSAGES_DE.values())


def test_production_refuses_development_settings() -> None:
    with pytest.raises(ValueError, match="STOREFRONT_TEST_CONTROLS"):
        settings(
            SPAWNPOINT_ENV="production",
            STOREFRONT_DEV_SIGN_IN="false",
            STOREFRONT_TEST_CONTROLS="true",
            STRIPE_PUBLISHABLE_KEY="pk_live_x",
            STRIPE_JS_URL="https://js.stripe.com/v3/",
            JWT_SECRET="x" * 40,
        )
    with pytest.raises(ValueError, match="STRIPE_JS_URL"):
        settings(SPAWNPOINT_ENV="production", STOREFRONT_DEV_SIGN_IN="false", STRIPE_PUBLISHABLE_KEY="pk_live_x")
    ready = settings(
        SPAWNPOINT_ENV="production",
        STOREFRONT_DEV_SIGN_IN="false",
        STRIPE_PUBLISHABLE_KEY="pk_live_x",
        STRIPE_JS_URL="https://js.stripe.com/v3/",
        STOREFRONT_TOKEN_SOURCE="cookie:shop_token",
    )
    assert not ready.dev_sign_in_enabled
    with pytest.raises(ValueError):
        settings(STOREFRONT_TOKEN_SOURCE="somewhere:else")


def client_of(app_settings: StorefrontSettings) -> httpx.AsyncClient:
    """The app in process (no lifespan: nothing here reaches a service)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(app_settings)), base_url="http://shop")


async def test_the_development_sign_in_mints_a_token_the_services_accept() -> None:
    client = client_of(settings())
    answer = await client.post("/dev/sign-in", json={"name": "Alex", "email": "Alex@Example.test"})
    assert answer.status_code == 200
    principal = TokenVerifier(SECRET).verify(answer.json()["access_token"])
    assert principal.email == "alex@example.test"
    assert principal.name == "Alex", "the name in the OIDC name claim: what e-mails greet the customer by"
    again = await client.post("/dev/sign-in", json={"name": "Alex", "email": "alex@example.test"})
    assert TokenVerifier(SECRET).verify(again.json()["access_token"]).user_id == principal.user_id
    assert (await client.post("/dev/sign-in", json={"name": "Alex", "email": "not-an-address"})).status_code == 422
    off = client_of(settings(STOREFRONT_DEV_SIGN_IN="false"))
    assert (await off.post("/dev/sign-in", json={"name": "Alex", "email": "alex@example.test"})).status_code == 404
    await client.aclose()
    await off.aclose()


async def test_pages_redirects_and_the_connect_target() -> None:
    client = client_of(settings(PANEL_URL="http://panel.example"))
    assert (await client.get("/readyz")).status_code == 200
    de = await client.get("/", headers={"Accept-Language": "de-DE,de;q=0.9"})
    assert de.headers["location"] == "/de/"
    page = await client.get("/de/")
    assert page.status_code == 200 and "Buche deinen Gameserver" in page.text
    assert 'lang="de"' in page.text and "Content-Security-Policy" in page.headers
    back = await client.get("/checkout/return?session_id=cs_test_1")  # the cookie from /de/ picks the language
    assert back.headers["location"] == "/de/checkout/return?session_id=cs_test_1"
    assert (await client.get("/fr/")).status_code == 404
    connect = await client.get("/gameserver/a1b2c3d4")
    assert (connect.status_code, connect.headers["location"]) == (302, "http://panel.example/server/a1b2c3d4")
    assert (await client.get("/gameserver/..%2Fadmin")).status_code == 404
    await client.aclose()


def _request(headers: list[tuple[bytes, bytes]]) -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/",
            "headers": headers,
            "client": ("10.0.0.7", 5),
            "scheme": "http",
            "query_string": b"",
            "server": ("shop", 80),
        }
    )


def test_the_gateway_drops_hop_by_hop_headers_both_ways() -> None:
    sent = dict(
        request_headers(
            _request(
                [
                    (b"host", b"shop.example"),
                    (b"connection", b"keep-alive, X-Private"),
                    (b"x-private", b"1"),
                    (b"keep-alive", b"timeout=5"),
                    (b"te", b"trailers"),
                    (b"authorization", b"Bearer t"),
                    (b"last-event-id", b"4"),
                    (b"cookie", b"session=1"),
                    (b"x-forwarded-for", b"spoofed"),
                ]
            )
        )
    )
    assert sent["authorization"] == "Bearer t" and sent["last-event-id"] == "4"
    assert not {"host", "connection", "x-private", "keep-alive", "te", "cookie"} & set(sent)
    assert sent["x-forwarded-for"] == "10.0.0.7" and sent["x-forwarded-host"] == "shop.example"
    upstream = httpx.Response(
        200,
        headers=[
            ("content-type", "text/event-stream"),
            ("transfer-encoding", "chunked"),
            ("connection", "close"),
            ("etag", '"abc"'),
            ("upgrade", "h2c"),
        ],
    )
    assert dict(response_headers(upstream)) == {"content-type": "text/event-stream", "etag": '"abc"'}
