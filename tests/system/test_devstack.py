"""The development stack launcher refuses to report "up" for processes that are not its own."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack import PortTaken, Stack, StackConfig, cmd_up, port_is_free

pytestmark = pytest.mark.unit


class _AlwaysReady(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def impostor() -> Iterator[int]:
    """Something else listening on a port, answering 200 to every readiness check."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _AlwaysReady)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_make_up_refuses_a_port_another_process_answers_on(
    impostor: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Finding 5: every service exited with "address already in use", the impostor answered, "up" was printed."""
    config = StackConfig.for_tests("devstacktest", tmp_path)
    config.ports["order-service"] = impostor
    assert not port_is_free(impostor)
    with pytest.raises(PortTaken, match=f"port {impostor} \\(order-service\\) already in use"):
        Stack(config).start()
    assert cmd_up(config) == 1
    printed = capsys.readouterr()
    assert "already in use" in printed.err and "is up" not in printed.out
    assert not list(tmp_path.glob("*.log")), "nothing was started"
