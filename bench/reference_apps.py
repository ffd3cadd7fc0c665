"""Reference endpoints on the same server stack as the services (uvicorn + FastAPI), with none of their
work: what the machine allows for one HTTP request before any database or broker is involved.

    uvicorn bench.reference_apps:webhook_app    # verifies a Stripe signature, answers 200
    uvicorn bench.reference_apps:constant_app   # answers a constant JSON body
"""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from payment_service.adapters.signature import InvalidSignature, verify

SECRET = "whsec_spawnpoint_dev"

webhook_app = FastAPI(title="reference: verify-only webhook")


@webhook_app.post("/webhooks/stripe")
async def verify_only(request: Request) -> dict[str, bool]:
    payload = await request.body()
    try:
        verify(payload, request.headers.get("stripe-signature"), [SECRET], tolerance=300)
    except InvalidSignature as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from exc
    return {"received": True}


constant_app = FastAPI(title="reference: constant body")
_BODY = {
    "order_id": "00000000-0000-4000-8000-000000000000",
    "status": "PAID",
    "phase": "installing",
    "message": "Your server is being installed",
    "server_id": "d3aac109",
    "connect_path": None,
    "updated_at": "2026-11-26T10:00:00Z",
}


@constant_app.get("/orders/{order_id}/status")
async def constant(order_id: str) -> JSONResponse:
    return JSONResponse(_BODY, headers={"ETag": '"v1"'})
