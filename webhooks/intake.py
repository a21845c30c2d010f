"""``POST /webhooks/<platform>/<dataset_group>``: store the raw delivery, then process it.

The sequence is fixed here for every platform (django-anymail's base view): unknown platform or
dataset group → 404; body over the limit → 413; store the raw bytes and headers; then
:func:`webhooks.processing.process_delivery` verifies, dedupes, parses and ingests. Adapters only
supply ``verify`` / ``delivery_id`` / ``parse``.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from adapters import ADAPTERS
from adapters.base import Delivery
from engine.api.app import get_store
from engine.api.errors import error_response
from engine.errors import NotFound
from webhooks.processing import process_delivery

bp = Blueprint("webhooks", __name__)


@bp.post("/webhooks/<platform>/<dataset_group>")
def receive(platform: str, dataset_group: str) -> Response:
    """Receive one delivery. Every delivery that names a real platform and group is stored first."""
    adapter_class = ADAPTERS.get(platform)
    if adapter_class is None:
        return error_response("NotFound", f"unknown platform {platform!r}; known: {', '.join(sorted(ADAPTERS))}", 404)
    store = get_store()
    try:
        store.get_dataset_group(dataset_group)
    except NotFound as exc:
        return error_response(exc.code, exc.message, 404)

    try:
        # The raw bytes, read once: signatures are over these exact bytes, never re-serialised JSON.
        body = request.get_data()
    except RequestEntityTooLarge:
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        return error_response("PayloadTooLargeException", f"webhook body is larger than {limit} bytes", 413)
    headers = dict(request.headers.items())

    # Stored before verification: everything received can be inspected and replayed, and a
    # rejected delivery shows why. The topic is read from a header only to label the row.
    topic = adapter_class().topic(Delivery.of(body, headers))
    topic = topic[:128] if topic else None  # the column's width: an odd header must not lose the delivery
    delivery_id = store.record_delivery(dataset_group, platform, topic, headers, body)

    outcome = process_delivery(store, delivery_id)
    if outcome.http_status == 401:
        # Shopify's compliance rules require a 401 for a bad HMAC (platforms.md §1.6).
        return error_response(outcome.error_code or "Unauthorized", outcome.error or "rejected", 401)
    response = jsonify(outcome.as_json())
    response.status_code = outcome.http_status
    return response


def register(app: Flask) -> None:
    """Entry point ``shelfwise.blueprints: webhooks`` (called by ``create_app``)."""
    app.register_blueprint(bp)
