"""The panel's exceptions and how its ``Handler`` renders them.

Every error the fake returns goes through :class:`PanelError`, so the envelope is uniform:
``{"errors": [{"code", "status" (a string), "detail", "meta"?}]}``. ``render_as`` records how
Laravel answers a client that did not send ``Accept: application/json``: validation and
``DisplayException``-class errors redirect back, authentication failures redirect to the
login page, and everything else becomes an HTML error page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Literal

from panel_fake.validation import Failure

GENERIC_DETAIL = "An unexpected error was encountered while processing this request, please try again."
MODEL_NOT_FOUND = "The requested resource could not be found on the server."
NO_VIABLE_NODES = "No nodes satisfying the requirements specified for automatic deployment could be found."
NO_VIABLE_ALLOCATIONS = "No allocations satisfying the requirements for automatic deployment were found."
TOO_MANY_PORTS = "Adding more than 1000 ports in a single range at once is not supported."
WINGS_UNREACHABLE = "Could not establish a connection to the machine running this server. Please try again."
NOT_ADMIN = "This account does not have permission to access the API."
UNAUTHORIZED_ACTION = "This action is unauthorized."
APPLICATION_KEY_ON_CLIENT = (
    "You are attempting to use an application API key on an endpoint that requires a client API key."
)
NOT_INSTALLED = "This server has not yet completed its installation process, please try again later."
UNSUPPORTED_STATE = "This server is currently in an unsupported state, please try again later."
SUSPENDED_STATE = "This server is currently suspended and the functionality requested is unavailable."
NODE_MAINTENANCE = (
    "The node of this server is currently under maintenance and the functionality requested is unavailable."
)
RESTORING_BACKUP = "This server is currently restoring from a backup, please try again later."
TRANSFERRING = "This server is currently being transferred to a new machine, please try again later."

RenderAs = Literal["validation", "auth", "display", "http"]


@dataclass
class PanelError(Exception):
    """An error response, in the panel's envelope."""

    status: int
    code: str
    detail: str
    render_as: RenderAs = "http"
    headers: dict[str, str] = field(default_factory=dict)
    failures: Sequence[Failure] = ()

    def __post_init__(self) -> None:
        super().__init__(self.detail)

    def error_objects(self) -> list[dict[str, Any]]:
        """One object per failed message for validation errors, else a single object."""
        if self.failures:
            return [
                {
                    "code": self.code,
                    "status": str(self.status),
                    "detail": failure.message,
                    "meta": {"source_field": failure.attribute, "rule": failure.rule},
                }
                for failure in self.failures
            ]
        return [{"code": self.code, "status": str(self.status), "detail": self.detail}]

    def body(self) -> dict[str, Any]:
        return {"errors": self.error_objects()}


def validation_failed(failures: Sequence[Failure]) -> PanelError:
    """422 ``ValidationException`` with one error object per failure."""
    first = failures[0].message if failures else "The given data was invalid."
    return PanelError(422, "ValidationException", first, render_as="validation", failures=tuple(failures))


def model_not_found() -> PanelError:
    return PanelError(404, "NotFoundHttpException", MODEL_NOT_FOUND)


def route_not_found(path: str) -> PanelError:
    trimmed = path.strip("/") or "/"
    return PanelError(404, "NotFoundHttpException", f"The route {trimmed} could not be found.")


def method_not_allowed(method: str, path: str, allowed: Sequence[str]) -> PanelError:
    trimmed = path.strip("/") or "/"
    detail = f"The {method} method is not supported for route {trimmed}. Supported methods: {', '.join(allowed)}."
    return PanelError(405, "MethodNotAllowedHttpException", detail, headers={"Allow": ", ".join(allowed)})


def unauthenticated() -> PanelError:
    return PanelError(401, "AuthenticationException", "Unauthenticated.", render_as="auth")


def access_denied(detail: str) -> PanelError:
    return PanelError(403, "AccessDeniedHttpException", detail)


def bad_json(reason: str) -> PanelError:
    return PanelError(
        400,
        "BadRequestHttpException",
        f"The JSON data passed in the request appears to be malformed: {reason}",
    )


def throttled(headers: dict[str, str]) -> PanelError:
    return PanelError(429, "ThrottleRequestsException", "Too Many Attempts.", headers=headers)


def display(code: str, detail: str, status: int = 400) -> PanelError:
    """A ``DisplayException`` subclass: its message is shown, and it redirects without JSON."""
    return PanelError(status, code, detail, render_as="display")


def conflict(code: str, detail: str) -> PanelError:
    return PanelError(409, code, detail)


def generic(code: str, status: int = 500) -> PanelError:
    """A non-HTTP exception: the detail is always the generic sentence."""
    return PanelError(status, code, GENERIC_DETAIL)


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def reason_phrase(status: int) -> str:
    """The standard reason phrase for a status code."""
    return _reason(status)
