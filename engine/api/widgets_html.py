"""GET /v1/widgets/<name>.html: recommendations as a server-rendered HTML fragment.

For pages without JavaScript and for e-mail: absolute URLs, inline styles only (mail clients drop
<style> blocks and never run scripts), a table layout for the grid (what mail clients lay out
reliably), and every catalog string escaped. Each card links through the signed click redirect
(:mod:`engine.api.clicks`), which records the click for attribution and then sends the shopper to
the product; ``widget=NAME`` names the placement in those clicks. E-mail clients cannot send headers, so the public,
read-only key travels in the query string (``key=pk_...``); a secret key is refused there, since
a URL ends up in logs and mailboxes.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from urllib.parse import quote, urljoin, urlsplit

from flask import Blueprint, Response, request

from engine.api.app import get_campaigns, get_store
from engine.api.auth import origin_allowed
from engine.api.clicks import click_link
from engine.errors import Forbidden, InvalidInput, Unauthorized

bp = Blueprint("widgets_html", __name__, url_prefix="/v1/widgets")

METADATA = ("TITLE", "PRICE", "IMAGE_URL", "URL", "CATEGORY_L1")
CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CAD": "CA$", "AUD": "A$"}
CARD = (
    "display:block;padding:12px;border:1px solid #e3e5ea;border-radius:12px;background:#ffffff;"
    "color:#1c2333;text-decoration:none;font-family:Helvetica,Arial,sans-serif;font-size:14px;line-height:1.3"
)


def _absolute_http(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def format_price(value, currency: str) -> str:
    try:
        amount = float(value)
    except (TypeError, ValueError):
        return ""
    symbol = CURRENCY_SYMBOLS.get(currency)
    return f"{symbol}{amount:,.2f}" if symbol else f"{amount:,.2f} {currency}"


def product_link(item_id: str, metadata: dict, template: str | None) -> str:
    """The catalog's own http(s) URL, else the template; always absolute.

    A page path from the catalog (``/products/towel``) is placed on the template's store address:
    an e-mail has no page to resolve it against, and Shelfwise's own address would be wrong."""
    url = str(metadata.get("url") or "")
    if url:
        if template:
            url = urljoin(template, url)
        if _absolute_http(url):
            return url
    if template:
        return template.replace("{itemId}", quote(item_id, safe=""))
    raise InvalidInput(
        f"item {item_id!r} has {'only a page path' if url else 'no URL'} in the catalog: pass "
        "productUrl=https://shop.example/products/{itemId}, or connect the store with its store_url"
    )


def card_html(item_id: str, metadata: dict, href: str, currency: str) -> str:
    name = escape(str(metadata.get("title") or item_id))
    parts = [f'<a href="{escape(href)}" style="{CARD}">']
    image = str(metadata.get("imageUrl") or "")
    if image and _absolute_http(image):
        parts.append(
            f'<img src="{escape(image)}" alt="" width="160" loading="lazy" '
            'style="display:block;width:100%;max-width:160px;height:auto;border:0;border-radius:8px;margin:0 0 8px">'
        )
    parts.append(f'<span style="display:block;font-weight:600;margin:0 0 6px">{name}</span>')
    price = format_price(metadata.get("price"), currency)
    if price:
        parts.append(f'<span style="display:block;font-weight:700;color:#2f5bd3">{escape(price)}</span>')
    parts.append("</a>")
    return "".join(parts)


def fragment(
    items: list,
    title: str,
    layout: str,
    columns: int,
    currency: str,
    template: str | None,
    recommendation_id: str,
    track: Callable[[str, str], str] | None = None,
) -> str:
    """``track(item_id, product_url)``: the link a card uses instead (the click redirect)."""
    cards = []
    for i in items:
        href = product_link(i.item_id, i.metadata or {}, template)
        cards.append(card_html(i.item_id, i.metadata or {}, track(i.item_id, href) if track else href, currency))
    head = (
        f'<div data-recommendation-id="{escape(recommendation_id)}" style="margin:16px 0">'
        f'<h2 style="font-family:Helvetica,Arial,sans-serif;font-size:18px;margin:0 0 12px;color:#1c2333">'
        f"{escape(title)}</h2>"
    )
    if layout == "carousel":
        cells = "".join(
            f'<div style="display:inline-block;vertical-align:top;width:180px;margin:0 12px 0 0;white-space:normal">'
            f"{c}</div>"
            for c in cards
        )
        return f'{head}<div style="overflow-x:auto;white-space:nowrap;padding:0 0 8px">{cells}</div></div>'
    rows = []
    for start in range(0, len(cards), columns):
        row = cards[start : start + columns]
        width = 100 // columns
        cells = "".join(f'<td width="{width}%" valign="top" style="padding:6px">{c}</td>' for c in row)
        rows.append(f"<tr>{cells}</tr>")
    return (
        f'{head}<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" '
        f'style="border-collapse:collapse">{"".join(rows)}</table></div>'
    )


@bp.get("/<name>.html")
def widget_html(name: str) -> Response:
    args = request.args
    presented = args.get("key", "")
    if not presented:
        raise Unauthorized("missing API key: pass key=pk_... (the public key)")
    key = get_store().authenticate_key(presented)
    if key.kind != "public":
        raise Forbidden("use the public key here: a URL with a secret key leaks it to logs and mailboxes")
    origin = request.headers.get("Origin")
    if not origin_allowed(key, origin):
        raise Forbidden(f"origin {origin!r} is not allowed for this key")
    layout = args.get("layout", "grid")
    if layout not in ("grid", "carousel"):
        raise InvalidInput("layout must be grid or carousel")
    try:
        num_results = int(args.get("numResults", 4))
        columns = int(args.get("columns", 4))
    except ValueError:
        raise InvalidInput("numResults and columns must be whole numbers") from None
    if not 1 <= num_results <= 50 or not 1 <= columns <= 6:
        raise InvalidInput("numResults must be 1-50 and columns 1-6")
    template = args.get("productUrl")
    if template and (not _absolute_http(template) or "{itemId}" not in template):
        raise InvalidInput("productUrl must be an absolute http(s) URL containing {itemId}")
    currency = args.get("currency", "USD").upper()
    recs = get_campaigns().recommend(
        key.dataset_group,
        name,
        recommender=args.get("type") == "recommender",
        user_id=args.get("userId") or None,
        item_id=args.get("itemId") or None,
        num_results=num_results,
        metadata_columns=METADATA,
    )
    signed = {
        "g": key.dataset_group,
        "r": recs.recommendation_id,
        "u": args.get("userId") or "",
        "n": name,
        "k": "recommender" if args.get("type") == "recommender" else "campaign",
        "w": args.get("widget") or "",
    }

    def track(item_id: str, href: str) -> str:
        return click_link(request.host_url, {**signed, "i": item_id, "to": href})

    body = (
        fragment(
            list(recs.items),
            args.get("title", "Recommended for you"),
            layout,
            columns,
            currency,
            template,
            recs.recommendation_id,
            track,
        )
        if recs.items
        else ""
    )
    response = Response(body, mimetype="text/html")
    response.headers["Cache-Control"] = "private, max-age=60"
    response.headers["X-Recommendation-Id"] = recs.recommendation_id
    if origin:  # a page on one of the key's origins may fetch the fragment
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
    return response
