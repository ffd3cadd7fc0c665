"""The e-mail a customer reads: Jinja2 templates per kind and locale, Babel for money and dates.

Each kind has one template per locale, ``templates/<locale>/<kind>.txt``, with two blocks: ``subject``
and ``body`` (plain text, paragraphs separated by blank lines). The HTML part is ``templates/layout.html``
(autoescaped) laid around the same paragraphs, with a button for the e-mail's main link, so the two parts
never say different things. A locale without templates falls back to English.

Filters: ``money(amount, currency)`` (minor units, in the locale's currency format: ``15,00 €`` in German,
``€15.00`` in English) and ``when(iso)`` / ``day(iso)`` (in the customer's time zone, in the locale's words).
Templates see only the facts the notice and the contact list (``notices.py``): no setting, secret or
token is ever in their context. Customer e-mails open with ``Hello {customer_name},`` (``Hallo …,``) when
the order has the customer's display name (the token's ``name`` claim) and ``Hello,`` when it has none.
Like every fact it is plain text in the text part and escaped in the HTML part (``layout.html`` is
autoescaped; the ``.txt`` templates are not, so a name is never shown as ``&amp;``-text in plain text).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_date, format_datetime, format_time
from babel.numbers import format_currency, get_currency_precision
from jinja2 import Environment, PackageLoader, StrictUndefined, Template, TemplateNotFound, select_autoescape

LOCALES = ("en", "de")
DEFAULT_LOCALE = "en"


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    locale: str


@cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("notification_service", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return env


def supported_locale(locale: str | None) -> str:
    """``de-AT`` -> ``de``; anything without templates -> English."""
    base = (locale or DEFAULT_LOCALE).split("-")[0].lower()
    return base if base in LOCALES else DEFAULT_LOCALE


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def money(amount: int | None, currency: str | None, locale: str) -> str:
    if amount is None or not currency:
        return ""
    code = currency.upper()
    value = Decimal(amount).scaleb(-get_currency_precision(code))
    return str(format_currency(value, code, locale=locale))


def _moment(value: str | datetime | None) -> datetime | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def when(value: str | datetime | None, locale: str, zone: ZoneInfo) -> str:
    moment = _moment(value)
    if moment is None:
        return ""
    local = moment.astimezone(zone)
    date = format_date(local, "long", locale=locale)
    time = format_time(moment, "short", tzinfo=zone, locale=locale)
    return f"{date}, {time} {format_datetime(moment, 'z', tzinfo=zone, locale=locale)}"


def day(value: str | datetime | None, locale: str, zone: ZoneInfo) -> str:
    moment = _moment(value)
    if moment is None:
        return ""
    return str(format_date(moment.astimezone(zone), "long", locale=locale))


def _template(locale: str, kind: str) -> tuple[Template, str]:
    env = _environment()
    try:
        return env.get_template(f"{locale}/{kind}.txt"), locale
    except TemplateNotFound:
        if locale == DEFAULT_LOCALE:
            raise
        return env.get_template(f"{DEFAULT_LOCALE}/{kind}.txt"), DEFAULT_LOCALE


def _block(template: Template, name: str, context: dict[str, Any]) -> str:
    return "".join(template.blocks[name](template.new_context(context)))


def render(kind: str, *, locale: str | None, time_zone: str | None, facts: dict[str, Any]) -> Rendered:
    """The subject, text and HTML of one e-mail (``facts``: the notice's and the contact's)."""
    chosen = supported_locale(locale)
    zone = _zone(time_zone)
    template, used = _template(chosen, kind)
    context: dict[str, Any] = {
        "customer_name": None,  # a contact from before names, or a token without one: "Hello,"
        **facts,
        "locale": used,
        "time_zone": zone.key,
        "money": lambda amount, currency: money(amount, currency, used),
        "when": lambda value: when(value, used, zone),
        "day": lambda value: day(value, used, zone),
    }
    subject = " ".join(_block(template, "subject", context).split())
    text = _block(template, "body", context).strip() + "\n"
    paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
    html = (
        _environment()
        .get_template("layout.html")
        .render(
            subject=subject,
            paragraphs=paragraphs,
            link=facts.get("link"),
            link_label=_block(template, "link_label", context).strip() if "link_label" in template.blocks else None,
            lang=used,
            footer=_environment().get_template(f"{used}/footer.txt").render(**context).strip(),
        )
    )
    footer_text = _environment().get_template(f"{used}/footer.txt").render(**context).strip()
    return Rendered(subject=subject, text=f"{text}\n-- \n{footer_text}\n", html=html, locale=used)
