"""``GET /v1/events`` and ``GET /v1/events/{id}``: the events Stripe keeps for 30 days.

Useful for reconciliation (``delivery_success=false`` lists events some endpoint has not acknowledged
yet), and for checking an event by id.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from stripe_fake.context import ApiContext
from stripe_fake.errors import invalid_request, resource_missing
from stripe_fake.events import EventLog
from stripe_fake.listing import LIST_PARAMS, created_filter, paginate
from stripe_fake.models import Event
from stripe_fake.params import opt_enum, opt_str, reject_unknown, str_list


def retrieve_event(log: EventLog, ctx: ApiContext, event_id: str) -> dict[str, Any]:
    """One event with its live ``pending_webhooks``."""
    reject_unknown(ctx.params, {"expand"})
    event = log.get(event_id)
    if event is None:
        raise resource_missing("event", event_id, "id")
    return event.to_dict()


def list_events(log: EventLog, ctx: ApiContext) -> dict[str, Any]:
    """Events newest first, filtered by ``type`` (``*`` wildcards), ``types[]``, ``delivery_success``."""
    params = ctx.params
    reject_unknown(params, LIST_PARAMS | {"created", "delivery_success", "type", "types"})
    single = opt_str(params, "type")
    many = str_list(params, "types")
    if single is not None and many:
        raise invalid_request("You may only specify one of these parameters: type, types.", "types")
    patterns = [single] if single is not None else many
    delivery = opt_enum(params, "delivery_success", ["false", "true"])
    in_range = created_filter(params)

    def keep(event: Event) -> bool:
        if patterns and not any(fnmatch.fnmatchcase(event.type, p) for p in patterns):
            return False
        if delivery == "true" and event.pending_endpoints:
            return False
        if delivery == "false" and not event.pending_endpoints:
            return False
        return in_range(event.created)

    events = [e for e in reversed(list(log)) if keep(e)]
    return paginate(
        events, id_of=lambda e: e.id, render=lambda e: e.to_dict(), params=params, url="/v1/events", kind="event"
    )
