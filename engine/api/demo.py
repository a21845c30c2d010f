"""The demo storefront (``shelfwise demo``): server-rendered home, product and cart pages embedding
the widget.

The pages know nothing of recommendations themselves: they place ``data-shelfwise-widget``
elements and the script tag, exactly as a merchant's theme would. The cart lives in a cookie, and
"Add to cart" and "Place order" record ``add-to-cart`` and ``purchase`` events server-side, as a
platform's webhooks would: they carry no recommendationId, so the dashboard shows last-click
attribution at work. Both forms carry a CSRF token (:mod:`engine.api.csrf`): a POST without it is
refused with 400, one with a wrong token with 403.
"""

from __future__ import annotations

import time
from urllib.parse import urlencode

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for

from engine.api.app import get_store
from engine.api.csrf import check_csrf, csrf_token, issue_cookie
from engine.records import Interaction

bp = Blueprint("demo", __name__, url_prefix="/demo", template_folder="templates")
bp.before_request(check_csrf)
bp.after_request(issue_cookie)

CART_COOKIE = "shelfwise_demo_cart"
MAX_CART = 20


def demo_config() -> dict:
    config = current_app.config["SHELFWISE"].extra.get("demo")
    if not config:
        abort(404, "the demo storefront is served by 'shelfwise demo' only")
    return config


def cart_ids() -> list[str]:
    raw = request.cookies.get(CART_COOKIE, "")
    return [i for i in raw.split(",") if i][:MAX_CART]


@bp.context_processor
def page_context() -> dict:
    config = current_app.config["SHELFWISE"].extra.get("demo") or {}
    if not config:
        return {"csrf_token": csrf_token}
    endpoint = (config.get("endpoint") or "").rstrip("/")
    query = urlencode(
        {
            "key": config["public_key"],
            "userId": config["shopper_id"],
            "layout": "grid",
            "numResults": 4,
            "title": "Picked for you",
            "productUrl": request.host_url.rstrip("/") + "/demo/products/{itemId}",
        }
    )
    name = config["campaigns"]["recommended_for_you"]
    return {
        "cart_size": len(cart_ids()),
        "email_url": f"{endpoint}/v1/widgets/{name}.html?{query}",
        "csrf_token": csrf_token,
    }


@bp.get("/")
def home():
    config = demo_config()
    items = sorted(get_store().items(config["dataset_group"]).values(), key=lambda i: i.item_id)
    return render_template("demo_home.html", demo=config, items=items[:24])


@bp.get("/products/<item_id>")
def product(item_id: str):
    config = demo_config()
    item = get_store().items(config["dataset_group"], [item_id]).get(item_id)
    if item is None:
        abort(404, f"no product {item_id!r} in the demo store")
    return render_template("demo_product.html", demo=config, item=item)


@bp.get("/cart")
def cart():
    config = demo_config()
    catalog = get_store().items(config["dataset_group"], cart_ids())
    lines = [catalog[i] for i in cart_ids() if i in catalog]
    ordered = request.args.get("ordered", type=int)
    return render_template("demo_cart.html", demo=config, lines=lines, ordered=ordered)


def _record(config: dict, item_ids: list[str], event_type: str) -> None:
    now = time.time()
    get_store().ingest(
        config["dataset_group"],
        [Interaction(config["shopper_id"], i, event_type, now, session_id="demo-store") for i in item_ids],
    )


@bp.post("/cart")
def add_to_cart():
    config = demo_config()
    item_id = request.form.get("item_id", "")
    if not get_store().items(config["dataset_group"], [item_id]):
        abort(404, f"no product {item_id!r} in the demo store")
    _record(config, [item_id], "add-to-cart")
    ids = [i for i in cart_ids() if i != item_id]
    response = redirect(url_for("demo.cart"), 303)
    response.set_cookie(CART_COOKIE, ",".join([item_id, *ids][:MAX_CART]), samesite="Lax", httponly=True)
    return response


@bp.post("/checkout")
def checkout():
    config = demo_config()
    ids = cart_ids()
    catalog = get_store().items(config["dataset_group"], ids)
    bought = [i for i in ids if i in catalog]
    _record(config, bought, "purchase")  # no eventValue: revenue is the catalog price
    response = redirect(url_for("demo.cart", ordered=len(bought)), 303)
    response.delete_cookie(CART_COOKIE)
    return response
