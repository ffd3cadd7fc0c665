"""Decoding of Stripe's bracket-notation form bodies."""

from __future__ import annotations

import pytest

from stripe_fake.errors import StripeError
from stripe_fake.forms import decode_form, split_key

pytestmark = pytest.mark.unit


def test_nested_dicts_and_indexed_lists() -> None:
    body = (
        "mode=payment&line_items[0][price_data][unit_amount]=1500&line_items[0][quantity]=1"
        "&line_items[1][quantity]=2&metadata[serverOrderId]=ord_1&expand[0]=line_items&expand[1]=payment_intent"
    )
    assert decode_form(body) == {
        "mode": "payment",
        "line_items": [{"price_data": {"unit_amount": "1500"}, "quantity": "1"}, {"quantity": "2"}],
        "metadata": {"serverOrderId": "ord_1"},
        "expand": ["line_items", "payment_intent"],
    }


def test_percent_encoded_brackets_and_values() -> None:
    body = (
        "expand%5B0%5D=line_items&return_url=https%3A%2F%2Fapp%2Fr%3Fsession_id%3D%7BCHECKOUT_SESSION_ID%7D"
        "&line_items%5B0%5D%5Bprice_data%5D%5Bproduct_data%5D%5Bname%5D=Game+server+%E2%80%93+30+days"
    )
    assert decode_form(body) == {
        "expand": ["line_items"],
        "return_url": "https://app/r?session_id={CHECKOUT_SESSION_ID}",
        "line_items": [{"price_data": {"product_data": {"name": "Game server – 30 days"}}}],
    }


def test_list_order_follows_indices_not_arrival() -> None:
    assert decode_form("a[2]=c&a[0]=a&a[1]=b") == {"a": ["a", "b", "c"]}


def test_empty_brackets_append() -> None:
    assert decode_form("expand[]=line_items&expand[]=payment_intent") == {"expand": ["line_items", "payment_intent"]}


def test_blank_values_are_kept() -> None:
    assert decode_form("metadata[x]=&customer_email=") == {"metadata": {"x": ""}, "customer_email": ""}


def test_bytes_body() -> None:
    assert decode_form(b"metadata[k]=v") == {"metadata": {"k": "v"}}


def test_scalar_then_hash_is_invalid_hash() -> None:
    with pytest.raises(StripeError) as info:
        decode_form("metadata=x&metadata[k]=v")
    assert info.value.status == 400
    assert info.value.param == "metadata"
    assert info.value.message == "Invalid hash"


def test_key_with_brackets_inside_a_segment_stays_one_segment() -> None:
    assert split_key("metadata[a[b]]") == ["metadata", "a[b]"]
    assert split_key("plain") == ["plain"]
