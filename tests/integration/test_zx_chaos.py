"""The small fault campaign ``make test`` runs (``make chaos`` runs the whole one): 30 paid orders from
customer processes while payment-service and the provisioner are SIGKILLed, the panel answers 503s, Wings
commits a server and hangs, webhooks are held back then delivered reordered and duplicated, and RabbitMQ
restarts (when this machine lets the test control it). Every figure of the report must be zero."""

from __future__ import annotations

import pytest

from chaos.campaign import campaign, table

pytestmark = pytest.mark.integration


async def test_a_small_fault_campaign_loses_nothing_doubles_nothing_and_ends_every_order() -> None:
    report = await campaign(orders=30, quick=True, deadline_seconds=150)
    details = "\n".join(
        [table(report)]
        + [f"lost: {o}" for o in report.lost]
        + [f"doubled: {o}" for o in report.doubled]
        + [f"wrong refund: {o}" for o in report.wrong_refunds]
        + [f"not terminal: {o}" for o in report.not_terminal]
        + [f"customer error: {o}" for o in report.customer_errors[:10]]
    )
    assert report.paid == 30, details
    assert report.clean, details
    assert report.created == 30, details
    assert sum(report.kills.values()) >= 2 and sum(report.restarts.values()) >= 2, details
