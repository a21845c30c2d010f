"""``POST /webhooks/<platform>/<dataset_group>``: verify, store, answer; a worker processes after.

The sequence is fixed here for every platform (django-anymail's base view): unknown platform or
dataset group → 404; body over the limit → 413; then :func:`webhooks.acceptance.accept` verifies
the signature on the raw bytes and stores the delivery (401 when the signature is bad or missing:
stored as rejected, nothing ingested); the answer goes out as soon as the row is committed, and
the app's :class:`~webhooks.worker.DeliveryWorker` parses and ingests it afterwards. Adapters
supply ``verify`` / ``delivery_id`` / ``parse`` and, where a platform wants a particular answer,
``acknowledgement`` and ``is_ping``.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from adapters import ADAPTERS
from engine.api.app import STORE_KEY, get_store
from engine.api.errors import error_response
from engine.errors import NotFound
from webhooks.acceptance import accept
from webhooks.settings import IntakeSettings
from webhooks.worker import DeliveryWorker

bp = Blueprint("webhooks", __name__)

WORKER_KEY = "shelfwise.webhook_worker"


@bp.post("/webhooks/<platform>/<dataset_group>")
def receive(platform: str, dataset_group: str) -> Response:
    """Receive one delivery. Every delivery that names a real platform and group is stored."""
    if platform not in ADAPTERS:
        return error_response("NotFound", f"unknown platform {platform!r}; known: {', '.join(sorted(ADAPTERS))}", 404)
    try:
        # The raw bytes, read once: signatures are over these exact bytes, never re-serialised JSON.
        body = request.get_data()
    except RequestEntityTooLarge:
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        return error_response("PayloadTooLargeException", f"webhook body is larger than {limit} bytes", 413)
    try:
        acceptance = accept(get_store(), dataset_group, platform, dict(request.headers.items()), body)
    except NotFound as exc:  # no such dataset group: nothing is stored, there is nowhere to store it
        return error_response(exc.code, exc.message, 404)
    if acceptance.queued:
        worker = current_app.extensions.get(WORKER_KEY)
        if worker is not None:
            worker.notify()
    if acceptance.http_status >= 400:
        return error_response(
            acceptance.error_code or "Rejected", acceptance.error or "rejected", acceptance.http_status
        )
    if acceptance.body is None:
        return Response(status=acceptance.http_status)
    response = jsonify(acceptance.body)
    response.status_code = acceptance.http_status
    return response


def register(app: Flask) -> None:
    """Entry point ``shelfwise.blueprints: webhooks`` (called by ``create_app``): the route, and the
    worker that processes what the route stores (unless ``webhook_worker`` is off)."""
    app.register_blueprint(bp)
    settings = IntakeSettings.from_settings(app.config.get("SHELFWISE"))
    if settings.worker:
        store = app.extensions[STORE_KEY]
        app.extensions[WORKER_KEY] = DeliveryWorker(store, settings).start()
