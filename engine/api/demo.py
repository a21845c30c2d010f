"""The demo storefront (``shelfwise demo``): server-rendered product pages embedding the widget.

The page knows nothing of recommendations itself: it only places ``data-shelfwise-widget``
elements and the script tag, exactly as a merchant's theme would.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template

from engine.api.app import get_store

bp = Blueprint("demo", __name__, url_prefix="/demo", template_folder="templates")


def demo_config() -> dict:
    config = current_app.config["SHELFWISE"].extra.get("demo")
    if not config:
        abort(404, "the demo storefront is served by 'shelfwise demo' only")
    return config


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
