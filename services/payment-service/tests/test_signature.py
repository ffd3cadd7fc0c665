"""Unit tests of webhook signature verification (the official SDK's HMAC, our tolerance and reasons)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
import stripe

from payment_service.adapters.signature import InvalidSignature, verify

pytestmark = pytest.mark.unit

# The reference's known-answer vector (stripe.md §2).
KAT_SECRET = "whsec_test_secret"
KAT_TIMESTAMP = 1795726535
KAT_PAYLOAD = (
    '{"id":"evt_test_1","object":"event","type":"checkout.session.completed","data":{"object":{"id":"cs_test_1",'
    '"object":"checkout.session","status":"complete","payment_status":"paid","metadata":{"serverOrderId":"ord_1"}}}}'
)
KAT_V1 = "81eb12bef3e95dbd0603affba5b4b180fbcbdc3356e9135742f5238879c63c0f"
SECRET = "whsec_unit"


def _header(body: str, secret: str = SECRET, timestamp: int | None = None) -> str:
    header: str = stripe.WebhookSignature.generate_signature_header(body, secret, timestamp or int(time.time()))
    return header


def _reason(payload: bytes, header: str | None, secrets: list[str] | None = None, now: float | None = None) -> str:
    with pytest.raises(InvalidSignature) as refused:
        verify(payload, header, secrets or [SECRET], tolerance=300, now=now)
    reason: str = refused.value.reason
    return reason


def test_the_known_answer_vector_reproduces_and_verifies() -> None:
    mac = hmac.new(KAT_SECRET.encode(), f"{KAT_TIMESTAMP}.{KAT_PAYLOAD}".encode(), hashlib.sha256).hexdigest()
    assert mac == KAT_V1
    header = f"t={KAT_TIMESTAMP},v1={KAT_V1}"
    verify(KAT_PAYLOAD.encode(), header, [KAT_SECRET], tolerance=300, now=KAT_TIMESTAMP + 10)
    assert _reason(KAT_PAYLOAD.encode(), header, [KAT_SECRET], now=KAT_TIMESTAMP + 301) == "stale"


def test_a_re_serialised_body_a_wrong_secret_and_bad_headers_are_refused_with_their_reason() -> None:
    body = json.dumps(
        {"id": "evt_1", "type": "checkout.session.completed", "name": "Jürgen Müller"}, ensure_ascii=False
    )
    header = _header(body)
    verify(body.encode(), header, [SECRET], tolerance=300)
    assert _reason(json.dumps(json.loads(body), indent=2).encode(), header) == "mismatch"
    assert _reason(body.encode(), _header(body, "whsec_other")) == "mismatch"
    assert _reason(body.encode(), None) == "missing_header"
    assert _reason(body.encode(), "") == "missing_header"
    assert _reason(body.encode(), "abc") == "malformed_header"
    assert _reason(body.encode(), "t=abc,v1=00") == "malformed_header"
    assert _reason(body.encode(), f"t={int(time.time())},v0=deadbeef") == "no_v1"
    assert _reason(b"\xff\xfe", _header("x")) == "not_utf8"


def test_the_tolerance_refuses_301_seconds_accepts_299_and_a_future_timestamp() -> None:
    body = '{"id": "evt_2"}'
    now = time.time()
    assert _reason(body.encode(), _header(body, timestamp=int(now) - 301), now=now) == "stale"
    verify(body.encode(), _header(body, timestamp=int(now) - 299), [SECRET], tolerance=300, now=now)
    verify(body.encode(), _header(body, timestamp=int(now) + 3600), [SECRET], tolerance=300, now=now)


def test_rotation_several_secrets_and_several_v1_values() -> None:
    body = '{"id": "evt_3"}'
    ts = int(time.time())
    good = _header(body, SECRET, ts).split("v1=")[1]
    wrong = _header(body, "whsec_old", ts).split("v1=")[1]
    verify(body.encode(), f"t={ts},v1={wrong},v1={good},v0=ffff", [SECRET], tolerance=300)
    verify(body.encode(), _header(body, "whsec_old", ts), ["whsec_new", "whsec_old"], tolerance=300)
    assert _reason(body.encode(), f"t={ts},v1={wrong}", ["whsec_new", SECRET]) == "mismatch"


def test_a_second_t_cannot_make_an_old_signature_look_recent() -> None:
    """Finding 3: the parser kept the last ``t`` while the SDK checks the HMAC against the first, so
    ``t=<a month ago>,v1=<valid>,t=<now>`` was accepted for a month-old signed body."""
    body = '{"id":"evt_old","type":"checkout.session.completed"}'
    month_ago = int(time.time()) - 30 * 24 * 3600
    old = _header(body, timestamp=month_ago)
    assert _reason(body.encode(), old) == "stale"
    assert _reason(body.encode(), f"{old},t={int(time.time())}") == "stale"
    assert _reason(body.encode(), f"t={int(time.time())},{old}") == "mismatch"


def test_the_header_is_read_as_the_sdk_reads_it() -> None:
    body = '{"id":"evt_ws","type":"checkout.session.completed"}'
    now = int(time.time())
    header = _header(body, timestamp=now)
    verify(body.encode(), header + ",v0=ignored", [SECRET], tolerance=300)
    assert _reason(body.encode(), " " + header) == "malformed_header", "' t' is not 't' for the SDK either"
    assert _reason(body.encode(), "t,v1=00") == "malformed_header"
