"""One customer process: places, pays for and follows its orders like a patient frontend.

``python -m chaos.customers SPEC.json RESULT.json`` runs the customers of one process (several at once)
against the stack the spec names, and writes what each of them saw. A customer never gives up on a
transient answer: a connection error, a 5xx or a 429 is retried with a growing pause, with the same
``Idempotency-Key``, so that a double click or a retry during an outage makes one order. A 4xx other than
429 is a definite answer and ends that customer's attempt (the audit reports it).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

TERMINAL = ("CREATED", "FAILED")


@dataclass
class Spec:
    urls: dict[str, str]
    tokens: dict[str, str]
    """Customer user id -> its bearer token."""
    deadline: float
    """Epoch seconds: when customers stop following their orders."""
    concurrency: int = 10
    start_within: float = 20.0
    """Customers start spread over this many seconds (a burst, not a stampede)."""


@dataclass
class Outcome:
    user_id: str
    order_id: str | None = None
    session_id: str | None = None
    paid: bool = False
    status: str | None = None
    phase: str | None = None
    retries: int = 0
    error: str | None = None
    seen: list[str] = field(default_factory=list)


class Customer:
    def __init__(self, http: httpx.AsyncClient, spec: Spec, user_id: str) -> None:
        self.http = http
        self.spec = spec
        self.outcome = Outcome(user_id)
        self.auth = {"Authorization": f"Bearer {spec.tokens[user_id]}"}

    async def _patiently(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Until a definite answer: 2xx, or a 4xx other than 429 (then the caller decides)."""
        pause = 0.2
        while True:
            if time.time() > self.spec.deadline:
                raise TimeoutError(f"no definite answer from {method} {url} before the deadline")
            try:
                response = await self.http.request(method, url, **kwargs)
                if response.status_code < 500 and response.status_code != 429:
                    return response
            except httpx.HTTPError:
                pass
            self.outcome.retries += 1
            await asyncio.sleep(pause)
            pause = min(3.0, pause * 1.5)

    async def run(self) -> Outcome:
        try:
            await self._order_and_pay()
            await self._follow()
        except Exception as exc:
            self.outcome.error = f"{type(exc).__name__}: {exc}"[:300]
        return self.outcome

    async def _order_and_pay(self) -> None:
        urls = self.spec.urls
        key = str(uuid.uuid4())
        placed = await self._patiently(
            "POST",
            f"{urls['order-service']}/orders",
            headers={**self.auth, "Idempotency-Key": key},
            json={"game_id": "minecraft-paper", "plan_id": "starter", "server_name": "Chaos world", "settings": {}},
        )
        if placed.status_code not in (200, 201):
            raise RuntimeError(f"order refused: {placed.status_code} {placed.text[:200]}")
        self.outcome.order_id = order_id = str(placed.json()["id"])
        checkout = await self._patiently(
            "POST", f"{urls['payment-service']}/checkout-sessions", headers=self.auth, json={"order_id": order_id}
        )
        if checkout.status_code == 404:  # order-service has not told payment-service yet: ask again
            for _ in range(60):
                await asyncio.sleep(0.5)
                checkout = await self._patiently(
                    "POST",
                    f"{urls['payment-service']}/checkout-sessions",
                    headers=self.auth,
                    json={"order_id": order_id},
                )
                if checkout.status_code != 404:
                    break
        if checkout.status_code not in (200, 201):
            raise RuntimeError(f"checkout refused: {checkout.status_code} {checkout.text[:200]}")
        self.outcome.session_id = session_id = str(checkout.json()["session_id"])
        paid = await self._patiently(
            "POST", f"{urls['stripe-fake']}/_fake/sessions/{session_id}/pay", json={"outcome": "paid"}
        )
        self.outcome.paid = paid.status_code == 200
        if not self.outcome.paid:
            raise RuntimeError(f"payment refused: {paid.status_code} {paid.text[:200]}")

    async def _follow(self) -> None:
        """Poll the order's status as the return page does, until it is terminal or the deadline passes."""
        url = f"{self.spec.urls['status-service']}/orders/{self.outcome.order_id}/status"
        while time.time() < self.spec.deadline:
            try:
                response = await self.http.get(url, headers=self.auth)
                if response.status_code == 200:
                    body = response.json()
                    self.outcome.status, self.outcome.phase = body["status"], body["phase"]
                    if not self.outcome.seen or self.outcome.seen[-1] != body["status"]:
                        self.outcome.seen.append(body["status"])
                    if body["status"] in TERMINAL:
                        return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(1.0)


async def run(spec: Spec) -> list[Outcome]:
    gate = asyncio.Semaphore(spec.concurrency)
    users = list(spec.tokens)
    async with httpx.AsyncClient(timeout=httpx.Timeout(20.0, connect=5.0)) as http:

        async def one(index: int, user_id: str) -> Outcome:
            await asyncio.sleep(spec.start_within * index / max(1, len(users)))
            async with gate:
                return await Customer(http, spec, user_id).run()

        return list(await asyncio.gather(*(one(i, u) for i, u in enumerate(users))))


def main(argv: list[str]) -> int:
    spec_path, result_path = Path(argv[0]), Path(argv[1])
    spec = Spec(**json.loads(spec_path.read_text()))
    outcomes = asyncio.run(run(spec))
    result_path.write_text(json.dumps([asdict(o) for o in outcomes]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
