"""Helpers for tests that need the fake as a real HTTP server, and a webhook receiver.

``FakeStripeServer`` runs the app with uvicorn in a background thread on a free port (real sockets,
as the services see it in production), ``FakeStripeControl`` wraps the ``/_fake`` API, and
``WebhookReceiver`` is a small threaded HTTP server that records what it receives and answers with
scripted status codes. ``wait_until`` polls a condition until a deadline instead of sleeping.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
import uvicorn

from stripe_fake.app import StripeFakeApp, create_app
from stripe_fake.config import FakeConfig
from stripe_fake.fake import StripeFake

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T | None], *, timeout: float = 5.0, interval: float = 0.01, message: str = ""
) -> T:
    """Poll ``condition`` until it returns something truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message or condition!r}")
        time.sleep(interval)


class FakeStripeServer:
    """The fake served by uvicorn in a daemon thread, on a free port of ``host``."""

    def __init__(self, config: FakeConfig | None = None, *, host: str = "127.0.0.1") -> None:
        self.config = config or FakeConfig()
        self.host = host
        self.app: StripeFakeApp = create_app(self.config)
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def fake(self) -> StripeFake:
        """The in-memory state (read it only while no request is running, e.g. after polling)."""
        return self.app.fake

    @property
    def url(self) -> str:
        """Base URL, e.g. for ``StripeClient(base_addresses={"api": url})``."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> Self:
        """Bind, start serving, and wait until the server accepts requests."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        self.port = sock.getsockname()[1]
        self._socket = sock
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=2
        )
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"stripe-fake:{self.port}", daemon=True
        )
        self._thread.start()
        wait_until(lambda: server.started, timeout=timeout, message="stripe-fake to start")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the server down and join its thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class FakeStripeControl:
    """Synchronous client for the ``/_fake`` control API (raises on unexpected status codes)."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=timeout)

    def close(self) -> None:
        """Close the HTTP client."""
        self.http.close()

    def _json(self, response: httpx.Response) -> Any:
        response.raise_for_status()
        return response.json()

    def reset(self) -> Any:
        """``DELETE /_fake/data``."""
        return self._json(self.http.delete("/_fake/data"))

    def add_endpoint(
        self, url: str, secret: str | None = None, *, secrets: list[str] | None = None, events: list[str] | None = None
    ) -> dict[str, Any]:
        """Register a webhook endpoint."""
        body: dict[str, Any] = {"url": url}
        if secret is not None:
            body["secret"] = secret
        if secrets is not None:
            body["secrets"] = secrets
        if events is not None:
            body["events"] = events
        result: dict[str, Any] = self._json(self.http.post("/_fake/webhook_endpoints", json=body))
        return result

    def pay(
        self, session_id: str, outcome: str = "paid", email: str | None = None, payment_method: str | None = None
    ) -> dict[str, Any]:
        """Customer pays the session (``payment_method``: the card, in subscription mode)."""
        body: dict[str, Any] = {"outcome": outcome}
        if email is not None:
            body["email"] = email
        if payment_method is not None:
            body["payment_method"] = payment_method
        result: dict[str, Any] = self._json(self.http.post(f"/_fake/sessions/{session_id}/pay", json=body))
        return result

    def settle(self, session_id: str, result: str) -> dict[str, Any]:
        """Delayed payment method succeeds or fails."""
        out: dict[str, Any] = self._json(self.http.post(f"/_fake/sessions/{session_id}/async", json={"result": result}))
        return out

    def advance(self, seconds: float, *, sweep: bool = True) -> dict[str, Any]:
        """Move the fake clock."""
        out: dict[str, Any] = self._json(
            self.http.post("/_fake/clock/advance", json={"seconds": seconds, "sweep": sweep})
        )
        return out

    def now(self) -> int:
        """Fake clock, whole seconds."""
        return int(self._json(self.http.get("/_fake/clock"))["now"])

    def events(self, **filters: str) -> list[dict[str, Any]]:
        """Events, oldest first."""
        data: list[dict[str, Any]] = self._json(self.http.get("/_fake/events", params=filters))["data"]
        return data

    def deliveries(self, **filters: str) -> dict[str, Any]:
        """Delivery attempts plus ``paused``/``queued``/``in_flight``."""
        out: dict[str, Any] = self._json(self.http.get("/_fake/deliveries", params=filters))
        return out

    def wait_deliveries_idle(self, timeout: float = 5.0) -> dict[str, Any]:
        """Poll until no delivery is in flight (attempting or waiting to retry)."""

        def idle() -> dict[str, Any] | None:
            snapshot = self.deliveries()
            return snapshot if snapshot["in_flight"] == 0 else None

        return wait_until(idle, timeout=timeout, message="deliveries to settle")

    def wait_attempts(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Poll until at least ``count`` delivery attempts are recorded."""

        def enough() -> list[dict[str, Any]] | None:
            attempts: list[dict[str, Any]] = self.deliveries()["data"]
            return attempts if len(attempts) >= count else None

        return wait_until(enough, timeout=timeout, message=f"{count} delivery attempt(s)")

    def sessions(self, **filters: str) -> list[dict[str, Any]]:
        """Sessions in creation order."""
        data: list[dict[str, Any]] = self._json(self.http.get("/_fake/sessions", params=filters))["data"]
        return data

    def session(self, session_id: str) -> dict[str, Any]:
        """One session with its line items, PaymentIntent and ``payment_intent_data``."""
        out: dict[str, Any] = self._json(self.http.get(f"/_fake/sessions/{session_id}"))
        return out

    def redeliver(self, event_id: str) -> dict[str, Any]:
        """Send an event again (a duplicate delivery)."""
        out: dict[str, Any] = self._json(self.http.post(f"/_fake/events/{event_id}/redeliver"))
        return out

    def pause(self) -> None:
        """Hold webhook deliveries (and retries that come due) in a queue."""
        self._json(self.http.post("/_fake/deliveries/pause"))

    def flush(self, order: str = "creation") -> int:
        """Send the queued deliveries now (``creation``, ``reverse`` or ``concurrent``); stays paused."""
        delivered: int = self._json(self.http.post("/_fake/deliveries/flush", params={"order": order}))["delivered"]
        return delivered

    def resume(self) -> int:
        """Send the queue in creation order and deliver normally again."""
        delivered: int = self._json(self.http.post("/_fake/deliveries/resume"))["delivered"]
        return delivered

    def clear_faults(self) -> None:
        """Remove every injected fault."""
        self._json(self.http.delete("/_fake/faults"))

    def refunds(self, **filters: str) -> list[dict[str, Any]]:
        """Refunds in creation order."""
        data: list[dict[str, Any]] = self._json(self.http.get("/_fake/refunds", params=filters))["data"]
        return data

    def add_fault(self, **fault: Any) -> dict[str, Any]:
        """Inject an API fault."""
        out: dict[str, Any] = self._json(self.http.post("/_fake/faults", json=fault))
        return out

    # --- billing ----------------------------------------------------------------------------------

    def event_types(self, **filters: str) -> list[str]:
        """The types of the events so far, oldest first."""
        return [e["type"] for e in self.events(**filters)]

    def billing_settings(self, **changes: Any) -> dict[str, Any]:
        """Change the dunning settings (``retry_days``, ``subscription_action``, ``invoice_action``)."""
        out: dict[str, Any] = self._json(self.http.post("/_fake/billing/settings", json=changes))
        return out

    def use_payment_method(self, customer_id: str, payment_method: str) -> dict[str, Any]:
        """Make a customer's next charges use ``payment_method`` (a magic ``pm_card_*`` token or a ``pm_``)."""
        out: dict[str, Any] = self._json(
            self.http.post(f"/_fake/customers/{customer_id}/payment_method", json={"payment_method": payment_method})
        )
        return out

    def test_clock(self, clock_id: str) -> dict[str, Any]:
        """A test clock's current state."""
        out: dict[str, Any] = self._json(self.http.get(f"/_fake/test_clocks/{clock_id}"))
        return out

    def wait_test_clock_ready(self, clock_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """Poll until an advancing test clock is ``ready`` again."""

        def ready() -> dict[str, Any] | None:
            clock = self.test_clock(clock_id)
            return clock if clock["status"] == "ready" else None

        return wait_until(ready, timeout=timeout, message=f"test clock {clock_id} to be ready")

    def portal(self, session_id: str, action: str, **body: Any) -> dict[str, Any]:
        """The customer in the billing portal: ``cancel_subscription``, ``renew_subscription`` or
        ``update_payment_method``."""
        out: dict[str, Any] = self._json(
            self.http.post(f"/_fake/billing_portal/sessions/{session_id}/{action}", json=body)
        )
        return out

    def dashboard_refund(self, charge_id: str, amount: int | None = None) -> dict[str, Any]:
        """A refund from the Dashboard (``charge.refunded`` then ``refund.created``)."""
        body: dict[str, Any] = {"charge": charge_id}
        if amount is not None:
            body["amount"] = amount
        out: dict[str, Any] = self._json(self.http.post("/_fake/dashboard/refund", json=body))
        return out

    def dispute(self, charge_id: str, reason: str = "fraudulent", *, inquiry: bool = False) -> dict[str, Any]:
        """The cardholder disputes a charge."""
        out: dict[str, Any] = self._json(
            self.http.post(f"/_fake/charges/{charge_id}/dispute", json={"reason": reason, "inquiry": inquiry})
        )
        return out

    def drop_deliveries(self, event_type: str, count: int | None = 1) -> dict[str, Any]:
        """Lose the next ``count`` deliveries (``None``: all) of ``event_type`` (``*`` wildcards)."""
        out: dict[str, Any] = self._json(
            self.http.post("/_fake/deliveries/drop", json={"event_type": event_type, "count": count})
        )
        return out


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """One request as the receiver saw it: raw body bytes and lower-cased headers."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float

    def json(self) -> Any:
        """Parsed body."""
        return json.loads(self.body)


class WebhookReceiver:
    """A tiny threaded HTTP server that records requests and answers with scripted statuses."""

    def __init__(
        self,
        statuses: Iterable[int] = (),
        *,
        default_status: int = 200,
        delay_seconds: float = 0.0,
        on_request: Callable[[ReceivedRequest], None] | None = None,
    ) -> None:
        self._statuses: deque[int] = deque(statuses)
        self.default_status = default_status
        self.delay_seconds = delay_seconds
        self.on_request = on_request
        self._lock = threading.Lock()
        self._requests: list[ReceivedRequest] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Where to point a webhook endpoint."""
        assert self._server is not None, "receiver not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}/webhooks/stripe"

    @property
    def requests(self) -> list[ReceivedRequest]:
        """Requests received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def script(self, statuses: Iterable[int]) -> None:
        """Answer the next requests with these statuses, then with ``default_status``."""
        with self._lock:
            self._statuses = deque(statuses)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedRequest]:
        """Poll until at least ``count`` requests arrived."""

        def enough() -> list[ReceivedRequest] | None:
            received = self.requests
            return received if len(received) >= count else None

        return wait_until(enough, timeout=timeout, message=f"{count} webhook request(s)")

    def _next_status(self) -> int:
        with self._lock:
            return self._statuses.popleft() if self._statuses else self.default_status

    def _record(self, request: ReceivedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def start(self) -> Self:
        """Listen on a free port."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                request = ReceivedRequest(
                    method="POST",
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                    received_at=time.time(),
                )
                if receiver.on_request is not None:
                    receiver.on_request(request)
                if receiver.delay_seconds:
                    time.sleep(receiver.delay_seconds)
                receiver._record(request)
                status = receiver._next_status()
                payload = b'{"received": true}'
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the sender gave up (timeout) and closed the connection

            def log_message(self, format: str, *args: Any) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="webhook-receiver", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
