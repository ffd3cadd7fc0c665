"""Signing module against the reference's known-answer vector and the SDK's verifier."""

from __future__ import annotations

import json
import time

import pytest
import stripe

from stripe_fake.signing import compute_signature, signature_header

pytestmark = pytest.mark.unit

KAT_SECRET = "whsec_test_secret"
KAT_TIMESTAMP = 1795726535
KAT_PAYLOAD = (
    '{"id":"evt_test_1","object":"event","type":"checkout.session.completed","data":{"object":'
    '{"id":"cs_test_1","object":"checkout.session","status":"complete","payment_status":"paid",'
    '"metadata":{"serverOrderId":"ord_1"}}}}'
)
KAT_V1 = "81eb12bef3e95dbd0603affba5b4b180fbcbdc3356e9135742f5238879c63c0f"


def test_known_answer_vector_reproduces_exactly() -> None:
    """Case 7: the reference's vector, from str and from bytes."""
    assert compute_signature(KAT_PAYLOAD, KAT_SECRET, KAT_TIMESTAMP) == KAT_V1
    assert compute_signature(KAT_PAYLOAD.encode(), KAT_SECRET, KAT_TIMESTAMP) == KAT_V1
    header = signature_header(KAT_PAYLOAD, [KAT_SECRET], KAT_TIMESTAMP, include_v0=False)
    assert header == f"t={KAT_TIMESTAMP},v1={KAT_V1}"


def test_header_matches_the_sdk_generator() -> None:
    """The SDK's own ``generate_signature_header`` (given a str) yields the same ``v1``."""
    now = int(time.time())
    ours = signature_header(KAT_PAYLOAD, [KAT_SECRET], now, include_v0=False)
    theirs = stripe.WebhookSignature.generate_signature_header(KAT_PAYLOAD, KAT_SECRET, now)
    assert ours == theirs


def test_header_has_one_v1_per_secret_then_a_v0() -> None:
    header = signature_header(KAT_PAYLOAD, ["whsec_new", "whsec_old"], KAT_TIMESTAMP)
    parts = [p.split("=", 1) for p in header.split(",")]
    assert [k for k, _ in parts] == ["t", "v1", "v1", "v0"]
    assert parts[1][1] == compute_signature(KAT_PAYLOAD, "whsec_new", KAT_TIMESTAMP)
    assert parts[2][1] == compute_signature(KAT_PAYLOAD, "whsec_old", KAT_TIMESTAMP)
    assert len(parts[3][1]) == 64


@pytest.mark.parametrize("secret", ["whsec_new", "whsec_old"])
def test_sdk_accepts_rotation_header_with_either_secret(secret: str) -> None:
    """Case 5: two ``v1`` plus ``v0``; the SDK accepts whichever secret the receiver holds."""
    now = int(time.time())
    header = signature_header(KAT_PAYLOAD, ["whsec_new", "whsec_old"], now)
    assert stripe.WebhookSignature.verify_header(KAT_PAYLOAD, header, secret, 300)


def test_tolerance_edges_with_the_sdk() -> None:
    """Case 4: 301 s old is rejected, 299 s old is accepted (SDK default tolerance 300 s)."""
    now = int(time.time())
    old = signature_header(KAT_PAYLOAD, [KAT_SECRET], now - 301)
    with pytest.raises(stripe.SignatureVerificationError, match="Timestamp outside the tolerance zone"):
        stripe.Webhook.construct_event(KAT_PAYLOAD, old, KAT_SECRET)
    recent = signature_header(KAT_PAYLOAD, [KAT_SECRET], now - 299)
    event = stripe.Webhook.construct_event(KAT_PAYLOAD, recent, KAT_SECRET)
    assert event.id == "evt_test_1"


def test_valid_signature_over_non_json_is_a_value_error() -> None:
    """Case 6: the SDK raises ``ValueError`` (JSONDecodeError), not a signature error."""
    now = int(time.time())
    header = signature_header("not json", [KAT_SECRET], now)
    with pytest.raises(ValueError) as info:
        stripe.Webhook.construct_event("not json", header, KAT_SECRET)
    assert not isinstance(info.value, stripe.SignatureVerificationError)
    assert isinstance(info.value, json.JSONDecodeError)
