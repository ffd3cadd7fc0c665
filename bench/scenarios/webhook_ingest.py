"""webhook-ingest: signed ``checkout.session.completed`` events for distinct, already-created orders, posted
at the highest rate the endpoint sustains.

Setup (not timed): N real orders and Checkout Sessions through the APIs, paid on the Stripe stand-in with
its deliveries paused, so every event is a real one for a real session. The bench then posts those events
itself, pretty-printed and signed with a fresh timestamp, exactly as Stripe would, with a fixed number of
connections from a separate process. The reference is a bare endpoint on the same server stack (uvicorn +
FastAPI) that only verifies the signature and answers 200, under the same load.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import stripe

from devstack import WEBHOOK_SECRET, Stack, free_port

from ..client import System, bounded
from ..load import LoadResult, Request, closed_loop
from ..processes import uvicorn_app
from ..stats import Figure, ScenarioResult, latency_ms
from ..system import bench_config, running_system

# Issue 14's targets: the intake-only process (as intake replicas would run), and the default process,
# whose workers fulfil the same burst while it goes on.
TARGET_INTAKE_RATE = 1000.0
TARGET_INTAKE_P99_MS = 50.0
TARGET_DEFAULT_RATE = 500.0
TARGET_DEFAULT_P99_MS = 100.0


def _signed(event: dict[str, Any]) -> Request:
    body = json.dumps(event, indent=2)
    header = stripe.WebhookSignature.generate_signature_header(body, WEBHOOK_SECRET, int(time.time()))
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": header,
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
    }
    return ("POST", "/webhooks/stripe", headers, body.encode())


async def _prepare(stack: Stack, orders: int) -> list[dict[str, Any]]:
    system = System(stack)
    try:
        return await _paid_sessions_events(system, orders)
    finally:
        await system.close()


async def _paid_sessions_events(system: System, orders: int) -> list[dict[str, Any]]:
    await system.stripe.json("POST", "/_fake/deliveries/pause")

    async def one(i: int) -> None:
        user = f"wh-{i}"
        order_id = await system.place_order(user)
        session_id = await system.open_checkout(user, order_id)
        await system.pay(session_id)

    await bounded(range(orders), one, concurrency=16)
    events = await system.stripe.json("GET", "/_fake/events", headers={}, body=None)
    completed = [e for e in events["data"] if e["type"] == "checkout.session.completed"]
    return completed


def _measure(
    orders: int, concurrency: int, *, worker_concurrency: int | None
) -> tuple[LoadResult, list[dict[str, Any]]]:
    # Deliveries are paused while the orders are prepared, so to the reconciliation sweeper every one of
    # them looks like an order whose webhook was lost: it would fulfil them in the background during the
    # measurement. Here the webhooks do arrive, so the sweeper is told to leave sessions alone for a day.
    payment_env = {"PAYMENT_SWEEP_AFTER_SECONDS": "86400"}
    if worker_concurrency is not None:
        payment_env["WEBHOOK_WORKER_CONCURRENCY"] = str(worker_concurrency)
    per_process_env = {**bench_config().per_process_env, "payment-service": payment_env}
    with running_system(per_process_env=per_process_env) as stack:
        events = asyncio.run(_prepare(stack, orders))
        port = stack.config.ports["payment-service"]
        # Signed just before sending: the endpoint enforces Stripe's 300 s tolerance on the timestamp.
        requests = [_signed(e) for e in events]
        return closed_loop("127.0.0.1", port, requests, concurrency=concurrency), events


def run(*, orders: int = 3000, concurrency: int = 16) -> ScenarioResult:
    """Two measurements of the same endpoint, each with its own targets: a payment-service process that
    only takes webhooks in (``WEBHOOK_WORKER_CONCURRENCY=0``, as intake replicas would run: verify, store,
    answer; >= 1,000/s, p99 <= 50 ms), and the default process, whose workers fulfil every stored event
    while the burst goes on, so the whole system runs on the same two cores (>= 500/s, p99 <= 100 ms). The
    reference answers only the first question; the second is what a sale on this one machine would see."""
    result = ScenarioResult("webhook-ingest", {"orders": orders, "concurrency": concurrency})
    intake_only, events = _measure(orders, concurrency, worker_concurrency=0)
    concurrent, _ = _measure(orders, concurrency, worker_concurrency=None)
    ref_port = free_port()
    with uvicorn_app("bench.reference_apps:webhook_app", ref_port):
        requests = [_signed(e) for e in events]
        reference: LoadResult = closed_loop("127.0.0.1", ref_port, requests, concurrency=concurrency)

    lat, full_lat, ref_lat = (latency_ms(r.latencies) for r in (intake_only, concurrent, reference))

    def summary(r: LoadResult, latency: dict[str, float]) -> dict[str, object]:
        return {"throughput_per_s": round(r.throughput, 1), "statuses": r.statuses, "errors": r.errors, **latency}

    result.details = {
        "events": len(requests),
        "service_intake_only": summary(intake_only, lat),
        "service_default": summary(concurrent, full_lat),
        "reference_verify_only": summary(reference, ref_lat),
    }
    for label, measured, latency, rate, p99 in (
        ("intake-only process", intake_only, lat, TARGET_INTAKE_RATE, TARGET_INTAKE_P99_MS),
        ("default process fulfilling the burst", concurrent, full_lat, TARGET_DEFAULT_RATE, TARGET_DEFAULT_P99_MS),
    ):
        result.add(
            Figure(
                f"throughput, {label}",
                measured.throughput,
                "webhooks/s",
                reference.throughput,
                "verify-only endpoint",
                f">= {rate:,.0f}/s, all 200",
                measured.throughput >= rate and measured.ok(200) == len(requests),
            )
        )
        result.add(
            Figure(
                f"p99, {label}",
                latency["p99_ms"],
                "ms",
                ref_lat["p99_ms"],
                "verify-only endpoint",
                f"<= {p99:.0f} ms",
                latency["p99_ms"] <= p99,
            )
        )
        result.add(Figure(f"p50, {label}", latency["p50_ms"], "ms", ref_lat["p50_ms"], "verify-only endpoint"))
    return result
