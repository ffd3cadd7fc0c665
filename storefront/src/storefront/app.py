"""The storefront's web app: the pages (server-rendered shells, plain JavaScript, no build step), the
same-origin API gateway, the development sign-in and the Connect redirect.

Pages live under their locale (``/en/...``, ``/de/...``). ``/checkout/return`` has none because Stripe
sends the customer back to the one ``CHECKOUT_RETURN_URL`` payment-service was given: it forwards to the
locale the customer last used (a cookie), else the browser's language.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict, Field

from spawnpoint_kit.auth import mint_token

from .config import StorefrontSettings
from .i18n import DEFAULT_LOCALE, LOCALES, messages, texts
from .proxy import Gateway

HERE = Path(__file__).parent
LOCALE_COOKIE = "sf_locale"
SERVER_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
DEV_TOKEN_TTL_SECONDS = 12 * 3600


class SignInIn(BaseModel):
    """The development sign-in form: who to be."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    email: str = Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _preferred_locale(request: Request) -> str:
    chosen = request.cookies.get(LOCALE_COOKIE)
    if chosen in LOCALES:
        return chosen
    for part in request.headers.get("accept-language", "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in LOCALES:
            return tag
    return DEFAULT_LOCALE


def _security_headers(settings: StorefrontSettings) -> dict[str, str]:
    stripe = urlsplit(str(settings.stripe_js_url))
    stripe_origin = f"{stripe.scheme}://{stripe.netloc}"
    # Stripe's own Stripe.js also frames and calls its other hosts (its published CSP guidance); the
    # stand-in serves everything from its one origin.
    others = " https://*.stripe.com https://*.stripe.network" if stripe.netloc.endswith("stripe.com") else ""
    return {
        "Content-Security-Policy": (
            f"default-src 'self'; script-src 'self' {stripe_origin}{others}; frame-src {stripe_origin}{others}; "
            f"connect-src 'self'{others}; img-src 'self' data:{others}; style-src 'self'; base-uri 'none'; "
            "form-action 'self'"
        ),
        "Referrer-Policy": "same-origin",
        "X-Content-Type-Options": "nosniff",
    }


def create_app(settings: StorefrontSettings | None = None) -> FastAPI:
    """The app; ``settings`` default to the environment's."""
    settings = settings or StorefrontSettings()
    gateway = Gateway(
        {
            "order": settings.order_service_url,
            "payment": settings.payment_service_url,
            "status": settings.status_service_url,
        },
        timeout=settings.proxy_timeout_seconds,
        stream_idle=settings.stream_idle_seconds,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await gateway.aclose()

    app = FastAPI(title="Spawnpoint storefront", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.gateway = gateway
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    static_version = _static_version()
    headers = _security_headers(settings)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    def page(request: Request, locale: str, name: str, title_key: str, **extra: Any) -> HTMLResponse:
        if locale not in LOCALES:
            raise HTTPException(status_code=404, detail="no such page")
        words = texts(locale)
        config = {
            "locale": locale,
            "page": name,
            "texts": words,
            "messages": messages(locale),
            "stripeJsUrl": str(settings.stripe_js_url),
            "publishableKey": settings.stripe_publishable_key,
            "tokenSource": settings.token_source,
            "signInUrl": settings.sign_in_url or f"/{locale}/sign-in",
            **{k: v for k, v in extra.items() if k.startswith("js_")},
        }
        config = {k.removeprefix("js_"): v for k, v in config.items()}
        response = templates.TemplateResponse(
            request,
            f"{name}.html",
            {
                "t": words,
                "locale": locale,
                "locales": LOCALES,
                "page_name": name,
                "title": words[title_key].format(id=str(extra.get("js_orderId", ""))[:8]),
                "config_json": json.dumps(config, ensure_ascii=False).replace("</", "<\\/"),
                "stripe_js_url": str(settings.stripe_js_url),
                "static_version": static_version,
                "dev_sign_in": settings.dev_sign_in_enabled,
                "path_rest": request.url.path.split("/", 2)[2] if request.url.path.count("/") >= 2 else "",
                "query": request.url.query,
                **extra,
            },
            headers=headers,
        )
        response.set_cookie(LOCALE_COOKIE, locale, max_age=365 * 24 * 3600, samesite="lax")
        return response

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        return JSONResponse({"status": "ready"})

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.get("/")
    async def root(request: Request) -> RedirectResponse:
        return RedirectResponse(f"/{_preferred_locale(request)}/", status_code=302)

    @app.get("/checkout/return")
    async def checkout_return_any(request: Request) -> RedirectResponse:
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(f"/{_preferred_locale(request)}/checkout/return{query}", status_code=302)

    @app.get("/gameserver/{server_id}")
    async def gameserver(server_id: str) -> RedirectResponse:
        """The Connect button's target: the server's own page on the game panel (Pterodactyl and Pelican
        both show a server at ``/server/{identifier}``, the ``server_id`` status-service reports)."""
        if not SERVER_ID.fullmatch(server_id):
            raise HTTPException(status_code=404, detail="no such server")
        return RedirectResponse(f"{settings.connect_base}/server/{server_id}", status_code=302)

    @app.post("/dev/sign-in")
    async def dev_sign_in(body: SignInIn) -> JSONResponse:
        """Development only: a customer token for a name and e-mail, signed like the services expect (the
        name in the OIDC ``name`` claim, what e-mails greet the customer by). The user id is derived from
        the e-mail, so signing in again with it finds the same orders."""
        if not settings.dev_sign_in_enabled:
            raise HTTPException(status_code=404, detail="the development sign-in is switched off")
        email = body.email.lower()
        user_id = "dev-" + hashlib.sha256(email.encode()).hexdigest()[:16]
        token = mint_token(
            settings.jwt_secret.get_secret_value(),
            sub=user_id,
            email=email,
            name=body.name,
            ttl_seconds=DEV_TOKEN_TTL_SECONDS,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
        )
        return JSONResponse({"access_token": token, "token_type": "Bearer", "user_id": user_id, "name": body.name})

    if settings.test_controls:

        @app.post("/_storefront/streams/cut")
        async def cut_streams(block: bool = True) -> JSONResponse:
            """Cut every proxied event stream; with ``block`` refuse new ones (503) until ``allow``."""
            return JSONResponse({"cut": gateway.cutter.cut_all(block=block), "blocked": block})

        @app.post("/_storefront/streams/allow")
        async def allow_streams() -> JSONResponse:
            gateway.cutter.blocked = False
            return JSONResponse({"blocked": False})

        @app.get("/_storefront/streams")
        async def streams() -> JSONResponse:
            return JSONResponse({"open": gateway.cutter.open_streams, "blocked": gateway.cutter.blocked})

    @app.api_route("/api/{service}/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def api(request: Request, service: str, path: str) -> Response:
        return await gateway.forward(request, service, path)

    @app.get("/{locale}/")
    async def book(request: Request, locale: str) -> HTMLResponse:
        return page(request, locale, "book", "book_title")

    @app.get("/{locale}")
    async def locale_root(locale: str) -> RedirectResponse:
        if locale not in LOCALES:
            raise HTTPException(status_code=404, detail="no such page")
        return RedirectResponse(f"/{locale}/", status_code=302)

    @app.get("/{locale}/checkout/return")
    async def checkout_return(request: Request, locale: str) -> HTMLResponse:
        return page(request, locale, "return", "return_title", js_sessionId=request.query_params.get("session_id", ""))

    @app.get("/{locale}/checkout/{order_id}")
    async def checkout(request: Request, locale: str, order_id: str) -> HTMLResponse:
        return page(request, locale, "checkout", "checkout_title", js_orderId=order_id)

    @app.get("/{locale}/orders/{order_id}")
    async def order(request: Request, locale: str, order_id: str) -> HTMLResponse:
        return page(request, locale, "order", "order_title", js_orderId=order_id)

    @app.get("/{locale}/servers")
    async def servers(request: Request, locale: str) -> HTMLResponse:
        return page(request, locale, "servers", "servers_title")

    @app.get("/{locale}/account")
    async def account(locale: str) -> RedirectResponse:
        """Where Stripe's customer portal sends the customer back (``BILLING_PORTAL_RETURN_URL``)."""
        return RedirectResponse(f"/{locale if locale in LOCALES else DEFAULT_LOCALE}/servers", status_code=302)

    @app.get("/account")
    async def account_any(request: Request) -> RedirectResponse:
        return RedirectResponse(f"/{_preferred_locale(request)}/servers", status_code=302)

    @app.get("/{locale}/sign-in")
    async def sign_in(request: Request, locale: str) -> HTMLResponse:
        nxt = request.query_params.get("next", "")
        safe_next = nxt if nxt.startswith("/") and not nxt.startswith("//") else f"/{locale}/"
        return page(
            request,
            locale,
            "signin",
            "signin_title" if settings.dev_sign_in_enabled else "nav_sign_in",
            js_next=safe_next,
            js_devSignIn=settings.dev_sign_in_enabled,
        )

    return app


def _static_version() -> str:
    """A hash of the static files, appended to their URLs so a new release is never served from cache."""
    digest = hashlib.sha256()
    for path in sorted((HERE / "static").glob("*")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]
