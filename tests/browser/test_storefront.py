"""The reference storefront in a real browser (Debian's Chromium, headless) against a whole stack: booking,
the embedded Checkout of the Stripe stand-in, the return page following the order live, and "my servers".

Each test is what a customer relies on, seen only through the page (plus the stand-ins' controls to make
the panel fail or a delayed payment settle, and the services' APIs to check what was made)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
import stripe
from playwright.sync_api import BrowserContext, FrameLocator, Page, Route, expect

from .conftest import Shop, eventually_sync

pytestmark = pytest.mark.integration

ORDER_URL = re.compile(r"/(en|de)/checkout/([0-9a-f-]{36})$")
RETURN_URL = re.compile(r"/(en|de)/checkout/return\?session_id=(cs_[A-Za-z0-9_]+)$")


def sign_in(page: Page, locale: str = "en", *, name: str = "Alex Player") -> str:
    email = f"player-{uuid.uuid4().hex[:8]}@example.test"
    page.goto(f"/{locale}/sign-in")
    page.locator("#signin-name").fill(name)
    page.locator("#signin-email").fill(email)
    page.locator("#signin button[type=submit]").click()
    page.wait_for_url(f"**/{locale}/")
    return email


def token_of(page: Page) -> str:
    token: str = page.evaluate("localStorage.getItem('spawnpoint.token')")
    assert token
    return token


def fill_booking(
    page: Page,
    *,
    game: str = "Minecraft (Paper)",
    plan: str = "Starter",
    period: str = "once-30d",
    server_name: str = "Browser world",
    settings: dict[str, str] | None = None,
) -> None:
    page.get_by_label(game).check()
    page.get_by_label(plan, exact=False).first.check()
    page.locator("#period").select_option(period)
    page.locator("#server_name").fill(server_name)
    for key, value in (settings or {}).items():
        page.locator(f"#setting-{key}").fill(value)


def book(page: Page, **choice: Any) -> str:
    """Fill in the booking form and go to the checkout; returns the order id."""
    fill_booking(page, **choice)
    page.locator("#book-submit").click()
    page.wait_for_url(ORDER_URL)
    match = ORDER_URL.search(page.url)
    assert match is not None
    return match.group(2)


def checkout_frame(page: Page) -> FrameLocator:
    frame = page.frame_locator("iframe[name=embedded-checkout]")
    expect(frame.locator("#pay")).to_be_visible()
    return frame


def pay(page: Page, method: str) -> None:
    frame = checkout_frame(page)
    frame.get_by_label(method, exact=False).check()
    frame.locator("#submit").click()


def session_of(page: Page) -> str:
    page.wait_for_url(RETURN_URL)
    match = RETURN_URL.search(page.url)
    assert match is not None
    return match.group(2)


def slow_install(shop: Shop, order_id: str, seconds: float = 5) -> None:
    """This order's server installs for ``seconds`` (the module's default is 2)."""
    shop.control("panel-fake", "POST", "/_fake/install", {"external_id": order_id, "outcome": "ok", "seconds": seconds})


def my_orders(shop: Shop, token: str) -> list[dict[str, Any]]:
    answer = shop.http.get(shop.url("status-service", "/orders"), headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    orders: list[dict[str, Any]] = answer.json()["orders"]
    return orders


def test_a_whole_order_from_booking_to_connect(page: Page, shop: Shop, screenshot: Any) -> None:
    sign_in(page)
    expect(page.get_by_role("heading", name="Book your game server")).to_be_visible()
    fill_booking(page, plan="Standard", period="monthly", settings={"MINECRAFT_VERSION": "1.21.1"})
    monthly = "€15.00 per month (renews automatically)"
    expect(page.locator("[data-plan-price=standard]")).to_have_text(f"Standard · {monthly}")
    expect(page.locator("#price")).to_have_text(f"Total: {monthly}")
    screenshot(page, "booking")
    page.locator("#book-submit").click()
    page.wait_for_url(ORDER_URL)
    order_id = ORDER_URL.search(page.url).group(2)  # type: ignore[union-attr]
    slow_install(shop, order_id)  # long enough that "Creating your server" is seen on any machine

    frame = checkout_frame(page)
    expect(page.locator("#summary")).to_contain_text("Browser world")
    expect(page.locator("#summary-total")).to_have_text(monthly)
    # The stand-in's Checkout says how often the subscription bills, as Stripe's does.
    expect(frame.locator("#headline")).to_have_text("€15.00 per month")
    expect(frame.locator("#items")).to_contain_text("€15.00 per month")
    expect(frame.locator("#total-label")).to_have_text("Total due today")
    expect(frame.locator("#total")).to_have_text("€15.00")
    expect(frame.locator("#submit")).to_have_text("Subscribe · €15.00 per month")
    screenshot(page, "checkout")
    pay(page, "4242")

    session_of(page)
    status = page.locator("#status")
    expect(status).to_have_attribute("data-state", "creating")
    expect(page.locator("#state")).to_have_text("Creating your server")
    expect(page.locator("#phase-text")).not_to_be_empty()
    expect(status).to_have_attribute("data-state", "ready")
    expect(page.locator("#state")).to_have_text("Server ready")
    connect = page.get_by_role("link", name="Connect")
    expect(connect).to_be_visible()
    expect(page.locator("#server-title")).to_have_text("Browser world")
    expect(page.locator("#server-what")).to_have_text(f"Minecraft (Paper) · Standard · {monthly}")
    screenshot(page, "server-ready")

    [server] = shop.control("panel-fake", "GET", f"/_fake/servers?external_id={order_id}")["servers"]
    assert connect.get_attribute("href") == f"/gameserver/{server['identifier']}"
    target = shop.http.get(shop.url("storefront", f"/gameserver/{server['identifier']}"))
    assert target.status_code == 302
    assert target.headers["location"] == shop.url("panel-fake", f"/server/{server['identifier']}")

    page.get_by_role("link", name="My servers").click()
    row = page.locator(f"tr[data-order-id='{order_id}']")
    expect(row).to_contain_text("Browser world")
    expect(row).to_contain_text("Server ready")
    # The monthly rental: cancel it, take the cancellation back, and change the card in Stripe's portal.
    row.get_by_role("button", name="Cancel").click()
    expect(row).to_contain_text("Cancelled: runs until")
    row.get_by_role("button", name="Undo cancellation").click()
    expect(row).to_contain_text("Cancellation undone")
    # The stand-in's portal session has Stripe's kind of address; the browser is stopped on its way there.
    page.route("https://billing.stripe.com/**", lambda route: route.fulfill(status=200, body="portal"))
    row.get_by_role("button", name="Change card").click()
    page.wait_for_url("https://billing.stripe.com/p/session/**")


def test_the_plan_prices_follow_the_billing_period(page: Page, shop: Shop, screenshot: Any) -> None:
    """Every plan line, the period picker and the total show the price for the period picked: picking
    "monthly" turns each plan's line into its monthly price, and switching plans keeps the period."""
    catalog = shop.http.get(shop.url("order-service", "/catalog")).json()
    game = next(g for g in catalog["games"] if g["name"] == "Minecraft (Paper)")
    plans = {p["id"]: p for p in catalog["plans"] if p["id"] in game["plans"]}
    sign_in(page)
    page.get_by_label("Minecraft (Paper)").check()
    period = page.locator("#period")
    first = plans[game["plans"][0]]
    expect(period).to_have_value(first["default_period"])
    assert period.locator("option").evaluate_all("os => os.map(o => o.value)") == [p["id"] for p in first["periods"]]
    for plan_id in plans:
        expect(page.locator(f"[data-plan-price={plan_id}]")).to_contain_text("once, for 30 days (paid once)")

    def each_plan_shows(period_id: str, words: str) -> None:
        for plan_id, plan in plans.items():
            price = next(p for p in plan["periods"] if p["id"] == period_id)
            euros = f"€{price['amount'] / 100:,.2f}"
            expect(page.locator(f"[data-plan-price={plan_id}]")).to_have_text(f"{plan['name']} · {euros} {words}")

    period.select_option("monthly")
    each_plan_shows("monthly", "per month (renews automatically)")
    expect(page.locator("#price")).to_have_text("Total: €5.00 per month (renews automatically)")
    page.locator("#plan-pro").check()
    expect(period).to_have_value("monthly")  # the period picked stays when the plan changes
    expect(page.locator("#price")).to_have_text("Total: €30.00 per month (renews automatically)")
    period.select_option("quarterly")
    each_plan_shows("quarterly", "every 3 months (renews automatically)")
    expect(page.locator("#price")).to_have_text("Total: €84.00 every 3 months (renews automatically)")
    screenshot(page, "quarterly")


def test_the_stand_ins_checkout_words_a_trial_and_its_interval(page: Page, shop: Shop, screenshot: Any) -> None:
    """A subscription with a trial, as Stripe's Checkout shows it: the trial first, "then" the price per
    interval, nothing due today."""
    sdk = stripe.StripeClient("sk_test_browser", base_addresses={"api": shop.url("stripe-fake")})
    product = sdk.v1.products.create({"name": "Game server Standard"})
    price = sdk.v1.prices.create(
        {
            "product": product.id,
            "currency": "eur",
            "unit_amount": 4200,
            "recurring": {"interval": "month", "interval_count": 3},
        }
    )
    session = sdk.v1.checkout.sessions.create(
        {
            "mode": "subscription",
            "ui_mode": "embedded_page",
            "line_items": [{"price": price.id, "quantity": 1}],
            "subscription_data": {"trial_period_days": 14},
            "return_url": f"{shop.storefront}/checkout/return?session_id={{CHECKOUT_SESSION_ID}}",
        }
    )
    page.goto(shop.url("stripe-fake", f"/embedded/checkout#{session.client_secret}"))
    expect(page.locator("#headline")).to_have_text("14 days free")
    expect(page.locator("#then")).to_have_text("then €42.00 every 3 months")
    expect(page.locator("#items")).to_contain_text("€42.00 every 3 months")
    expect(page.locator("#total-label")).to_have_text("Total due today")
    expect(page.locator("#total")).to_have_text("€0.00")
    expect(page.locator("#submit")).to_have_text("Start trial")
    screenshot(page, "trial")


def test_a_declined_card_stays_on_checkout_with_the_decline(page: Page, shop: Shop, screenshot: Any) -> None:
    sign_in(page)
    order_id = book(page)
    pay(page, "0002")
    frame = checkout_frame(page)
    expect(frame.get_by_role("alert")).to_have_text("Your card was declined.")
    assert ORDER_URL.search(page.url) is not None  # still on the checkout
    screenshot(page, "declined")
    [session] = shop.control("stripe-fake", "GET", f"/_fake/sessions?order_id={order_id}")["data"]
    assert session["status"] == "open"

    # The same checkout then takes a card that asks for 3-D Secure: the bank's step, then the return page.
    pay(page, "3184")
    frame.get_by_role("button", name="Complete authentication").click()
    session_of(page)
    expect(page.locator("#status")).to_have_attribute("data-state", re.compile("creating|ready"))


def test_a_delayed_payment_waits_for_payment_until_it_settles(page: Page, shop: Shop, screenshot: Any) -> None:
    sign_in(page)
    book(page)
    pay(page, "succeeds later")
    session_id = session_of(page)
    expect(page.locator("#status")).to_have_attribute("data-state", "waiting")
    expect(page.locator("#state")).to_have_text("Waiting for payment")
    expect(page.locator("#status")).to_have_attribute("data-phase", "payment_processing")
    screenshot(page, "waiting")
    shop.control("stripe-fake", "POST", f"/_fake/sessions/{session_id}/async", {"result": "succeeded"})
    expect(page.locator("#status")).to_have_attribute("data-state", "ready")


def test_an_install_failure_shows_server_error_with_its_reason_in_both_languages(
    page: Page, shop: Shop, screenshot: Any
) -> None:
    sign_in(page)
    order_id = book(page)
    shop.control("panel-fake", "POST", "/_fake/install", {"external_id": order_id, "outcome": "failed", "seconds": 1})
    pay(page, "4242")
    session_of(page)
    expect(page.locator("#status")).to_have_attribute("data-state", "error")
    expect(page.locator("#state")).to_have_text("Server error")
    expect(page.locator("#state-detail")).to_contain_text("the installation of your server failed")
    screenshot(page, "server-error")
    page.goto(f"/de/orders/{order_id}")
    expect(page.locator("#state")).to_have_text("Serverfehler")
    expect(page.locator("#state-detail")).to_contain_text("Die Installation deines Servers ist fehlgeschlagen")
    screenshot(page, "server-error-de")


def test_someone_elses_order_is_server_not_found(page: Page, shop: Shop, screenshot: Any) -> None:
    owner = shop.http.post(
        shop.url("storefront", "/dev/sign-in"), json={"name": "Owner", "email": "owner@example.test"}
    )
    owner_token = owner.json()["access_token"]
    placed = shop.http.post(
        shop.url("order-service", "/orders"),
        headers={"Authorization": f"Bearer {owner_token}", "Idempotency-Key": str(uuid.uuid4())},
        json={"game_id": "minecraft-paper", "plan_id": "starter", "server_name": "Not yours"},
    )
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["id"]
    eventually_sync(
        lambda: (
            shop.http.get(
                shop.url("status-service", f"/orders/{order_id}/status"),
                headers={"Authorization": f"Bearer {owner_token}"},
            ).status_code
            == 200
        ),
        what="status-service knows the order",
    )
    sign_in(page, name="Somebody Else")
    page.goto(f"/en/orders/{order_id}")
    expect(page.locator("#status")).to_have_attribute("data-state", "not-found")
    expect(page.locator("#state")).to_have_text("Server not found")
    screenshot(page, "not-found")


def test_the_page_keeps_updating_by_polling_when_the_stream_is_cut_mid_install(
    page: Page, shop: Shop, screenshot: Any
) -> None:
    sign_in(page)
    order_id = book(page)
    slow_install(shop, order_id, 8)  # so the stream is cut while it runs
    pay(page, "4242")
    session_of(page)
    status = page.locator("#status")
    expect(status).to_have_attribute("data-transport", "stream")
    expect(status).to_have_attribute("data-phase", "installing")
    try:
        cut = shop.control("storefront", "POST", "/_storefront/streams/cut?block=true")
        assert cut["cut"] >= 1
        expect(status).to_have_attribute("data-transport", "polling")
        expect(status).to_have_attribute("data-state", "ready")
        expect(page.locator("#transport")).to_have_text("Updating every few seconds")
        screenshot(page, "ready-by-polling")
    finally:
        shop.control("storefront", "POST", "/_storefront/streams/allow")


def test_a_422_from_the_api_lands_on_the_right_field(page: Page, shop: Shop, screenshot: Any) -> None:
    """The panel's egg is stricter than the catalog (an administrator edited it): the page's own checks
    pass, order-service answers 422 for the setting, and the page puts it on that field."""
    shop.control("panel-fake", "PATCH", "/_fake/eggs/3/variables/WORLD_NAME", {"rules": "required|alpha_dash|max:4"})
    sign_in(page)
    fill_booking(page, game="Valheim", plan="Standard", settings={"WORLD_NAME": "bad name!", "SERVER_PASS": "abc"})
    sent: list[str] = []
    page.on("request", lambda request: sent.append(request.url) if "/api/order/orders" in request.url else None)
    page.locator("#book-submit").click()
    field = page.locator("#setting-WORLD_NAME")
    # First the page's own checks (the catalog's pattern): nothing is sent.
    expect(page.locator("#setting-WORLD_NAME-error")).to_contain_text("not in the expected format")
    expect(page.locator("#setting-SERVER_PASS-error")).to_contain_text("At least 5 characters")
    expect(field).to_be_focused()
    assert sent == []
    field.fill("Midgard")
    page.locator("#setting-SERVER_PASS").fill("secret123")
    page.locator("#book-submit").click()
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#setting-WORLD_NAME-error")).to_contain_text("Not accepted")
    expect(field).to_be_focused()
    expect(page.locator("#server_name")).not_to_have_attribute("aria-invalid", "true")
    assert page.url.endswith("/en/")  # no order, still booking
    screenshot(page, "field-error")


def test_a_double_submitted_booking_and_a_retry_after_a_network_error_make_one_order(
    page: Page, context: BrowserContext, shop: Shop, screenshot: Any
) -> None:
    sign_in(page)
    token = token_of(page)
    fill_booking(page, server_name="Only once")
    keys: list[str] = []

    def lose_the_first_answer(route: Route) -> None:
        keys.append(route.request.headers["idempotency-key"])
        if len(keys) == 1:
            route.fetch()  # order-service takes the order...
            route.abort("connectionreset")  # ...and the answer is lost on the way back
        else:
            route.continue_()

    page.route("**/api/order/orders", lose_the_first_answer)
    page.locator("#book-submit").dblclick()
    expect(page.locator("#form-status")).to_contain_text("The connection failed")
    screenshot(page, "network-error")
    page.locator("#book-submit").click()
    page.wait_for_url(ORDER_URL)
    assert len(set(keys)) == 1 and len(keys) >= 2  # every attempt carried the submission's one key

    def one_order() -> list[dict[str, Any]] | None:
        orders = my_orders(shop, token)
        return orders if orders else None

    orders = eventually_sync(one_order, what="the order in the customer's list")
    assert [o["server_name"] for o in orders] == ["Only once"]


def test_the_german_pages_show_german_text_for_every_state(browser: Any, shop: Shop, screenshot: Any) -> None:
    context = browser.new_context(viewport={"width": 360, "height": 780}, locale="de-DE", base_url=shop.storefront)
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        sign_in(page, "de", name="Jürgen")
        expect(page.get_by_role("heading", name="Buche deinen Gameserver")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # fits 360 px
        fill_booking(page, server_name="Deutsche Welt")
        expect(page.locator("#book-submit")).to_have_text("Weiter zur Zahlung")
        page.locator("#book-submit").click()
        page.wait_for_url(ORDER_URL)
        slow_install(shop, ORDER_URL.search(page.url).group(2))  # type: ignore[union-attr]
        expect(page.get_by_role("heading", name="Zahlung")).to_be_visible()
        pay(page, "succeeds later")
        session_id = session_of(page)
        assert "/de/checkout/return" in page.url  # the return page follows the customer's language
        expect(page.locator("#state")).to_have_text("Warten auf Zahlung")
        screenshot(page, "warten")
        shop.control("stripe-fake", "POST", f"/_fake/sessions/{session_id}/async", {"result": "succeeded"})
        expect(page.locator("#state")).to_have_text("Dein Server wird erstellt")
        expect(page.locator("#state")).to_have_text("Server bereit")
        expect(page.get_by_role("link", name="Verbinden")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        screenshot(page, "bereit")
        page.goto(f"/de/orders/{uuid.uuid4()}")
        expect(page.locator("#state")).to_have_text("Server nicht gefunden")
        page.get_by_role("link", name="Meine Server").click()
        expect(page.locator("#servers")).to_contain_text("Server bereit")
        screenshot(page, "meine-server")
    finally:
        context.close()


def test_the_gateway_forwards_each_api_on_the_same_origin(shop: Shop) -> None:
    owner = shop.http.post(shop.url("storefront", "/dev/sign-in"), json={"name": "P", "email": "proxy@example.test"})
    token = owner.json()["access_token"]
    with httpx.Client(base_url=shop.storefront, timeout=10) as http:
        catalog = http.get("/api/order/catalog", headers={"Connection": "close, X-Secret", "X-Secret": "hop"})
        assert catalog.status_code == 200 and catalog.json()["games"]
        mine = http.get("/api/status/orders", headers={"Authorization": f"Bearer {token}"})
        assert mine.status_code == 200 and mine.json() == {"orders": [], "next_cursor": None}
        assert http.get("/api/nowhere/x").status_code == 404


def test_the_stripe_js_stand_in_mounts_unmounts_and_destroys(page: Page, screenshot: Any) -> None:
    """The part of Stripe.js the page relies on: one embedded Checkout at a time, unmount and mount again,
    destroy, and the older ``initEmbeddedCheckout`` name."""
    sign_in(page)
    book(page)
    checkout_frame(page)
    frames = page.locator("#checkout iframe")
    expect(frames).to_have_count(1)
    second = page.evaluate(
        """async () => {
          try { await Stripe("pk_test_x").initEmbeddedCheckout({ clientSecret: "cs_test_x_secret_y" }); return "made"; }
          catch (error) { return error.name; }
        }"""
    )
    assert second == "IntegrationError"  # one embedded Checkout per page, as Stripe.js enforces
    page.evaluate("window.spawnpointCheckout.unmount()")
    expect(frames).to_have_count(0)
    page.evaluate("window.spawnpointCheckout.mount('#checkout')")
    expect(checkout_frame(page).locator("#total")).not_to_be_empty()
    screenshot(page, "mounted-again")
    again = page.evaluate(
        """async () => {
          window.spawnpointCheckout.destroy();
          const next = await Stripe("pk_test_x").initEmbeddedCheckout({ clientSecret: "cs_test_x_secret_y" });
          next.destroy();
          return typeof next.mount;
        }"""
    )
    assert again == "function"
    expect(frames).to_have_count(0)
