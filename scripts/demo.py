"""``make demo``: with the system up (``make up``), walk one order from creation to CREATED and print
each status change the way the customer's page would show it."""

from __future__ import annotations

import os
import sys
import time
import uuid

import httpx

from devstack import DEFAULT_PORTS
from spawnpoint_kit.auth import mint_token
from spawnpoint_kit.settings import CommonSettings

PAGE = {
    "PENDING": "Waiting for payment",
    "PAID": "Creating your server ...",
    "CREATED": "Server ready  [ Connect -> {connect_path} ]",
    "FAILED": "Server error: {message}",
}


def url(name: str, path: str) -> str:
    return f"http://127.0.0.1:{DEFAULT_PORTS[name]}{path}"


def main() -> int:
    user = f"demo-{uuid.uuid4().hex[:6]}"
    token = mint_token(CommonSettings().jwt_secret.get_secret_value(), sub=user, email=f"{user}@example.test")
    auth = {"Authorization": f"Bearer {token}"}
    game = os.environ.get("DEMO_GAME", "minecraft-paper")
    with httpx.Client(timeout=30) as http:
        try:
            http.get(url("order-service", "/healthz")).raise_for_status()
        except httpx.HTTPError:
            print("Spawnpoint is not running: start it with `make up` (or `make run` in another terminal).")
            return 2
        order = http.post(
            url("order-service", "/orders"),
            headers={**auth, "Idempotency-Key": str(uuid.uuid4())},
            json={"game_id": game, "plan_id": "standard", "server_name": f"{user}'s world"},
        )
        order.raise_for_status()
        o = order.json()
        print(
            f"1. {user} ordered {o['game_name']} / {o['plan_name']} for {o['amount'] / 100:.2f} {o['currency'].upper()}"
        )
        print(f"   order {o['id']}")
        checkout = http.post(url("payment-service", "/checkout-sessions"), headers=auth, json={"order_id": o["id"]})
        checkout.raise_for_status()
        session_id = checkout.json()["session_id"]
        print(f"2. embedded Checkout opened: session {session_id} (client_secret goes to Stripe.js)")

        started = time.monotonic()
        last = None
        paid_sent = False
        while time.monotonic() - started < 120:
            response = http.get(url("status-service", f"/orders/{o['id']}/status"), headers=auth)
            if response.status_code == 200:
                s = response.json()
                view = (s["status"], s["phase"])
                if view != last:
                    last = view
                    line = PAGE[s["status"]].format(**s)
                    print(f"   [{time.monotonic() - started:6.2f}s] {s['status']:<8} {s['phase']:<18} {line}")
                if s["status"] == "PENDING" and not paid_sent:
                    http.post(
                        url("stripe-fake", f"/_fake/sessions/{session_id}/pay"), json={"outcome": "paid"}
                    ).raise_for_status()
                    print("3. the customer pays (Stripe stand-in); Stripe sends the signed webhook")
                    paid_sent = True
                if s["status"] in ("CREATED", "FAILED"):
                    return 0 if s["status"] == "CREATED" else 1
            time.sleep(0.1)
    print("the order did not reach CREATED within 120 s")
    return 1


if __name__ == "__main__":
    sys.exit(main())
