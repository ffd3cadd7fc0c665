"""mail-fake's HTTP side: a page listing what it received, a JSON API, and controls for tests.

- ``GET /``: the messages, newest first, each linking to ``/messages/{id}`` (its HTML part, as the
  customer would see it, next to the plain text and the headers).
- ``GET /_fake/health``: ``{"status": "ok", "smtp_port": ...}`` once the SMTP server listens.
- ``GET /_fake/messages?to=ADDR&message_id=ID``: what was accepted, oldest first; ``GET
  /_fake/messages/{id}`` one with its headers, text, HTML and raw source; ``DELETE /_fake/messages``
  forgets them all.
- ``POST /_fake/refusals`` ``{"code": 451, "message": "4.3.0 try later", "count": 1, "recipient": null}``:
  refuse the next ``count`` messages (all while ``count`` is null) with that reply; with ``recipient``
  only that address, at ``RCPT TO``. ``GET /_fake/refusals`` lists them with what they refused,
  ``DELETE /_fake/refusals`` accepts everything again.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import logging
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from .smtp import start_smtp
from .store import MailStore, StoredMessage
from .tls import self_signed_context


class RefusalIn(BaseModel):
    code: int = Field(ge=400, le=599, description="4xx: try again later; 5xx: permanent")
    message: str = Field(default="", max_length=500, description="The text after the code")
    count: int | None = Field(default=1, ge=1, description="How many messages to refuse; null: every one")
    recipient: str | None = Field(default=None, max_length=320, description="Only this address (at RCPT TO)")


def create_app(*, smtp_host: str, smtp_port: int, starttls: bool = True) -> FastAPI:
    store = MailStore()
    listening = asyncio.Event()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        server = await start_smtp(
            store, host=smtp_host, port=smtp_port, tls=self_signed_context() if starttls else None
        )
        listening.set()
        try:
            yield
        finally:
            server.close()
            await server.wait_closed()

    app = FastAPI(title="mail-fake", description="Spawnpoint's development SMTP server", lifespan=lifespan)
    app.state.store = store

    @app.get("/_fake/health")
    async def health() -> dict[str, Any]:
        if not listening.is_set():
            raise HTTPException(503, "the SMTP server is not listening yet")
        return {"status": "ok", "smtp_port": smtp_port, "starttls": starttls, "messages": len(store.messages)}

    @app.get("/_fake/messages")
    async def messages(
        to: str | None = Query(default=None, description="Only messages for this recipient"),
        message_id: str | None = Query(default=None, description="Only messages with this Message-ID header"),
    ) -> dict[str, Any]:
        return {"messages": [m.to_json() for m in store.find(to=to, message_id=message_id)]}

    @app.get("/_fake/messages/{message_id}")
    async def message(message_id: int) -> dict[str, Any]:
        return _found(store.get(message_id)).to_json()

    @app.delete("/_fake/messages")
    async def clear() -> dict[str, int]:
        return {"deleted": store.clear()}

    @app.post("/_fake/refusals", status_code=201)
    async def refuse(body: RefusalIn) -> dict[str, Any]:
        message = body.message or ("4.3.0 Try again later" if body.code < 500 else "5.1.1 Mailbox unavailable")
        return store.refuse(code=body.code, message=message, count=body.count, recipient=body.recipient).to_json()

    @app.get("/_fake/refusals")
    async def refusals() -> dict[str, Any]:
        return {"refusals": [r.to_json() for r in store.refusals], "refused": store.refused}

    @app.delete("/_fake/refusals")
    async def accept_all() -> dict[str, int]:
        count = len(store.refusals)
        store.refusals.clear()
        return {"deleted": count}

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        rows = "".join(
            f"<tr><td>{m.id}</td><td>{_e(m.received_at.strftime('%Y-%m-%d %H:%M:%S'))}</td>"
            f"<td>{_e(', '.join(m.rcpt_tos))}</td><td><a href='/messages/{m.id}'>{_e(m.subject)}</a></td></tr>"
            for m in reversed(store.messages)
        )
        return _page(
            "mail-fake",
            f"<p>{len(store.messages)} message(s) received on SMTP port {smtp_port}.</p>"
            f"<table><tr><th>#</th><th>received (UTC)</th><th>to</th><th>subject</th></tr>{rows}</table>",
        )

    @app.get("/messages/{message_id}", response_class=HTMLResponse)
    async def message_page(message_id: int) -> str:
        found = _found(store.get(message_id))
        headers = "".join(f"<tr><th>{_e(k)}</th><td>{_e(str(v))}</td></tr>" for k, v in found.parsed.items())
        html_part = found.part("html")
        rendered = (
            f"<iframe sandbox srcdoc='{_e(html_part)}' style='width:100%;height:420px'></iframe>" if html_part else ""
        )
        return _page(
            found.subject,
            f"<p><a href='/'>all messages</a></p><table>{headers}</table>{rendered}"
            f"<pre>{_e(found.part('plain') or '')}</pre>",
        )

    return app


def _found(message: StoredMessage | None) -> StoredMessage:
    if message is None:
        raise HTTPException(404, "no such message")
    return message


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title><style>body{{font-family:sans-serif;margin:2em}}"
        "td,th{padding:4px 8px;text-align:left;vertical-align:top}</style></head>"
        f"<body><h1>{_e(title)}</h1>{body}</body></html>"
    )


def run(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="mail-fake", description="A development SMTP server that keeps what it receives"
    )
    parser.add_argument("--host", default=os.environ.get("MAIL_FAKE_HOST", "127.0.0.1"), help="HTTP and SMTP address")
    parser.add_argument("--port", type=int, default=int(os.environ.get("MAIL_FAKE_PORT", "8025")), help="HTTP port")
    parser.add_argument(
        "--smtp-port", type=int, default=int(os.environ.get("MAIL_FAKE_SMTP_PORT", "1025")), help="SMTP port"
    )
    parser.add_argument("--no-starttls", action="store_true", help="do not offer STARTTLS")
    parser.add_argument("--log-level", default="warning", help="uvicorn log level")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s mail-fake %(levelname)s %(message)s")
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP line (AUTH included)
    app = create_app(smtp_host=args.host, smtp_port=args.smtp_port, starttls=not args.no_starttls)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
