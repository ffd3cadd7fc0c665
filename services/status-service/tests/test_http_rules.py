"""Unit tests of the HTTP rules that need no server: ETag matching, the poll's answers, where a stream
resumes, the snapshot's encodings, and the cache of verified tokens."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime

import pytest

from spawnpoint_kit.auth import InvalidToken, Principal, PrincipalCache, TokenVerifier, mint_token
from status_service.entrypoints.polling import etag_matches, poll_answer
from status_service.entrypoints.streams import resume_point
from status_service.service_layer.snapshot import Snapshot
from status_service.service_layer.stream_slots import StreamsFull, StreamSlots

pytestmark = pytest.mark.unit

SECRET = "status-service-unit-test-secret-0123456789"


def snapshot(version: int = 3, phase: str = "installing", status: str = "PAID") -> Snapshot:
    return Snapshot(
        order_id=uuid.UUID(int=7),
        user_id="alice",
        version=version,
        status=status,
        phase=phase,
        message="Your server is being installed",
        server_id="a1b2c3d4",
        connect_path=None,
        updated_at=datetime(2026, 11, 27, 10, 15, 3, 120000, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        ("", False),
        ('"abc"', True),
        ('W/"abc"', True),
        ('"x", "abc"', True),
        ('"x",W/"abc"', True),
        ("*", True),
        ('"abcd"', False),
        ("abc", False),
    ],
)
def test_if_none_match_uses_weak_comparison(header: str | None, matches: bool) -> None:
    assert etag_matches(header, '"abc"') is matches


def test_poll_answers() -> None:
    snap = snapshot()
    code, headers, body = poll_answer(snap, None)
    assert code == 200 and json.loads(body)["phase"] == "installing"
    assert dict(headers)[b"etag"] == snap.etag.encode()
    assert dict(headers)[b"retry-after"] == b"3"
    code, headers, body = poll_answer(snap, snap.etag)
    assert (code, body) == (304, b"") and dict(headers)[b"etag"] == snap.etag.encode()
    code, _, body = poll_answer(None, snap.etag)
    assert (code, json.loads(body)) == (404, {"detail": "order not found"})


def test_the_etag_follows_the_body() -> None:
    assert snapshot().etag == snapshot().etag
    assert snapshot().etag != snapshot(version=4).etag
    assert snapshot().etag != snapshot(phase="ready", status="CREATED").etag


def test_the_stream_frame_and_the_notify_payload() -> None:
    snap = snapshot()
    assert snap.sse == b"id: 3\nevent: status\ndata: " + snap.body + b"\n\n"
    again = Snapshot.from_notify(snap.to_notify())
    assert (again.body, again.etag, again.user_id) == (snap.body, snap.etag, "alice")
    assert json.loads(snap.body)["updated_at"] == "2026-11-27T10:15:03.120000Z"


@pytest.mark.parametrize(
    ("header", "point"), [(None, None), ("4", 4), (" 12 ", 12), ("0", 0), ("x", None), ("-1", None)]
)
def test_resume_point(header: str | None, point: int | None) -> None:
    assert resume_point(header) == point


@pytest.mark.parametrize("header", ["\u00b2", "\u0663", "1\u00b2", "9" * 40])
def test_a_last_event_id_that_is_not_plain_digits_starts_the_stream_afresh(header: str) -> None:
    """Finding 4: ``Last-Event-ID: \\xb2`` arrives as "²", which ``isdigit`` accepts and ``int`` refuses,
    after the 200 was sent."""
    assert resume_point(header) is None


class CountingVerifier(TokenVerifier):
    calls: int = 0

    def verify(self, token: str) -> Principal:
        object.__setattr__(self, "calls", self.calls + 1)
        return super().verify(token)


def test_a_verified_token_is_remembered_until_it_expires() -> None:
    verifier = CountingVerifier(SECRET, leeway_seconds=0)
    now = [time.time()]
    cache = PrincipalCache(verifier, clock=lambda: now[0])
    token = mint_token(SECRET, sub="alice", ttl_seconds=60)
    assert cache.verify(token).user_id == "alice"
    assert cache.verify(token).user_id == "alice"
    assert verifier.calls == 1
    now[0] += 61  # past exp: asked again (the verifier, on the real clock, still accepts it here)
    cache.verify(token)
    assert verifier.calls == 2


def test_invalid_tokens_are_refused_every_time() -> None:
    verifier = CountingVerifier(SECRET)
    cache = PrincipalCache(verifier)
    forged = mint_token("another-secret-that-is-long-enough-0123456789", sub="mallory")
    for _ in range(2):
        with pytest.raises(InvalidToken):
            cache.verify(forged)
    assert verifier.calls == 2


def test_stream_slots_per_user_and_per_process_are_given_back_once() -> None:
    slots = StreamSlots(per_user=2, per_process=3)
    a1, a2 = slots.take("a"), slots.take("a")
    with pytest.raises(StreamsFull) as per_user:
        slots.take("a")
    assert per_user.value.status == 429
    b1 = slots.take("b")
    with pytest.raises(StreamsFull) as per_process:
        slots.take("c")
    assert per_process.value.status == 503
    a1()
    a1()  # twice: still one slot given back
    assert slots.open == 2
    slots.take("c")
    for release in (a2, b1):
        release()
    assert slots.open == 1
