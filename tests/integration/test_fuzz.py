"""Fuzzing every service of a running stack (issue 11, "Prove it"): schemathesis over each OpenAPI document,
then hostile headers, malformed webhook signatures and bodies, and malformed messages on every queue.

The promise checked: no answer is a 5xx, no process logs an unhandled error, and no log line of any process
carries a secret or a customer's setting value. Every generated request carries a valid operator token (with
an e-mail), so the handlers run past authentication; the unauthenticated paths are fuzzed by the header
cases. ``SPAWNPOINT_FUZZ_EXAMPLES`` sets the examples per operation (default 40).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Err

from devstack import Stack

from .conftest import customer_token
from .support import Api, BrokerProbe

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("SPAWNPOINT_FUZZ_EXAMPLES", "40"))
SERVICES = ("order-service", "payment-service", "provisioner", "status-service")
CASES: dict[str, int] = {}
"""Requests sent per service, for the closing count (read by the last test)."""

FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)


@pytest.fixture(scope="session")
def fuzz_token() -> str:
    return customer_token("fuzz-operator", email="fuzz@example.test", operator=True)


def _fuzz(stack: Stack, service: str, token: str) -> list[str]:
    """Every operation of the service's OpenAPI document, ``EXAMPLES`` generated requests each; returns the
    answers that were server errors. (schemathesis's own pytest plugin does not support this pytest yet, so
    each operation's strategy is driven by Hypothesis here.)"""
    base = stack.config.url(service)
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    failures: list[str] = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            failures.append(f"the OpenAPI document has an operation schemathesis cannot read: {result.err()}")
            continue
        operation = result.ok()

        @FUZZ_SETTINGS
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
            if case.method.upper() == "POST" and case.path == "/orders":
                headers["Idempotency-Key"] = str(uuid.uuid4())
            if case.path.endswith("/events"):
                return  # a stream answers 200 and stays open; its headers are fuzzed below
            response = case.call(base_url=base, headers=headers, timeout=15)
            CASES[service] = CASES.get(service, 0) + 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:200]}")

        run()
    return failures


@pytest.mark.parametrize("service", SERVICES)
def test_every_generated_request_to_every_operation_is_answered_without_a_5xx(
    service: str, stack: Stack, fuzz_token: str
) -> None:
    failures = _fuzz(stack, service, fuzz_token)
    assert not failures, "\n".join(failures[:20])


HOSTILE_HEADERS: list[list[tuple[bytes, bytes]]] = [
    [(b"X-Correlation-ID", b"\xe9" * 300)],
    [(b"X-Correlation-ID", b"a\x00b")],
    [(b"X-Correlation-ID", b"x" * 8000)],
    [(b"X-Correlation-ID", b"one"), (b"X-Correlation-ID", b"two")],
    [(b"Authorization", b"Bearer \xff\xfe")],
    [(b"Authorization", b"Bearer " + b"a." * 4000)],
    [(b"Authorization", b"Basic Zm9vOmJhcg==")],
    [(b"Authorization", b"Bearer x"), (b"Authorization", b"Bearer y")],
    [(b"Idempotency-Key", b"\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9")],
    [(b"Idempotency-Key", b"k" * 300)],
    [(b"If-None-Match", b'"\xe9"'), (b"If-None-Match", b"*" * 5000)],
    [(b"Last-Event-ID", b"\xb2"), (b"Last-Event-ID", b"9" * 100)],
    [(b"Content-Type", b"application/json; charset=\xe9")],
    [(b"Stripe-Signature", b"t=,v1=" + b"0" * 5000)],
    [(b"Stripe-Signature", b"t=1\xe9,v1=00,t=2")],
]
PATHS = [
    ("GET", "order-service", "/catalog"),
    ("POST", "order-service", "/orders"),
    ("GET", "order-service", f"/orders/{uuid.uuid4()}"),
    ("POST", "payment-service", "/checkout-sessions"),
    ("GET", "payment-service", "/checkout-sessions/cs_test_x/status"),
    ("POST", "payment-service", "/webhooks/stripe"),
    ("POST", "provisioner", "/validate-settings"),
    ("GET", "status-service", f"/orders/{uuid.uuid4()}/status"),
    ("GET", "status-service", f"/orders/{uuid.uuid4()}/events"),
    ("GET", "status-service", f"/orders/{uuid.uuid4()}/timeline"),
    ("GET", "order-service", "/readyz"),
]


async def _raw(url: str, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes) -> int:
    """One request written by hand on a socket, so that headers no client library would send (NUL, raw
    latin-1, duplicates) reach the server exactly as a hostile client sends them; returns the status."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        head = [f"{method} {path} HTTP/1.1".encode(), f"Host: {host}".encode(), b"Connection: close"]
        head += [name + b": " + value for name, value in headers]
        head.append(f"Content-Length: {len(body)}".encode())
        writer.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout=15)
    finally:
        writer.close()
    return int(status_line.split()[1])


async def test_hostile_headers_on_every_route_are_answered_without_a_5xx(stack: Stack) -> None:
    token = customer_token("fuzz-operator", email="fuzz@example.test", operator=True).encode()
    for method, service, path in PATHS:
        for headers in HOSTILE_HEADERS:
            for auth in ([], [(b"Authorization", b"Bearer " + token)]):
                status = await _raw(stack.config.url(service), method, path, auth + headers, b'{"a": 1}')
                CASES[service] = CASES.get(service, 0) + 1
                assert status < 500, f"{method} {path} {headers!r}: {status}"


MALFORMED_WEBHOOKS: list[tuple[bytes, str]] = [
    (b"", "t=1,v1=00"),
    (b"\xff\xfe\x00", "t=1,v1=00"),
    (b"{", f"t={int(time.time())},v1=00"),
    (b"[]", f"t={int(time.time())},v1=" + "f" * 64),
    (json.dumps({"id": "evt_x", "type": "checkout.session.completed"}).encode(), "v1=00"),
    (b"null", "t=abc,v1=00"),
    (b'{"id": 1}', "t=99999999999999999999999,v1=00"),
    (b"x" * 50_000, f"t={int(time.time())},v0=00"),
]


async def test_malformed_webhooks_are_refused_with_a_4xx(stack: Stack, api: Api) -> None:
    url = api.url("payment-service", "/webhooks/stripe")
    for body, signature in MALFORMED_WEBHOOKS:
        response = await api.http.post(url, content=body, headers={"Stripe-Signature": signature})
        CASES["payment-service"] = CASES.get("payment-service", 0) + 1
        assert 400 <= response.status_code < 500, f"{body[:40]!r} {signature[:40]}: {response.status_code}"


MALFORMED_MESSAGES: list[tuple[bytes, dict[str, Any]]] = [
    (b"", {}),
    (b"\xff\xfe", {"event_type": "OrderPaid"}),
    (b"not json", {"event_type": "\xe9" * 50}),
    (b"[]", {"x-death": "not a list"}),
    (json.dumps({"event_type": "OrderPaid", "event_version": 1}).encode(), {"x-delivery-count": "many"}),
    (json.dumps({"event_type": "NoSuchEvent", "event_version": 9, "order_id": str(uuid.uuid4())}).encode(), {}),
    (b"{" * 10_000, {}),
]
QUEUES = (
    "order-service.lifecycle",
    "provisioner.order-paid",
    "payment-service.provision-failed",
    "status-service.projection",
)


async def test_malformed_messages_on_every_queue_are_dead_lettered_and_nothing_is_stuck(broker: BrokerProbe) -> None:
    from .support import eventually

    before = {queue: await broker.depth(f"{queue}.dlq") for queue in QUEUES}
    for queue in QUEUES:
        for body, headers in MALFORMED_MESSAGES:
            await broker.publish_to_queue(queue, body, message_id=str(uuid.uuid4()), headers=headers)

    async def all_dead_lettered() -> bool:
        for queue in QUEUES:
            if await broker.depth(f"{queue}.dlq") < before[queue] + len(MALFORMED_MESSAGES):
                return False
        return all([await broker.depth(queue) == 0 for queue in QUEUES])

    await eventually(all_dead_lettered, timeout=90, what="every malformed message dead-lettered, no queue stuck")


UNHANDLED = ('"event": "unhandled error"', "Traceback (most recent call last)")


def test_zz_no_process_logged_an_unhandled_error_or_a_secret(stack: Stack, fuzz_token: str) -> None:
    """Runs after the fuzz tests of this module: the logs of every process of the session stack."""
    problems: list[str] = []
    secrets = (
        "spawnpoint-development-secret-change-me",
        "whsec_spawnpoint_dev",
        "sk_test_spawnpoint_dev",
        stack.config.panel_key(),
        fuzz_token,
    )
    for path in sorted(stack.config.log_dir.glob("*.log")):
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if any(marker in line for marker in UNHANDLED):
                problems.append(f"{path.name}:{number}: {line[:300]}")
            if any(secret in line for secret in secrets):
                problems.append(f"{path.name}:{number}: a secret in a log line")
    assert not problems, "\n".join(problems[:20])
    total = sum(CASES.values())
    print(f"fuzz cases: {total} ({', '.join(f'{s} {n}' for s, n in sorted(CASES.items()))})")
    assert total > 0
