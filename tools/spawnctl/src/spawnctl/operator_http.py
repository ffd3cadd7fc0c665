"""What every spawnctl command that talks to a service's operator API shares: the token, the services'
addresses, and turning an answer into a clear message and exit code."""

from __future__ import annotations

import getpass
import os

import httpx
import typer
from rich.console import Console

EXIT_REFUSED = 1
EXIT_UNREACHABLE = 3

SERVICE_URLS: dict[str, tuple[str, str]] = {
    "order-service": ("ORDER_SERVICE_URL", "http://127.0.0.1:8001"),
    "payment-service": ("PAYMENT_SERVICE_URL", "http://127.0.0.1:8002"),
    "provisioner": ("PROVISIONER_URL", "http://127.0.0.1:8003"),
    "status-service": ("STATUS_SERVICE_URL", "http://127.0.0.1:8004"),
}
"""Each service's operator API address: the environment variable that overrides it, and the default."""


def service_url(service: str) -> str:
    variable, default = SERVICE_URLS[service]
    return os.environ.get(variable) or default


def operator_token(explicit: str | None) -> str:
    """``--token`` / ``SPAWNCTL_TOKEN``, or a five-minute operator token minted from ``JWT_SECRET``."""
    if explicit:
        return explicit
    # Imported here: the kit's auth module brings FastAPI, which every other spawnctl command can do without.
    from spawnpoint_kit.auth import OPERATOR_ROLE, mint_token
    from spawnpoint_kit.settings import CommonSettings

    settings = CommonSettings()
    return mint_token(
        settings.jwt_secret.get_secret_value(),
        sub=f"spawnctl:{getpass.getuser()}",
        roles=(OPERATOR_ROLE,),
        ttl_seconds=300,
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
    )


def fail(console: Console, message: str, code: int) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def detail(response: httpx.Response) -> str:
    try:
        found = response.json().get("detail")
    except (ValueError, AttributeError):
        found = None
    return str(found) if found is not None else response.text[:200]


def refusal(service: str, response: httpx.Response) -> tuple[str, int] | None:
    """A message and exit code for an answer that is not a success, or None."""
    if response.status_code in (401, 403):
        return (
            f"{service} refused the token ({response.status_code}: {detail(response)}). "
            "Use an operator token (--token / SPAWNCTL_TOKEN) or the service's JWT_SECRET.",
            EXIT_REFUSED,
        )
    if response.status_code >= 500:
        return f"{service} cannot answer now ({response.status_code}: {detail(response)})", EXIT_UNREACHABLE
    if response.status_code >= 300:
        return f"unexpected answer {response.status_code}: {detail(response)}", EXIT_REFUSED
    return None
