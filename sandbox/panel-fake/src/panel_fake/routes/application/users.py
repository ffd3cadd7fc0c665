"""``/api/application/users``: lookups, create, update, delete.

Rules follow ``User::$validationRules`` order (email, external_id, username, …), which is why
a repeated create reports email, external id, then username. Email and username are unique
case-insensitively; ``external_id`` is unique only through the validation rule. The username
rule object reports ``p_username`` with its message's embedded newline and indentation.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from panel_fake import errors, php
from panel_fake.auth import READ, WRITE
from panel_fake.pipeline import ApiContext
from panel_fake.router import Route
from panel_fake.routes.common import apply_filters, apply_sort, paginate, validate_or_raise
from panel_fake.store import PanelState, User, new_uuid, utcnow
from panel_fake.transformers import user_item
from panel_fake.validation import CustomRule, RuleSpec, compile_pcre

PREFIX = "/api/application/users"
USERNAME_REGEX = r"/^[a-z0-9]([\w\.-]+)[a-z0-9]$/"
USERNAME_MESSAGE = (
    "The :attribute must start and end with alpha-numeric characters and\n"
    "                contain only letters, numbers, dashes, underscores, and periods."
)
LANGUAGES = ("en",)
DELETE_WITH_SERVERS = (
    "Cannot delete a user with active servers attached to their account. Please delete their servers before continuing."
)

USER_FILTERS: dict[str, Any] = {
    "email": lambda u: u.email,
    "uuid": lambda u: u.uuid,
    "username": lambda u: u.username,
    "external_id": lambda u: u.external_id,
}
USER_SORTS: dict[str, Any] = {"id": lambda u: u.id, "uuid": lambda u: u.uuid}


def _username_passes(value: Any) -> bool:
    if isinstance(value, dict | list):
        return False
    return compile_pcre(USERNAME_REGEX).search(php.to_string(value).lower()) is not None


def user_rules(
    state: PanelState, pelican: bool, ignore: int | None = None
) -> tuple[list[tuple[str, RuleSpec]], dict[str, str]]:
    """``StoreUserRequest::rules`` (``UpdateUserRequest`` ignores the user itself in ``unique``)."""

    def unique(getter: Any) -> CustomRule:
        def check(value: Any) -> bool:
            wanted = php.to_string(value).casefold()
            return not any(
                user.id != ignore and (current := getter(user)) is not None and current.casefold() == wanted
                for user in state.users.values()
            )

        return CustomRule("unique", check, presence=True)

    length = "between:1,255" if pelican else "between:1,191"
    max_length = "max:255" if pelican else "max:191"
    username_rule = CustomRule("p_username", _username_passes, message=USERNAME_MESSAGE)
    languages = "in:" + ",".join(LANGUAGES)
    rules: list[tuple[str, RuleSpec]] = [
        ("email", ["required", "email", length, unique(lambda u: u.email)]),
        ("external_id", ["sometimes", "nullable", "string", max_length, unique(lambda u: u.external_id)]),
    ]
    if pelican:
        rules += [
            ("is_managed_externally", ["boolean"]),
            ("username", ["required", length, unique(lambda u: u.username), username_rule]),
            ("password", ["sometimes", "nullable", "string"]),
            ("language", ["string", languages]),
            ("timezone", ["string"]),
        ]
    else:
        rules += [
            ("username", ["required", length, unique(lambda u: u.username), username_rule]),
            ("password", ["sometimes", "nullable", "string"]),
            ("root_admin", ["boolean"]),
            ("language", ["string", languages]),
            ("first_name", ["required", "string", "between:1,191"]),
            ("last_name", ["required", "string", "between:1,191"]),
        ]
    attributes = {"external_id": "Third Party Identifier"}
    if not pelican:
        attributes["root_admin"] = "Root Administrator Status"
    return rules, attributes


def _apply(user: User, data: dict[str, Any], pelican: bool, creating: bool) -> None:
    user.email = php.to_string(data.get("email"))
    user.username = php.to_string(data.get("username")).lower()
    if "external_id" in data or creating:
        external_id = data.get("external_id")
        user.external_id = external_id if isinstance(external_id, str) else None
    if data.get("language") is not None:
        user.language = php.to_string(data["language"])
    if data.get("password") is not None:
        user.has_password = True
    if pelican:
        if data.get("timezone") is not None:
            user.timezone = php.to_string(data["timezone"])
        if data.get("is_managed_externally") is not None:
            user.is_managed_externally = php.truthy(data["is_managed_externally"])
    else:
        user.first_name = php.to_string(data.get("first_name"))
        user.last_name = php.to_string(data.get("last_name"))
        if data.get("root_admin") is not None:
            user.root_admin = php.truthy(data["root_admin"])
    user.updated_at = utcnow()


async def list_users(ctx: ApiContext) -> Response:
    users = sorted(ctx.runtime.state.users.values(), key=lambda u: u.id)
    users = apply_filters(ctx, users, USER_FILTERS)
    users = apply_sort(ctx, users, USER_SORTS)
    includes = ctx.includes()
    view = ctx.view
    return ctx.json(paginate(ctx, users, lambda u: user_item(view, u, includes)))


async def view_user(ctx: ApiContext) -> Response:
    assert ctx.user is not None
    return ctx.json(user_item(ctx.view, ctx.user, ctx.includes()))


async def view_external_user(ctx: ApiContext) -> Response:
    external_id = ctx.params["external_id"]
    ctx.user_external_id = external_id
    user = ctx.runtime.state.find_user_by_external(external_id)
    if user is None:
        raise errors.model_not_found()
    return ctx.json(user_item(ctx.view, user, ctx.includes()))


async def create_user(ctx: ApiContext) -> Response:
    state = ctx.runtime.state
    data = ctx.input
    if isinstance(data.get("external_id"), str):
        ctx.user_external_id = data["external_id"]
    rules, attributes = user_rules(state, ctx.pelican)
    validate_or_raise(data, rules, attributes=attributes)
    now = utcnow()
    user = User(
        id=state.next_id("users"),
        uuid=new_uuid(),
        username="",
        email="",
        first_name="",
        last_name="",
        created_at=now,
        updated_at=now,
    )
    _apply(user, data, ctx.pelican, creating=True)
    state.add_user(user)
    payload = user_item(ctx.view, user, ctx.includes())
    payload["meta"] = {"resource": f"{ctx.base_url}{PREFIX}/{user.id}"}
    return ctx.json(payload, 201)


async def update_user(ctx: ApiContext) -> Response:
    """``PATCH``: the same rules as create (required fields stay required), unique ignoring itself."""
    assert ctx.user is not None
    rules, attributes = user_rules(ctx.runtime.state, ctx.pelican, ignore=ctx.user.id)
    validate_or_raise(ctx.input, rules, attributes=attributes)
    _apply(ctx.user, ctx.input, ctx.pelican, creating=False)
    return ctx.json(user_item(ctx.view, ctx.user, ctx.includes()))


async def delete_user(ctx: ApiContext) -> Response:
    assert ctx.user is not None
    state = ctx.runtime.state
    if any(server.owner_id == ctx.user.id for server in state.servers.values()):
        raise errors.display("DisplayException", DELETE_WITH_SERVERS)
    del state.users[ctx.user.id]
    for token in [t for t, key in state.api_keys.items() if key.user_id == ctx.user.id]:
        del state.api_keys[token]
    return ctx.no_content()


ROUTES: list[Route] = [
    Route("GET", PREFIX, list_users, resource="users", permission=READ),
    Route("GET", PREFIX + "/{user}", view_user, resource="users", permission=READ),
    Route("GET", PREFIX + "/external/{external_id}", view_external_user, resource="users", permission=READ),
    Route("POST", PREFIX, create_user, resource="users", permission=WRITE),
    Route("PATCH", PREFIX + "/{user}", update_user, resource="users", permission=WRITE),
    Route("DELETE", PREFIX + "/{user}", delete_user, resource="users", permission=WRITE),
]
