"""Runs last in the session (file name): no request the suite made got a 500 from any service.

A 503 for an unavailable dependency is an answer; a 500 is a bug."""

from __future__ import annotations

import re

import pytest

from devstack import SERVICES

from .support import Api

pytestmark = pytest.mark.integration


async def test_no_service_answered_500(api: Api) -> None:
    for service in SERVICES:
        metrics = await api.metrics(service)
        errors = re.findall(r'http_requests_total\{[^}]*status="500"[^}]*\} ([0-9.e+]+)', metrics)
        assert all(float(v) == 0 for v in errors), f"{service} answered 500: {errors}"
