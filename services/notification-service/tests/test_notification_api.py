"""notification-service's HTTP API in process (the app over ASGI, the in-memory unit of work): a customer's
preference, an operator's view of an order's e-mails and the correction of its address."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from notification_support import Story

from notification_service.bootstrap import create_app
from notification_service.deps import Services
from notification_service.service_layer.intake import Intake, events_subscription
from notification_service.testing import FakeNotificationUnitOfWork
from spawnpoint_kit.auth import mint_token
from spawnpoint_kit.messaging.delivery import Delivery
from spawnpoint_kit.settings import DEVELOPMENT_JWT_SECRET

pytestmark = pytest.mark.unit

ALICE = {"Authorization": "Bearer " + mint_token(DEVELOPMENT_JWT_SECRET, sub="alice", email="alice@example.test")}
OPERATOR_TOKEN = mint_token(DEVELOPMENT_JWT_SECRET, sub="ops", email="ops@example.test", roles=("operator",))
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}


@pytest.fixture
def uow() -> FakeNotificationUnitOfWork:
    return FakeNotificationUnitOfWork()


@pytest.fixture
async def client(uow: FakeNotificationUnitOfWork) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app()
    app.state.services = Services(unit_of_work=lambda: uow)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


async def test_a_customer_turns_optional_emails_off_and_reads_it_back(client: httpx.AsyncClient) -> None:
    assert (await client.get("/me/notification-preferences", headers=ALICE)).json() == {"optional_emails": True}
    changed = await client.put("/me/notification-preferences", headers=ALICE, json={"optional_emails": False})
    assert changed.status_code == 200
    assert (await client.get("/me/notification-preferences", headers=ALICE)).json() == {"optional_emails": False}
    assert (await client.get("/me/notification-preferences")).status_code == 401
    bad = await client.put("/me/notification-preferences", headers=ALICE, json={"optional_emails": "sometimes"})
    assert bad.status_code == 422


async def test_an_operator_sees_an_orders_emails_and_corrects_its_address(
    client: httpx.AsyncClient, uow: FakeNotificationUnitOfWork
) -> None:
    story = Story(email="typo@example.test")
    subscription = events_subscription(Intake(order_placed=False), lambda: uow)
    for event in (story.paid(), story.installed()):
        await subscription.handle(event, Delivery.of(event, "notification-service.events"))
    path = f"/operator/orders/{story.order_id}"
    assert (await client.get(f"{path}/emails", headers=ALICE)).status_code == 403
    [email] = (await client.get(f"{path}/emails", headers=OPERATOR)).json()
    assert (email["kind"], email["status"], email["recipient"]) == ("server_ready", "pending", "customer")

    assert (await client.put(f"{path}/email", headers=OPERATOR, json={"email": "not an address"})).status_code == 422
    fixed = await client.put(f"{path}/email", headers=OPERATOR, json={"email": "alice@example.test"})
    assert fixed.status_code == 200 and fixed.json()["email"] == "alice@example.test"
    assert uow.contacts.rows[story.order_id].email_corrected_at is not None
    unknown = await client.put(
        "/operator/orders/00000000-0000-0000-0000-000000000000/email", headers=OPERATOR, json={"email": "a@b.test"}
    )
    assert unknown.status_code == 404
