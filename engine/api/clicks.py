"""GET /v1/widgets/click: the links of server-rendered fragments record the click, then redirect.

E-mail and pages without JavaScript cannot send a click event the way ``widget.js`` does, so each
card of a ``/v1/widgets/<name>.html`` fragment links here instead of to the product, and this
endpoint stores the ``click`` (with the list's recommendationId, the item and the shopper, so
attribution counts it) before answering ``302`` to the product page.

Not an open redirect: the link carries its target, and every field (dataset group, list, item,
shopper, list name, widget, target) is signed with HMAC-SHA256 under a key derived from the
server's master key. A link whose fields or target were changed, or that was not made by this
server, is refused with 403 and redirects nowhere. Signing (rather than looking the item's URL up
again) keeps links made from a ``productUrl`` template working, and keeps a link in a mailbox
pointing where it pointed when it was sent.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Response, redirect, request

from engine.api.app import get_store
from engine.api.signing import app_key, signature
from engine.errors import Forbidden, InvalidInput
from engine.records import CLICK, Interaction

bp = Blueprint("clicks", __name__, url_prefix="/v1/widgets")

PATH = "/v1/widgets/click"
#: The signed fields, in signing order: dataset group, recommendationId, itemId, userId, the
#: campaign or recommender name, "campaign" | "recommender", the widget's name, the target URL.
FIELDS = ("g", "r", "i", "u", "n", "k", "w", "to")
REQUIRED = ("g", "r", "i", "n", "k", "to")
SIGNATURE = "s"


def _key() -> bytes:
    return app_key("click-links")


def _signature(key: bytes, fields: Mapping[str, str]) -> str:
    message = json.dumps([fields.get(name, "") for name in FIELDS], separators=(",", ":")).encode()
    return signature(key, message)


def click_link(base_url: str, fields: Mapping[str, str]) -> str:
    """An absolute, signed link to this endpoint (``base_url``: this server's address)."""
    kept = {name: fields[name] for name in FIELDS if fields.get(name)}
    query = urlencode({**kept, SIGNATURE: _signature(_key(), kept)})
    return f"{base_url.rstrip('/')}{PATH}?{query}"


@bp.get("/click")
def click() -> Response:
    args = request.args
    fields = {name: args.get(name, "") for name in FIELDS}
    missing = [name for name in REQUIRED if not fields[name]]
    if missing or not args.get(SIGNATURE):
        raise InvalidInput(f"this click link is incomplete (no {', '.join(missing or [SIGNATURE])})")
    if not hmac.compare_digest(_signature(_key(), fields).encode(), args.get(SIGNATURE, "").encode()):
        raise Forbidden("this click link was changed or not made by this server: its signature does not match")
    target = urlsplit(fields["to"])
    if target.scheme not in ("http", "https") or not target.netloc:  # signed, but never anything else
        raise InvalidInput("this click link's target is not an http(s) URL")
    if fields["k"] not in ("campaign", "recommender"):
        raise InvalidInput("this click link names neither a campaign nor a recommender")
    if request.method == "HEAD":  # mail scanners and link previews probe with HEAD: not a shopper's click
        return redirect(fields["to"], 302)
    shopper = fields["u"] or f"anon-{fields['r']}"  # no userId: one anonymous shopper per sent list
    context = {fields["k"].upper(): fields["n"]}
    if fields["w"]:
        context["WIDGET"] = fields["w"]
    get_store().ingest(
        fields["g"],
        [
            Interaction(
                user_id=shopper,
                item_id=fields["i"],
                event_type=CLICK,
                timestamp=time.time(),
                session_id=shopper,
                recommendation_id=fields["r"],
                context=context,
            )
        ],
    )
    response = redirect(fields["to"], 302)
    response.headers["Cache-Control"] = "no-store"  # every click must reach the server
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
