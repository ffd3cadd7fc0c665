"""notification-service's HTTP API: a customer's preference about optional e-mails, and what an operator
needs to see and fix (an order's e-mails, a wrong address).

- ``GET /me/notification-preferences`` / ``PUT`` ``{"optional_emails": false}``: the customer's choice about
  optional e-mails (an order confirmation, a payment received after a failure). Payment, suspension and
  deletion notices are always sent.
- ``GET /operator/orders/{id}/emails``: every e-mail of the order, its state, attempts, the server's last
  reply and the Message-ID (never the body).
- ``PUT /operator/orders/{id}/email`` ``{"email": "..."}``: correct the address e-mails for the order go to.
  Later e-mails use it, and so does an e-mail the SMTP server refused for good once its dead letter is
  replayed (``spawnctl dlq replay --queue notification-service.events --order-id ...``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from spawnpoint_kit.auth import CurrentPrincipal, OperatorPrincipal
from spawnpoint_kit.logs import get_logger

from ..deps import UnitOfWorkDep

log = get_logger(__name__)
router = APIRouter()


class PreferencesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    optional_emails: bool = Field(description="Send optional e-mails (never affects payment or suspension notices)")


class PreferencesOut(BaseModel):
    optional_emails: bool


class EmailIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(
        max_length=320,
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        description="The address e-mails about this order go to from now on",
    )


class ContactOut(BaseModel):
    order_id: uuid.UUID
    email: str
    locale: str
    time_zone: str
    email_corrected_at: datetime | None


class EmailOut(BaseModel):
    kind: str
    recipient: str = Field(description="customer or operator")
    status: str
    attempts: int
    message_id: str | None
    subject: str | None
    locale: str | None
    last_error: str | None = Field(description="The SMTP server's last reply when it was not accepted")
    failure_class: str | None
    caused_by: str
    occurred_at: datetime
    sent_at: datetime | None
    next_attempt_at: datetime


@router.get("/me/notification-preferences", response_model=PreferencesOut, tags=["preferences"])
async def read_preferences(principal: CurrentPrincipal, uow: UnitOfWorkDep) -> PreferencesOut:
    async with uow:
        return PreferencesOut(optional_emails=await uow.preferences.optional_emails(principal.user_id))


@router.put("/me/notification-preferences", response_model=PreferencesOut, tags=["preferences"])
async def write_preferences(body: PreferencesIn, principal: CurrentPrincipal, uow: UnitOfWorkDep) -> PreferencesOut:
    async with uow:
        await uow.preferences.set_optional_emails(principal.user_id, body.optional_emails)
        await uow.commit()
    return PreferencesOut(optional_emails=body.optional_emails)


@router.get("/operator/orders/{order_id}/emails", response_model=list[EmailOut], tags=["operator"])
async def read_emails(order_id: uuid.UUID, _: OperatorPrincipal, uow: UnitOfWorkDep) -> list[EmailOut]:
    async with uow:
        rows = await uow.emails.of_order(order_id)
    return [
        EmailOut(
            kind=r.kind,
            recipient=r.role,
            status=r.status,
            attempts=r.attempts,
            message_id=r.message_id,
            subject=r.subject,
            locale=r.locale,
            last_error=r.last_error,
            failure_class=r.failure_class,
            caused_by=r.event_type,
            occurred_at=r.occurred_at,
            sent_at=r.sent_at,
            next_attempt_at=r.next_attempt_at,
        )
        for r in rows
    ]


@router.put(
    "/operator/orders/{order_id}/email",
    response_model=ContactOut,
    tags=["operator"],
    responses={404: {"description": "No e-mail contact for this order (its OrderCreated was not seen)"}},
)
async def correct_email(order_id: uuid.UUID, body: EmailIn, _: OperatorPrincipal, uow: UnitOfWorkDep) -> ContactOut:
    async with uow:
        contact = await uow.contacts.lock(order_id)
        if contact is None:
            raise HTTPException(404, "no contact for this order")
        contact.email = str(body.email)
        contact.email_corrected_at = datetime.now(UTC)
        contact.updated_at = contact.email_corrected_at
        await uow.contacts.save(contact)
        await uow.commit()
    log.info("e-mail address corrected by an operator", order_id=str(order_id))
    return ContactOut(
        order_id=contact.order_id,
        email=contact.email,
        locale=contact.locale,
        time_zone=contact.time_zone,
        email_corrected_at=contact.email_corrected_at,
    )
