"""The panel side of OrderPaid: make sure the order's server exists, adopting one that already does.

Runs outside any database transaction (a panel call can take a minute) and is safe to repeat: it looks the
server up by ``external_id`` (the order id) first and adopts what it finds; otherwise it ensures the
customer's panel user, reads the egg (cached) and creates the server. When the outcome of the create is
unknown (a timeout, a dropped connection, a 5xx) or the panel says ``external_id`` is taken (a 422
``unique``: another instance, an earlier try that did commit, or a server made outside the shop's
records), it looks again and adopts what exists. So no order ever gets two servers, whatever crashed or
raced before: the panel keeps one server per ``external_id``.

The look-up first is skipped when its answer is known: on the first try of an order's first attempt
(``known_absent``) no earlier try reached the panel, so nothing of ours can have created the server yet,
and the create itself says so if anything else did (the 422 above). That is one panel request fewer for
nearly every order. ``provision.py`` wraps this in tenacity's retries and records the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass

from spawnpoint_contracts import OrderSnapshot
from spawnpoint_kit.logs import get_logger

from ..domain.panel import Eggs, Panel, PanelError, PanelServer, PanelUnreachable
from ..domain.server_request import create_body

log = get_logger(__name__)


@dataclass(frozen=True)
class ServerOutcome:
    server: PanelServer
    panel_user_id: int
    adopted: bool
    """True when the server was found on the panel rather than created by this call."""


async def ensure_server(panel: Panel, eggs: Eggs, order: OrderSnapshot, *, known_absent: bool = False) -> ServerOutcome:
    """The order's server on the panel: found by ``external_id``, else created (see the module docstring).
    ``known_absent``: no earlier try of the order reached the panel, so the create goes first."""
    external_id = str(order.order_id)
    existing = None if known_absent else await panel.server_by_external_id(external_id)
    if existing is not None:
        log.info("server already exists on the panel; adopting it", server_id=existing.id)
        return ServerOutcome(existing, existing.user, adopted=True)
    user_id = await panel.ensure_user(user_id=order.user_id, email=order.email)
    egg = await eggs.get(nest_id=order.server_spec.nest_id, egg_id=order.server_spec.egg_id)
    body = create_body(order, user_id=user_id, egg=egg, flavor=panel.flavor)
    try:
        created = await panel.create_server(body)
    except PanelError as exc:
        if (exc.status == 422 and exc.has("external_id", "unique")) or exc.status >= 500:
            return await _adopt_or_raise(panel, external_id, exc, "create raced or failed after commit")
        raise
    except PanelUnreachable as exc:
        return await _adopt_or_raise(panel, external_id, exc, "create timed out but the server may exist")
    log.info("server created on the panel", server_id=created.id, identifier=created.identifier)
    return ServerOutcome(created, user_id, adopted=False)


async def _adopt_or_raise(panel: Panel, external_id: str, exc: Exception, why: str) -> ServerOutcome:
    """The outcome of the create is unknown: look again, adopt what exists, else fail this try."""
    adopted = await panel.server_by_external_id(external_id)
    if adopted is None:
        raise exc
    log.info(f"{why}; adopting", server_id=adopted.id)
    return ServerOutcome(adopted, adopted.user, adopted=True)
