"""Small translations every platform adapter needs: JSON bodies, timestamps, money, HTML, categories.

Each helper raises :class:`PayloadError` with a sentence that names the platform and the field, so
a failed delivery says why in ``shelfwise webhooks list --failed``; :func:`lookup` is the one way a
platform value is mapped through a table (unknown values are logged and skipped, never a crash).
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from html.parser import HTMLParser
from typing import Any, TypeVar
from urllib.parse import urlsplit

from adapters.base import Delivery, PayloadError
from engine.errors import InvalidInput
from engine.records import MAX_ID_LENGTH, PURCHASE, Interaction, Item

log = logging.getLogger(__name__)

# Item property names shared by every store adapter (Personalize-style upper-case schema fields;
# the demo store's items use the same TITLE, PRODUCT_DESCRIPTION, CATEGORY_L1, PRICE, STOCK).
TITLE = "TITLE"
DESCRIPTION = "PRODUCT_DESCRIPTION"
CATEGORY = "CATEGORY_L1"
CATEGORIES = "CATEGORIES"
TAGS = "TAGS"
BRAND = "BRAND"
PRICE = "PRICE"
STOCK = "STOCK"
AVAILABILITY = "AVAILABILITY"
STATUS = "STATUS"
#: Where the product's page and main picture are, for widgets and e-mail fragments (an absolute
#: URL, or a path on the store's own site).
URL = "URL"
IMAGE_URL = "IMAGE_URL"

IN_STOCK = "in_stock"
OUT_OF_STOCK = "out_of_stock"
BACKORDER = "backorder"

#: Personalize's limit for a textual field; longer descriptions are cut.
MAX_TEXT_LENGTH = 20_000
#: Personalize separates the values of a multi-valued categorical field with "|".
CATEGORICAL_SEPARATOR = "|"
MAX_CATEGORICAL_LENGTH = 1000

T = TypeVar("T")


def header(delivery: Delivery, name: str) -> str | None:
    """A header's value, stripped; None when absent or blank."""
    value = delivery.headers.get(name)
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def load_json_object(delivery: Delivery, platform: str) -> dict[str, Any]:
    try:
        payload = json.loads(delivery.body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError(f"{platform} body is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise PayloadError(f"{platform} body is not a JSON object but {type(payload).__name__}")
    return payload


def parse_time(value: Any, what: str, platform: str) -> float:
    """Epoch seconds from ISO-8601 (``2008-01-10T11:00:00-05:00``, ``...Z``) or Magento's
    ``2017-11-29 20:40:07``. A time without an offset is read as UTC: the fields this is used on
    are the platforms' GMT twins (WooCommerce ``*_gmt``) or UTC database times (Magento)."""
    if not isinstance(value, str) or not value.strip():
        raise PayloadError(f"{platform} {what} is missing")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise PayloadError(f"{platform} {what} {value!r} is not an ISO-8601 timestamp") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def optional_time(value: Any, what: str, platform: str) -> float | None:
    return None if value is None or value == "" else parse_time(value, what, platform)


def money(value: Any, what: str, platform: str) -> Decimal | None:
    """Money arrives as strings ("199.00") or numbers; Decimal keeps price x quantity exact."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise PayloadError(f"{platform} {what} {value!r} is not a number")
    try:
        amount = Decimal(str(value))
    except InvalidOperation as exc:
        raise PayloadError(f"{platform} {what} {value!r} is not a number") from exc
    if not amount.is_finite():
        raise PayloadError(f"{platform} {what} {value!r} is not a finite number")
    return amount


def number(value: Any, what: str, platform: str) -> float | None:
    amount = money(value, what, platform)
    return None if amount is None else float(amount)


def whole_number(value: Any, what: str, platform: str) -> int | None:
    """An integer count; integral floats and digit strings are accepted (Magento sends qty as 1.0)."""
    if value is None or value == "":
        return None
    amount = money(value, what, platform)
    if amount is None or amount != amount.to_integral_value():
        raise PayloadError(f"{platform} {what} {value!r} is not a whole number")
    return int(amount)


def identifier(value: Any) -> str | None:
    """An id as the engine keeps it (a string); None for absent, empty or zero-like ids."""
    if value is None or isinstance(value, bool) or value in ("", 0, "0"):
        return None
    return str(value)


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in {"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4"}:
            self.parts.append(" ")


def html_to_text(value: Any) -> str | None:
    """Plain text of a product description (platforms send HTML); None when empty."""
    if not isinstance(value, str) or not value.strip():
        return None
    extractor = _TextExtractor()
    extractor.feed(value)
    extractor.close()
    text = re.sub(r"\s+", " ", html.unescape("".join(extractor.parts))).strip()
    return text[:MAX_TEXT_LENGTH] or None


def categorical(values: Iterable[Any]) -> str | None:
    """Several category-like values as one Personalize categorical field: ``a|b|c``, order kept."""
    seen: dict[str, None] = {}
    for value in values:
        if value is None:
            continue
        text = str(value).replace(CATEGORICAL_SEPARATOR, " ").strip()
        if text:
            seen.setdefault(text, None)
    joined = CATEGORICAL_SEPARATOR.join(seen)
    if len(joined) > MAX_CATEGORICAL_LENGTH:
        joined = joined[:MAX_CATEGORICAL_LENGTH].rsplit(CATEGORICAL_SEPARATOR, 1)[0]
    return joined or None


def lookup(table: Mapping[Any, T], value: Any, what: str, platform: str) -> T | None:
    """Map a platform value through an explicit table; an unknown value is logged and skipped."""
    if value is None:
        return None
    try:
        return table[value]
    except (KeyError, TypeError):
        log.info("%s: unknown %s %r; skipped (known: %s)", platform, what, value, ", ".join(map(str, table)))
        return None


def drop_empty(properties: Mapping[str, Any]) -> dict[str, Any]:
    """Item or user properties without the fields the platform left empty."""
    return {k: v for k, v in properties.items() if v is not None and v != ""}


def tolerant_id(value: Any) -> str | None:
    """An id from a customer data platform's free-form event: strings and integers only, within
    the engine's id length; anything else is treated as absent rather than refused."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    return text if text and len(text) <= MAX_ID_LENGTH else None


def tolerant_number(value: Any, what: str, platform: str) -> Decimal | None:
    """A number from a free-form event property; a malformed one is logged and ignored, since one
    odd property must not drop a whole batch of events."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        log.info("%s: %s %r is not a number; ignored", platform, what, value)
        return None
    return amount if amount.is_finite() else None


def order_purchase(
    *,
    user_id: str,
    product_id: str,
    timestamp: float,
    revenue: Decimal | None,
    event_id: str,
    session_id: str | None = None,
) -> Interaction:
    """One product bought in an order: a purchase whose value is the revenue of its line(s).

    The event id is the order's and the line's, so the same order arriving again (a retry, paid
    after created, a back-fill) is stored once.
    """
    return Interaction(
        user_id=user_id,
        item_id=product_id,
        event_type=PURCHASE,
        timestamp=timestamp,
        event_value=None if revenue is None else float(revenue),
        session_id=session_id,
        event_id=event_id,
        context={},
    )


def on_storefront(record: T, storefront: str | None) -> T:
    """An item whose page URL is a path (``/products/towel``) gets the store's address in front:
    widgets on the store's pages would resolve it, but e-mail fragments have no page to do so."""
    if not storefront or not isinstance(record, Item):
        return record
    url = record.properties.get(URL)
    if not isinstance(url, str) or not url.startswith("/") or url.startswith("//"):
        return record
    return Item(record.item_id, {**record.properties, URL: storefront.rstrip("/") + url}, record.creation_timestamp)


def store_url_setting(config: Mapping[str, Any], platform: str) -> str | None:
    """A connection's ``store_url`` (where product pages live), checked: an http(s) address,
    returned without a trailing slash; None when not set."""
    value = config.get("store_url")
    if value is None or value == "":
        return None
    text = str(value).strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise InvalidInput(f"{platform} store_url {value!r} is not an http(s) URL (e.g. https://shop.example)")
    return text
