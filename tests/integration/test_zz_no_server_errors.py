"""Runs last in the session (file name): no request the suite made got a 500 from any service.

A 503 for an unavailable dependency is an answer; a 500 is a bug."""

from __future__ import annotations

import pytest

from .support import Api

pytestmark = pytest.mark.integration


async def test_no_service_answered_500(api: Api) -> None:
    assert await api.services_that_answered_500() == {}
