"""The panel client's HTTP/1.1 against a scripted server on a loopback port: connections are kept alive and
reused only while open, bodies are framed as the server frames them, and every way of not getting a
complete answer is an ``HttpUnreachable`` (the outcome unknown), never a hang and never a wrong answer.
The panel's API itself is covered against the stand-in (``test_panel_client.py``)."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from provisioner.adapters.panel import PanelClient
from provisioner.adapters.rate_gate import RateGate
from provisioner.domain.panel import PanelUnreachable
from spawnpoint_kit import tracing
from spawnpoint_kit.http11 import Http11Pool, HttpUnreachable
from spawnpoint_kit.testing import eventually

pytestmark = pytest.mark.component

Reply = Callable[["Received", asyncio.StreamWriter], Awaitable[bool]]
"""Answers one request; False closes the connection afterwards."""


@dataclass
class Received:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    connection: int


@dataclass
class Scripted:
    """An HTTP/1.1 server whose answers the test writes byte by byte."""

    reply: Reply
    requests: list[Received] = field(default_factory=list)
    connections: int = 0
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        connection = self.connections
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                request = Received(method, target, headers, body, connection)
                self.requests.append(request)
                if not await self.reply(request, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def ok(body: bytes = b'{"ok": true}', *, extra: str = "") -> Reply:
    async def reply(_: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body)
        await writer.drain()
        return "close" not in extra.lower()

    return reply


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Reply], Awaitable[Scripted]]]:
    servers: list[asyncio.Server] = []

    async def start(reply: Reply) -> Scripted:
        scripted = Scripted(reply)
        server = await asyncio.start_server(scripted.handle, "127.0.0.1", 0)
        scripted.port = server.sockets[0].getsockname()[1]
        servers.append(server)
        return scripted

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def _pool(port: int, *, timeout: float = 5.0) -> Http11Pool:
    return Http11Pool(
        f"http://127.0.0.1:{port}/api/application",
        headers={"Accept": "application/json"},
        timeout=timeout,
        connect_timeout=timeout,
        max_idle=4,
    )


async def _eventually(check: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """The kit's ``eventually`` for a synchronous check of the pool's state."""

    async def probe() -> bool:
        return check()

    await eventually(probe, timeout=timeout, interval=0.01, what=what)


async def test_requests_reuse_one_kept_alive_connection_and_carry_their_path_query_and_body(
    serve: Callable[[Reply], Awaitable[Scripted]],
) -> None:
    server = await serve(ok())
    pool = _pool(server.port)
    try:
        first = await pool.request("GET", "/users", params={"filter[email]": "a@b.test", "per_page": 100})
        await pool.request("POST", "/servers", json_body={"name": "x"})
        await pool.request("POST", "/servers/1/suspend")
    finally:
        await pool.aclose()

    assert first.status_code == 200 and first.json() == {"ok": True}
    assert server.connections == 1, "one connection for all three"
    get, create, suspend = server.requests
    assert get.target == "/api/application/users?filter%5Bemail%5D=a%40b.test&per_page=100"
    assert get.headers["host"] == f"127.0.0.1:{server.port}" and get.headers["accept"] == "application/json"
    assert json.loads(create.body) == {"name": "x"} and create.headers["content-length"] == str(len(create.body))
    assert suspend.headers["content-length"] == "0", "a POST without a body says so"


async def test_a_chunked_body_is_read_whole_and_a_closing_answer_is_not_reused(
    serve: Callable[[Reply], Awaitable[Scripted]],
) -> None:
    async def chunked_then_close(_: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            b'4\r\n{"a"\r\n3\r\n: 1\r\n1\r\n}\r\n0\r\n\r\n'
        )
        await writer.drain()
        return False

    server = await serve(chunked_then_close)
    pool = _pool(server.port)
    try:
        assert (await pool.request("GET", "/x")).json() == {"a": 1}
        assert (await pool.request("GET", "/x")).json() == {"a": 1}
    finally:
        await pool.aclose()
    assert server.connections == 2


async def test_a_connection_the_server_closed_while_idle_is_not_reused(
    serve: Callable[[Reply], Awaitable[Scripted]],
) -> None:
    async def answer_then_hang_up(request: Received, writer: asyncio.StreamWriter) -> bool:
        await ok()(request, writer)
        return False  # closed after the answer, without saying so (a keep-alive timeout on the panel's side)

    server = await serve(answer_then_hang_up)
    pool = _pool(server.port)
    try:
        await pool.request("GET", "/a")
        await _eventually(lambda: all(c.wire.closed for c in pool._idle), "the hang-up seen")
        assert (await pool.request("GET", "/b")).status_code == 200
    finally:
        await pool.aclose()
    assert server.connections == 2


async def test_an_answer_sent_on_an_idle_connection_is_never_taken_for_the_next_requests(
    serve: Callable[[Reply], Awaitable[Scripted]],
) -> None:
    async def answer_then_408(request: Received, writer: asyncio.StreamWriter) -> bool:
        await ok()(request, writer)
        if request.connection == 1:  # then, idle, the way some servers close: a 408 nobody asked for
            writer.write(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
            return False
        return True

    server = await serve(answer_then_408)
    pool = _pool(server.port)
    try:
        await pool.request("GET", "/a")
        await _eventually(lambda: all(c.wire.buffer or c.wire.closed for c in pool._idle), "the 408 arrived")
        assert (await pool.request("GET", "/b")).status_code == 200
    finally:
        await pool.aclose()
    assert server.connections == 2


async def test_no_answer_in_time_a_truncated_answer_and_a_refused_connection_are_unreachable(
    serve: Callable[[Reply], Awaitable[Scripted]],
) -> None:
    async def silent(_: Received, writer: asyncio.StreamWriter) -> bool:
        await asyncio.Event().wait()  # never answers; the client's deadline ends it
        return False

    async def truncated(_: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"partial')
        await writer.drain()
        return False

    for reply in (silent, truncated):
        server = await serve(reply)
        pool = _pool(server.port, timeout=0.5)
        started = time.monotonic()
        with pytest.raises(HttpUnreachable):
            await pool.request("GET", "/x")
        assert time.monotonic() - started < 3
        assert pool._idle == [], "a connection whose answer failed is never reused"
        await pool.aclose()

    refused = _pool(1, timeout=2.0)  # nothing listens on port 1
    with pytest.raises(HttpUnreachable):
        await refused.request("GET", "/x")
    await refused.aclose()


async def test_the_panel_client_maps_an_unreachable_panel_and_traces_each_call(
    serve: Callable[[Reply], Awaitable[Scripted]],
) -> None:
    server = await serve(ok(b'{"attributes": {"id": 7}}'))
    client = PanelClient(
        f"http://127.0.0.1:{server.port}",
        "ptla_test",
        flavor="pterodactyl",
        timeout=5.0,
        gate=RateGate(per_minute=1000, burst=10),
    )
    exporter = InMemorySpanExporter()
    try:
        with tracing.capture(exporter, service="provisioner-tests"):
            assert await client.user_by_external_id("alice") == 7
    finally:
        await client.aclose()
    (span,) = [s for s in exporter.get_finished_spans() if s.name == "GET"]
    assert span.kind.name == "CLIENT"
    assert span.attributes is not None
    assert span.attributes["url.full"] == f"http://127.0.0.1:{server.port}/api/application/users/external/alice"
    assert span.attributes["http.response.status_code"] == 200
    (request,) = server.requests
    assert request.headers["traceparent"].split("-")[2] == format(span.context.span_id, "016x")
    assert request.headers["authorization"] == "Bearer ptla_test"

    gone = PanelClient(
        "http://127.0.0.1:1", "ptla_test", flavor="pterodactyl", timeout=2.0, gate=RateGate(per_minute=1000)
    )
    try:
        with pytest.raises(PanelUnreachable):
            await gone.server(1)
    finally:
        await gone.aclose()


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as files (a panel behind HTTPS, its CA our own)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "panel.test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


async def test_https_is_verified_against_the_configured_certificates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert_file, key_file = _self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_file, key_file)
    scripted = Scripted(ok())
    server = await asyncio.start_server(scripted.handle, "127.0.0.1", 0, ssl=server_tls)
    port = server.sockets[0].getsockname()[1]
    try:
        untrusted = Http11Pool(
            f"https://127.0.0.1:{port}/api", headers={}, timeout=5.0, connect_timeout=5.0, max_idle=1
        )
        with pytest.raises(HttpUnreachable, match="CERTIFICATE_VERIFY_FAILED"):
            await untrusted.request("GET", "/x")  # certifi's bundle does not know our CA
        await untrusted.aclose()
        monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
        trusted = Http11Pool(f"https://127.0.0.1:{port}/api", headers={}, timeout=5.0, connect_timeout=5.0, max_idle=1)
        assert (await trusted.request("GET", "/x")).json() == {"ok": True}
        await trusted.aclose()
    finally:
        server.close()
        await server.wait_closed()
    assert [r.target for r in scripted.requests] == ["/api/x"]
