"""The Stripe Billing API surface under ``/v1``: catalogue, customers, subscriptions, invoices,
test clocks, portal sessions, charges and disputes.

As for the payment routes, each route only binds a path to a service method; the pipeline does auth,
form decoding, idempotency (every POST) and faults.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from stripe_fake.api import ApiPipeline
from stripe_fake.context import ApiContext
from stripe_fake.fake import StripeFake

Bound = Callable[[ApiContext, str], dict[str, Any]]


def add_billing_routes(router: APIRouter, fake: StripeFake, pipeline: ApiPipeline) -> None:
    """Register the billing routes on the ``/v1`` router (before its catch-all)."""
    billing = fake.billing

    def collection(method: str, path: str, handler: Callable[[ApiContext], dict[str, Any]], summary: str) -> None:
        async def endpoint(request: Request) -> Response:
            return await pipeline.run(request, handler)

        router.add_api_route(path, endpoint, methods=[method], summary=summary)

    def member(method: str, path: str, handler: Bound, summary: str) -> None:
        async def endpoint(request: Request, object_id: str) -> Response:
            return await pipeline.run(request, lambda ctx: handler(ctx, object_id))

        router.add_api_route(path, endpoint, methods=[method], summary=summary)

    catalog = billing.catalog
    collection("POST", "/products", catalog.create_product, "Create a product")
    collection("GET", "/products", catalog.list_products, "List products")
    member("GET", "/products/{object_id}", catalog.retrieve_product, "Retrieve a product")
    member("POST", "/products/{object_id}", catalog.update_product, "Update a product")
    collection("POST", "/prices", catalog.create_price, "Create a price")
    collection("GET", "/prices", catalog.list_prices, "List prices (lookup_keys[])")
    member("GET", "/prices/{object_id}", catalog.retrieve_price, "Retrieve a price")
    member("POST", "/prices/{object_id}", catalog.update_price, "Update a price")

    customers = billing.customers
    collection("POST", "/customers", customers.create, "Create a customer (test_clock)")
    collection("GET", "/customers", customers.list_customers, "List customers")
    member("GET", "/customers/{object_id}", customers.retrieve, "Retrieve a customer")
    member("POST", "/customers/{object_id}", customers.update, "Update a customer")
    member("DELETE", "/customers/{object_id}", customers.delete, "Delete a customer")
    member("GET", "/customers/{object_id}/payment_methods", customers.list_payment_methods, "A customer's cards")
    collection("GET", "/payment_methods", customers.list_payment_methods, "List payment methods")
    member("GET", "/payment_methods/{object_id}", customers.retrieve_payment_method, "Retrieve a payment method")
    member("POST", "/payment_methods/{object_id}/attach", customers.attach_api, "Attach a payment method")
    member("POST", "/payment_methods/{object_id}/detach", customers.detach_api, "Detach a payment method")

    subs = billing.subscriptions
    collection("GET", "/subscriptions", subs.list_subscriptions, "List subscriptions")
    member("GET", "/subscriptions/{object_id}", subs.retrieve, "Retrieve a subscription")
    member("POST", "/subscriptions/{object_id}", subs.update, "Update a subscription")
    member("DELETE", "/subscriptions/{object_id}", subs.cancel, "Cancel a subscription")

    invoices = billing.invoices
    collection("GET", "/invoices", invoices.list_invoices, "List invoices")
    member("GET", "/invoices/{object_id}", invoices.retrieve, "Retrieve an invoice (expand[]=payments)")
    member("GET", "/invoices/{object_id}/lines", invoices.lines, "An invoice's lines")
    member("POST", "/invoices/{object_id}/pay", invoices.pay, "Pay an invoice")
    collection("GET", "/invoice_payments", invoices.list_payments, "List invoice payments")
    member("GET", "/invoice_payments/{object_id}", invoices.retrieve_payment, "Retrieve an invoice payment")

    charges = billing.charges
    collection("GET", "/charges", charges.list_charges, "List charges")
    member("GET", "/charges/{object_id}", charges.retrieve, "Retrieve a charge")

    disputes = billing.disputes
    collection("GET", "/disputes", disputes.list_disputes, "List disputes")
    member("GET", "/disputes/{object_id}", disputes.retrieve, "Retrieve a dispute")
    member("POST", "/disputes/{object_id}", disputes.update, "Submit evidence")
    member("POST", "/disputes/{object_id}/close", disputes.close, "Accept (close) a dispute")

    clocks = billing.test_clocks
    collection("POST", "/test_helpers/test_clocks", clocks.create, "Create a test clock")
    collection("GET", "/test_helpers/test_clocks", clocks.list_clocks, "List test clocks")
    member("GET", "/test_helpers/test_clocks/{object_id}", clocks.retrieve, "Retrieve a test clock")
    member("DELETE", "/test_helpers/test_clocks/{object_id}", clocks.delete, "Delete a test clock")
    member("POST", "/test_helpers/test_clocks/{object_id}/advance", clocks.advance, "Advance a test clock")

    collection("POST", "/billing_portal/sessions", billing.portal.create, "Create a billing portal session")
