"""What payment-service's two hot paths cost in CPU, against the running PostgreSQL (a throw-away database):
the webhook's intake (verify, parse, store with group commit) and the webhook worker's fulfilment (lease,
lock, OrderPaid with its rental and outbox rows, commit), with Stripe replaced by an in-process fake so that
only this service's own work is counted (the SDK's share is measured by ``bench.profile``).

The figures are this process's CPU (``time.process_time``) per webhook and per fulfilled event; PostgreSQL's
own CPU is not in them. Run it against the sources as they are and against older ones::

    scripts/setup_env.sh .venv/bin/python services/payment-service/benchmarks/hot_path.py
    git archive HEAD services/payment-service | tar -x -C /tmp/pay-before
    PYTHONPATH=/tmp/pay-before/services/payment-service/src scripts/setup_env.sh .venv/bin/python \
        services/payment-service/benchmarks/hot_path.py

``--mixed`` also runs the worker while a second burst of webhooks arrives on the same event loop (as the
default process does during a sale) and prints the webhooks' latency: how much fulfilment delays intake.
``--separate`` runs the worker in a process of its own instead (``PAYMENT_PROCESS=api`` beside
``payment-service worker``); its CPU is added to the worker's figure (start-up included).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from typing import Any

import stripe

from payment_service.adapters.signature import verify
from payment_service.adapters.stripe_gateway import CheckoutSession
from payment_service.entrypoints.cli import ALEMBIC_INI
from payment_service.entrypoints.webhook_worker import WebhookWorker
from payment_service.service_layer.checkout import CheckoutConfig, CheckoutService
from payment_service.service_layer.event_intake import EventIntake
from payment_service.service_layer.fulfilment import Fulfilment
from payment_service.service_layer.handlers import stripe_handlers
from payment_service.service_layer.stored_events import StoredEventRunner
from payment_service.service_layer.unit_of_work import PaymentUnitOfWork, SqlPaymentUnitOfWork
from payment_service.testing import Orders
from spawnpoint_kit.db import drop_database, make_engine, make_session_factory, prepare_database
from spawnpoint_kit.logs import configure_logging
from spawnpoint_kit.messaging.topology import Topology
from spawnpoint_kit.testing import eventually

SECRET = "whsec_bench"


class FakeGateway:
    """Stripe as the fulfilment sees it: every session it made is complete and paid."""

    def __init__(self) -> None:
        self.amounts: dict[str, tuple[int, str, str]] = {}

    def _session(self, session_id: str, status: str, payment_status: str) -> CheckoutSession:
        amount, currency, order_id = self.amounts[session_id]
        return CheckoutSession(
            id=session_id,
            status=status,
            payment_status=payment_status,
            client_secret=f"{session_id}_secret",
            amount_total=amount,
            currency=currency,
            expires_at=None,
            created=None,
            payment_intent=f"pi_{session_id}",
            payment_intent_status="succeeded",
            metadata={"serverOrderId": order_id},
            client_reference_id=order_id,
            mode="payment",
        )

    async def create_checkout_session(self, params: dict[str, Any], *, idempotency_key: str) -> CheckoutSession:
        session_id = f"cs_{uuid.uuid4().hex}"
        order_id = params["metadata"]["serverOrderId"]
        self.amounts[session_id] = (params["line_items"][0]["price_data"]["unit_amount"], "eur", order_id)
        return self._session(session_id, "open", "unpaid")

    async def retrieve_checkout_session(self, session_id: str) -> CheckoutSession:
        await asyncio.sleep(0)  # an HTTP call would yield to the loop
        return self._session(session_id, "complete", "paid")

    async def expire_checkout_session(self, session_id: str) -> CheckoutSession:
        return self._session(session_id, "expired", "unpaid")


def _event(session_id: str, order_id: str, amount: int) -> dict[str, Any]:
    """A ``checkout.session.completed`` shaped like Stripe's (the session object with its usual fields)."""
    session: dict[str, Any] = {
        "id": session_id,
        "object": "checkout.session",
        "amount_subtotal": amount,
        "amount_total": amount,
        "client_reference_id": order_id,
        "created": int(time.time()),
        "currency": "eur",
        "customer_details": {"email": "bench@example.test", "name": None, "phone": None, "tax_exempt": "none"},
        "expires_at": int(time.time()) + 3600,
        "livemode": False,
        "metadata": {"serverOrderId": order_id},
        "mode": "payment",
        "payment_intent": f"pi_{session_id}",
        "payment_method_types": ["card"],
        "payment_status": "paid",
        "status": "complete",
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "embedded",
    }
    for i in range(30):
        session[f"field_{i}"] = None if i % 3 else {"nested": i, "text": "x" * 20}
    return {
        "id": f"evt_{uuid.uuid4().hex}",
        "object": "event",
        "api_version": "2025-01-27.acacia",
        "created": int(time.time()),
        "data": {"object": session},
        "livemode": False,
        "pending_webhooks": 1,
        "type": "checkout.session.completed",
    }


def _signed(event: dict[str, Any]) -> tuple[bytes, str]:
    body = json.dumps(event, indent=2)
    return body.encode(), stripe.WebhookSignature.generate_signature_header(body, SECRET, int(time.time()))


async def _webhook(intake: EventIntake, payload: bytes, header: str) -> float:
    """What the route does with one delivery (verify, parse, store, with the intake's pressure marked where
    the sources have it), timed from its start."""
    started = time.perf_counter()
    pressure = getattr(intake, "pressure", None)
    if pressure is not None:
        pressure.arrived()
    try:
        verify(payload, header, [SECRET], tolerance=300)
        if pressure is not None:
            await intake.record(json.loads(payload), body=payload.decode())
        else:
            await intake.record(json.loads(payload))
    finally:
        if pressure is not None:
            pressure.answered()
    return time.perf_counter() - started


async def _post_all(intake: EventIntake, signed: list[tuple[bytes, str]], concurrency: int) -> list[float]:
    queue = list(reversed(signed))
    latencies: list[float] = []

    async def client() -> None:
        while queue:
            payload, header = queue.pop()
            latencies.append(await _webhook(intake, payload, header))

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return latencies


async def _seed(checkout: CheckoutService, gateway: FakeGateway, orders: Orders, n: int) -> list[dict[str, Any]]:
    events = []
    for _ in range(n):
        order = orders.new()
        opened = await checkout.open(order)
        amount = order.snapshot.amount
        gateway.amounts[opened.session_id] = (amount, "eur", str(order.snapshot.order_id))
        events.append(_event(opened.session_id, str(order.snapshot.order_id), amount))
    return events


async def _pending(unit_of_work: Any) -> int:
    async with unit_of_work() as uow:
        result = await uow.session.connection()
        count = (await result.exec_driver_sql("SELECT count(*) FROM stripe_events WHERE status = 'pending'")).scalar()
        await uow.commit()
    return int(count or 0)


async def _drained(unit_of_work: Any) -> bool:
    return await _pending(unit_of_work) == 0


def _worker(
    runner: StoredEventRunner, unit_of_work: Any, url: str, concurrency: int, intake: EventIntake
) -> WebhookWorker:
    """The worker as bootstrap makes it: giving way to the intake where the sources have that (older ones do
    not, and are measured as they are)."""
    pressure = getattr(intake, "pressure", None)
    if pressure is None:
        return WebhookWorker(runner, unit_of_work, database_url=url, concurrency=concurrency)
    return WebhookWorker(runner, unit_of_work, database_url=url, concurrency=concurrency, pressure=pressure)


async def _worker_process(url: str, concurrency: int) -> None:
    """A worker process of its own (``payment-service worker``): no intake here, so no pressure; it runs
    until SIGTERM and then prints the CPU it used."""
    engine = make_engine(url, pool_size=concurrency + 2)
    sessions = make_session_factory(engine)
    topology = Topology("bench.")

    def unit_of_work() -> PaymentUnitOfWork:
        return SqlPaymentUnitOfWork(sessions, topology)

    gateway = FakeGateway()
    async with SqlPaymentUnitOfWork(sessions, topology) as uow:
        connection = await uow.session.connection()
        rows = await connection.exec_driver_sql(
            "SELECT c.stripe_session_id, p.amount, p.order_id FROM checkout_sessions c JOIN payments p USING (order_id)"
        )
        records: list[Any] = list(rows.all())
        for row in records:
            gateway.amounts[str(row[0])] = (int(row[1]), "eur", str(row[2]))
        await uow.commit()
    runner = StoredEventRunner(stripe_handlers(Fulfilment(gateway, unit_of_work)), unit_of_work, gateway)
    worker = WebhookWorker(runner, unit_of_work, database_url=url, concurrency=concurrency)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    cpu = time.process_time()
    await worker.run(stop)
    print(f"{time.process_time() - cpu:.6f}", flush=True)
    await engine.dispose()


def _ms(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] * 1000


async def measure(
    n: int, concurrency: int, worker_concurrency: int, mixed: bool, profile: str | None, separate: bool
) -> None:
    url = f"{os.environ['SPAWNPOINT_PG_URL']}/sp_bench_pay_{uuid.uuid4().hex[:8]}"
    await prepare_database(ALEMBIC_INI, url)
    engine = make_engine(url, pool_size=20)
    try:
        sessions = make_session_factory(engine)
        topology = Topology("bench.")

        def unit_of_work() -> PaymentUnitOfWork:
            return SqlPaymentUnitOfWork(sessions, topology)

        gateway = FakeGateway()
        orders = Orders()
        fulfilment = Fulfilment(gateway, unit_of_work)
        config = CheckoutConfig("https://shop.test/return?session_id={CHECKOUT_SESSION_ID}", timedelta(minutes=60))
        checkout = CheckoutService(unit_of_work, gateway, fulfilment, config, orders)
        intake = EventIntake(unit_of_work)
        warm = await _seed(checkout, gateway, orders, 100)
        events = await _seed(checkout, gateway, orders, n)
        second = await _seed(checkout, gateway, orders, n) if mixed else []

        await _post_all(intake, [_signed(e) for e in warm], concurrency)
        signed = [_signed(e) for e in events]
        cpu, wall = time.process_time(), time.perf_counter()
        latencies = await _post_all(intake, signed, concurrency)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(
            f"intake:  {cpu / n * 1000:.3f} ms CPU per webhook, {n / wall:.0f}/s, "
            f"p50 {_ms(latencies, 0.5):.1f} ms, p99 {_ms(latencies, 0.99):.1f} ms"
        )

        runner = StoredEventRunner(stripe_handlers(fulfilment), unit_of_work, gateway)
        worker = _worker(runner, unit_of_work, url, worker_concurrency, intake)
        child: subprocess.Popen[str] | None = None
        if separate:  # the two-process layout: this process only takes webhooks in
            command = [sys.executable, __file__, "--worker-of", url, "--worker-concurrency", str(worker_concurrency)]
            child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)  # noqa: S603, ASYNC220 - this script
        stop = asyncio.Event()
        total = n + len(warm)
        profiler = cProfile.Profile(time.process_time) if profile else None
        if profiler is not None:
            profiler.enable()
        cpu, wall = time.process_time(), time.perf_counter()
        task = asyncio.create_task(worker.run(stop) if child is None else stop.wait())
        mixed_latencies: list[float] = []
        if mixed:
            await asyncio.sleep(0.2)  # the worker is busy with the first burst
            mixed_started = time.perf_counter()
            mixed_latencies = await _post_all(intake, [_signed(e) for e in second], concurrency)
            mixed_wall = time.perf_counter() - mixed_started
            total += len(second)
        await eventually(lambda: _drained(unit_of_work), timeout=600, what="every stored event applied")
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if profiler is not None and profile is not None:
            profiler.disable()
            profiler.dump_stats(profile)
        stop.set()
        await task
        if child is not None:
            child.send_signal(signal.SIGTERM)
            out, _ = child.communicate(timeout=60)
            cpu += float(out.strip().splitlines()[-1])
            print("layout:  a worker process of its own (its CPU added below)")
        print(
            f"worker:  {cpu / total * 1000:.3f} ms CPU per event (with the second burst's intake), {total / wall:.0f}/s"
        )
        if mixed:
            print(
                f"mixed:   {len(second) / mixed_wall:.0f} webhooks/s while fulfilling, "
                f"p50 {_ms(mixed_latencies, 0.5):.1f} ms, p99 {_ms(mixed_latencies, 0.99):.1f} ms, "
                f"mean {statistics.mean(mixed_latencies) * 1000:.1f} ms"
            )
        await intake.aclose()
    finally:
        await engine.dispose()
        await drop_database(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--worker-concurrency", type=int, default=16)
    parser.add_argument("--mixed", action="store_true")
    parser.add_argument("--profile", help="write the worker phase's cProfile (CPU time) to this file")
    parser.add_argument("--separate", action="store_true", help="run the worker in a process of its own")
    parser.add_argument("--worker-of", help=argparse.SUPPRESS)
    args = parser.parse_args()
    configure_logging("payment-service", level="WARNING", fmt="console")  # as the bench runs it
    if args.worker_of:
        asyncio.run(_worker_process(args.worker_of, args.worker_concurrency))
        return
    asyncio.run(
        measure(args.events, args.concurrency, args.worker_concurrency, args.mixed, args.profile, args.separate)
    )


if __name__ == "__main__":
    main()
